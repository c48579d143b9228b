"""The signed-in user's sessions: list them, end one, end all but this one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from gpugo import clock
from gpugo.auth.principal import Principal
from gpugo.errors import NotFound
from gpugo.models import Session
from gpugo.services import audit
from gpugo.settings import Settings


@dataclass(frozen=True, slots=True)
class SessionView:
    id: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    address: str | None
    user_agent: str | None
    # The session of the request that asks.
    current: bool


async def list_sessions(*, principal: Principal, settings: Settings) -> list[SessionView]:
    """The caller's live sessions, newest first (an expired one is deleted when next
    presented; until then it is not listed)."""
    now = clock.now()
    idle = timedelta(seconds=settings.session_idle_seconds)
    rows = (
        await Session.filter(
            user_id=principal.user_id, expires_at__gt=now, last_seen_at__gt=now - idle
        )
        .order_by("-created_at", "-id")
        .values("id", "created_at", "last_seen_at", "expires_at", "address", "user_agent")
    )
    return [SessionView(**row, current=row["id"] == principal.session_id) for row in rows]


def _revoked(principal: Principal, session_id: str) -> None:
    audit.record(
        audit.Kind.SESSION_REVOKED,
        user_id=principal.user_id,
        actor=principal,
        subject_kind="session",
        subject_id=session_id,
    )


async def revoke(*, principal: Principal, session_id: str) -> None:
    """End one of the caller's sessions (its cookie stops working at once); 404 otherwise."""
    if not await Session.filter(user_id=principal.user_id, id=session_id).delete():
        raise NotFound("No such session.")
    _revoked(principal, session_id)


async def revoke_others(*, principal: Principal) -> int:
    """End every session of the caller but the one asking (all of them, for a PAT)."""
    query = Session.filter(user_id=principal.user_id)
    if principal.session_id is not None:
        query = query.exclude(id=principal.session_id)
    ids = await query.values_list("id", flat=True)
    ended = await Session.filter(user_id=principal.user_id, id__in=list(ids)).delete() if ids else 0
    for session_id in ids:
        _revoked(principal, str(session_id))
    return ended
