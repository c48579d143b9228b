"""The audit log: who did what with an account, from where, and how it ended.

Services call ``record`` where a security-relevant thing happens; the row waits in
memory (``AuditLog``, a ``BoundedBuffer``) and is written with the others every
``GPUGO_AUDIT_FLUSH_SECONDS``, so recording never waits for the database nor fails the
request it describes. It is a buffer, not an outbox: a crash loses the last interval's
rows; a database outage loses only what overflows ``GPUGO_AUDIT_BUFFER_ROWS`` meanwhile
(the oldest first); a clean shutdown flushes.

The client's address and user agent come from the request being served (``bind_request``,
called once per request in front of everything, after the trusted-proxy rule), so a
service needs no HTTP to record them. Rows never hold a secret, a password, an e-mail
typed at login or a whole share code: ids, kinds, and at most a short prefix.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from tortoise.expressions import Q

from gpugo import clock
from gpugo.auth.principal import CredentialKind, Principal
from gpugo.errors import NotFound
from gpugo.models import AuditEvent, InstallToken, User
from gpugo.periodic import BoundedBuffer

log = logging.getLogger("gpugo.audit")

USER_AGENT_LENGTH = 256
# How many (PAT, address) pairs each process remembers as already recorded.
_SEEN_PAT_ADDRESSES = 4096


class Kind(StrEnum):
    # Event names, not credentials.
    SIGNUP = "signup"
    LOGIN_SUCCEEDED = "login.succeeded"
    LOGIN_FAILED = "login.failed"
    LOGOUT = "logout"
    SESSION_EXPIRED = "session.expired"
    SESSION_REVOKED = "session.revoked"
    PAT_CREATED = "pat.created"
    PAT_REGENERATED = "pat.regenerated"
    PAT_DELETED = "pat.deleted"
    PAT_NEW_ADDRESS = "pat.new_address"
    INSTALL_TOKEN_CREATED = "install_token.created"  # noqa: S105
    INSTALL_TOKEN_USED = "install_token.used"  # noqa: S105
    INSTALL_TOKEN_EXPIRED = "install_token.expired"  # noqa: S105
    INSTALL_TOKEN_REVOKED = "install_token.revoked"  # noqa: S105
    AGENT_REGISTERED = "agent.registered"
    AGENT_DELETED = "agent.deleted"
    AGENT_UNREGISTERED = "agent.unregistered"
    AGENT_SECRET_REFUSED = "agent_secret.refused"  # noqa: S105
    SHARE_CREATED = "share.created"
    SHARE_DELETED = "share.deleted"
    SHARE_USED_UP = "share.used_up"
    SHARE_EXTENDED = "share.extended"
    PLAN_CHANGED = "plan.changed"
    PASSWORD_CHANGED = "password.changed"  # noqa: S105
    PASSWORD_CHANGE_REFUSED = "password.change_refused"  # noqa: S105
    PASSWORD_RESET = "password.reset"  # noqa: S105
    RATE_LIMITED = "rate_limited"


class Actor(StrEnum):
    USER = "user"  # by session cookie
    PAT = "pat"
    AGENT = "agent"
    INSTALL_TOKEN = "install_token"  # noqa: S105
    OPERATOR = "operator"  # the gpugo CLI
    ANONYMOUS = "anonymous"
    SYSTEM = "system"  # the sweeper


SUCCESS = "success"
FAILURE = "failure"


@dataclass(frozen=True, slots=True)
class Row:
    at: datetime
    kind: str
    user_id: str | None
    actor_kind: str
    actor_id: str | None
    address: str | None
    user_agent: str | None
    subject_kind: str | None
    subject_id: str | None
    outcome: str
    detail: str | None


class AuditLog:
    """The process's buffer of audit rows (one per ServerContext)."""

    def __init__(self, *, flush_seconds: float, capacity: int) -> None:
        self.buffer: BoundedBuffer[Row] = BoundedBuffer(
            "audit log", flush_seconds, capacity, _write
        )
        self._seen_pat_addresses: set[tuple[str, str]] = set()

    def add(self, row: Row) -> None:
        self.buffer.add(row)

    def first_sight(self, pat_id: str, address: str) -> bool:
        """Whether this process meets the pair for the first time (then remembers it)."""
        pair = (pat_id, address)
        if pair in self._seen_pat_addresses:
            return False
        if len(self._seen_pat_addresses) >= _SEEN_PAT_ADDRESSES:
            self._seen_pat_addresses.clear()
        self._seen_pat_addresses.add(pair)
        return True

    async def start(self) -> None:
        self.buffer.start()

    async def stop(self) -> None:
        await self.buffer.stop()

    async def flush(self) -> int:
        return await self.buffer.flush()


async def _write(rows: list[Row]) -> None:
    await AuditEvent.bulk_create([AuditEvent(**_fields(row)) for row in rows])


def _fields(row: Row) -> dict[str, Any]:
    return {name: getattr(row, name) for name in Row.__slots__}


_UNREAD = object()


class _Scope:
    """The log and the client of what is being served. The user agent is read from the
    request's headers when a row or a session first needs it: most requests record
    nothing, and cleaning a header costs more than the rest of the binding."""

    __slots__ = ("_headers", "_user_agent", "address", "log")

    def __init__(
        self,
        log: AuditLog,
        address: str | None,
        headers: Iterable[tuple[bytes, bytes]] = (),
    ) -> None:
        self.log = log
        self.address = address
        self._headers = headers
        self._user_agent: Any = _UNREAD

    @property
    def user_agent(self) -> str | None:
        if self._user_agent is _UNREAD:
            self._user_agent = None
            for name, value in self._headers:
                if name == b"user-agent":
                    text = _printable(value.decode("latin-1"), USER_AGENT_LENGTH)
                    self._user_agent = text or None
                    break
        return self._user_agent


_scope: ContextVar[_Scope | None] = ContextVar("gpugo_audit_scope", default=None)


def _printable(text: str, length: int) -> str:
    # Header bytes are the client's: no control characters (PostgreSQL text refuses NUL).
    return "".join(c for c in text if c.isprintable())[:length]


def bind_request(audit_log: AuditLog, scope: Mapping[str, Any]) -> None:
    """Remember the log and the client of the request (ASGI scope) this task serves."""
    client = scope.get("client")
    _scope.set(_Scope(audit_log, client[0] if client else None, scope.get("headers", ())))


def bind(audit_log: AuditLog) -> None:
    """Record into ``audit_log`` outside a request (the operator CLI)."""
    _scope.set(_Scope(audit_log, None))


def client_address() -> str | None:
    scope = _scope.get()
    return scope.address if scope else None


def client_user_agent() -> str | None:
    scope = _scope.get()
    return scope.user_agent if scope else None


def actor_of(principal: Principal) -> tuple[Actor, str | None]:
    if principal.kind is CredentialKind.SESSION:
        return Actor.USER, principal.session_id
    if principal.kind is CredentialKind.PAT:
        return Actor.PAT, principal.pat_id
    return Actor.AGENT, principal.agent_id


def record(
    kind: Kind,
    *,
    user_id: str | None,
    actor: Actor | Principal,
    actor_id: str | None = None,
    subject_kind: str | None = None,
    subject_id: str | None = None,
    outcome: str = SUCCESS,
    detail: str | None = None,
    audit_log: AuditLog | None = None,
) -> None:
    """Queue one event; never raises, never waits."""
    try:
        scope = _scope.get()
        target = audit_log or (scope.log if scope else None)
        if target is None:
            log.debug("no audit log bound; %s not recorded", kind)
            return
        if isinstance(actor, Principal):
            actor, actor_id = actor_of(actor)
        target.add(
            Row(
                at=clock.now(),
                kind=str(kind),
                user_id=user_id,
                actor_kind=str(actor),
                actor_id=actor_id,
                address=scope.address if scope else None,
                user_agent=scope.user_agent if scope else None,
                subject_kind=subject_kind,
                subject_id=subject_id,
                outcome=outcome,
                detail=detail[:128] if detail else None,
            )
        )
    except Exception:
        # The log must never cost the request it describes.
        log.warning("could not queue the audit event %s", kind, exc_info=True)


async def note_pat_use(*, pat_id: str, user_id: str) -> None:
    """Record the first use of a PAT from an address it was not used from before.

    Each process remembers the pairs it has seen; a pair it has not asks the log
    itself once (an indexed look-up), so this costs a query only on a new address.
    """
    scope = _scope.get()
    if scope is None or scope.address is None:
        return
    if not scope.log.first_sight(pat_id, scope.address):
        return
    try:
        known = await AuditEvent.filter(
            subject_id=pat_id, kind=Kind.PAT_NEW_ADDRESS, address=scope.address
        ).exists()
    except Exception:
        log.warning("could not look up the PAT's earlier addresses", exc_info=True)
        return
    if not known:
        record(
            Kind.PAT_NEW_ADDRESS,
            user_id=user_id,
            actor=Actor.PAT,
            actor_id=pat_id,
            subject_kind="pat",
            subject_id=pat_id,
        )


def on_rate_limited(rule: str, key: tuple[str, ...]) -> None:
    """The rate limiter refused an attempt (GPUGO_RATE_LIMIT_*)."""
    # Install tokens are limited per user, metrics per agent; the rest per address or
    # per typed e-mail, which is not recorded.
    user_id = key[0] if rule == "token_generate" and key else None
    subject = ("agent", key[0]) if rule == "metrics" and key else (None, None)
    record(
        Kind.RATE_LIMITED,
        user_id=user_id,
        actor=Actor.ANONYMOUS,
        subject_kind=subject[0],
        subject_id=subject[1],
        outcome=FAILURE,
        detail=rule,
    )


# Reading ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventView:
    id: str
    at: datetime
    kind: str
    actor_kind: str
    actor_id: str | None
    address: str | None
    user_agent: str | None
    subject_kind: str | None
    subject_id: str | None
    outcome: str
    detail: str | None


@dataclass(frozen=True, slots=True)
class EventPage:
    events: list[EventView]
    # The position after the last event of the page, when more follow.
    next_before: tuple[datetime, str] | None


_VIEW_COLUMNS = (
    "id",
    "at",
    "kind",
    "actor_kind",
    "actor_id",
    "address",
    "user_agent",
    "subject_kind",
    "subject_id",
    "outcome",
    "detail",
)


async def list_events(
    *,
    principal: Principal,
    limit: int,
    before: tuple[datetime, str] | None = None,
    kind: str | None = None,
) -> EventPage:
    """The caller's own events, newest first, ``limit`` at a time (a keyset page)."""
    query = AuditEvent.filter(user_id=principal.user_id)
    if kind is not None:
        query = query.filter(kind=kind)
    if before is not None:
        at, event_id = before
        query = query.filter(Q(at__lt=at) | Q(at=at, id__lt=event_id))
    rows = await query.order_by("-at", "-id").limit(limit + 1).values(*_VIEW_COLUMNS)
    events = [EventView(**row) for row in rows[:limit]]
    more = len(rows) > limit
    return EventPage(
        events=events, next_before=(events[-1].at, events[-1].id) if more and events else None
    )


async def count_events(*, principal: Principal, kind: str | None = None) -> int:
    query = AuditEvent.filter(user_id=principal.user_id)
    if kind is not None:
        query = query.filter(kind=kind)
    return await query.count()


# Time alone (the sweeper) ---------------------------------------------------------------


async def prune(*, retention_days: int) -> int:
    """Delete events older than the retention."""
    cutoff = clock.now() - timedelta(days=retention_days)
    return await AuditEvent.filter(at__lt=cutoff).delete()


async def note_expired_install_tokens(*, audit_log: AuditLog, limit: int = 500) -> int:
    """Record once each install token that expired unused (across all instances: the
    mark is one conditional UPDATE)."""
    now = clock.now()
    rows = (
        await InstallToken.filter(used_at=None, expiry_noted=False, expires_at__lte=now)
        .limit(limit)
        .values("id", "user_id")
    )
    noted = 0
    for row in rows:
        if await InstallToken.filter(id=row["id"], expiry_noted=False).update(expiry_noted=True):
            noted += 1
            record(
                Kind.INSTALL_TOKEN_EXPIRED,
                user_id=row["user_id"],
                actor=Actor.SYSTEM,
                subject_kind="install_token",
                subject_id=row["id"],
                outcome=FAILURE,
                audit_log=audit_log,
            )
    return noted


# The operator's view (gpugo audit tail) ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class OperatorEvent:
    event: EventView
    user_id: str | None
    email: str | None


async def operator_events(
    *, email: str | None, limit: int, since: datetime | None = None
) -> list[OperatorEvent]:
    """Events of every account (or of one), oldest first: the last ``limit`` of them, or
    with ``since`` the first ``limit`` at or after that time."""
    query = AuditEvent.all()
    if email is not None:
        user = await User.get_or_none(email=email.strip().lower())
        if user is None:
            raise NotFound(f"No account with e-mail {email}.")
        query = query.filter(user_id=user.id)
    if since is None:
        rows = await query.order_by("-at", "-id").limit(limit).values(*_VIEW_COLUMNS, "user_id")
        rows.reverse()
    else:
        query = query.filter(at__gte=since)
        rows = await query.order_by("at", "id").limit(limit).values(*_VIEW_COLUMNS, "user_id")
    user_ids = {row["user_id"] for row in rows if row["user_id"]}
    emails = dict(
        await User.filter(id__in=list(user_ids)).values_list("id", "email") if user_ids else []
    )
    found = []
    for row in rows:
        user_id = row.pop("user_id")
        found.append(OperatorEvent(EventView(**row), user_id, emails.get(user_id)))
    return found
