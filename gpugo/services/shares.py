"""Shares: short links through which others reach a worker, and their redemption.

A short code is a capability (12 random base62 characters, ~71 bits): whoever
holds it may connect, so it is never derived from anything guessable.

The worker lets a client in only with a code its agent received (``share_codes`` in
/config, ``worker_share_codes`` in the status reply), so the set of a worker's live
codes is part of its agent's configuration: creating or deleting a link bumps the
agent's ``config_version`` at once; a link used up is withdrawn by the use that took
its last one, an expired one by the sweeper (``withdraw_expired``) within seconds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from gpugo import clock, sql
from gpugo.auth.principal import Principal
from gpugo.context import ServerContext
from gpugo.errors import Conflict, Gone, NotFound, ValidationFailed
from gpugo.events import Event, EventKind
from gpugo.ids import random_base62
from gpugo.inputs.agents import UNKNOWN_VENDOR
from gpugo.inputs.shares import CreateShareInput, ExtendShareInput
from gpugo.models import Agent, Gpu, Share, Worker
from gpugo.services import agents, alerts, audit, scope, webhooks
from gpugo.webhook_events import WebhookEvent

SHORT_CODE_LENGTH = 12
# Collisions need ~2**35 shares to become likely; a few attempts are plenty.
_CODE_ATTEMPTS = 5
# Anything else cannot be a code we issued: refused without a database round trip.
_CODE_SHAPE = re.compile(r"^[0-9A-Za-z]{10,32}$")
# A worker over GPUs of more than one vendor; "unknown" when none of its GPUs exist any more.
MIXED_VENDOR = "mixed"

_LIST_COLUMNS = (
    "id",
    "short_code",
    "worker_id",
    "hardware_vendor",
    "connection_ip",
    "worker__listen_port",
    "expires_at",
    "max_uses",
    "used_count",
    "created_at",
)
_PUBLIC_COLUMNS = (
    "id",
    "user_id",
    "worker_id",
    "hardware_vendor",
    "connection_ip",
    "worker__listen_port",
    "worker__agent_id",
    "worker__agent__arch",
    "expires_at",
    "max_uses",
    "used_count",
)
# Expired links withdrawn per statement, and statements per sweep.
WITHDRAW_BATCH = 500
_WITHDRAW_BATCHES = 20


@dataclass(frozen=True, slots=True)
class ShareView:
    share_id: str
    short_code: str
    short_link: str
    worker_id: str
    hardware_vendor: str
    connection_url: str
    expires_at: datetime | None
    max_uses: int | None
    used_count: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PublicShare:
    worker_id: str
    hardware_vendor: str
    connection_url: str
    # The architecture of the worker's host: the client picks its libraries by it.
    agent_arch: str


def connection_url(ip: str, port: int) -> str:
    # connection_ip is normalised on input: a bare IPv6 address needs its brackets here.
    host = f"[{ip}]" if ":" in ip else ip
    return f"tcp://{host}:{port}"


def short_link(ctx: ServerContext, short_code: str) -> str:
    return f"{ctx.settings.effective_short_link_base}/s/{short_code}"


def vendor_of(vendors: Iterable[str]) -> str:
    """The hardware vendor of a set of GPUs: their one vendor, ``mixed`` or ``unknown``."""
    distinct = set(vendors)
    if len(distinct) == 1:
        return distinct.pop()
    return MIXED_VENDOR if distinct else UNKNOWN_VENDOR


async def hardware_vendor(*, agent_id: str, gpu_ids: Sequence[str]) -> str:
    vendors = await Gpu.filter(agent_id=agent_id, gpu_id__in=list(gpu_ids)).values_list(
        "vendor", flat=True
    )
    return vendor_of(vendors)


def _view(ctx: ServerContext, row: dict[str, Any]) -> ShareView:
    return ShareView(
        share_id=row["id"],
        short_code=row["short_code"],
        short_link=short_link(ctx, row["short_code"]),
        worker_id=row["worker_id"],
        hardware_vendor=row["hardware_vendor"],
        connection_url=connection_url(row["connection_ip"], row["worker__listen_port"]),
        expires_at=row["expires_at"],
        max_uses=row["max_uses"],
        used_count=row["used_count"],
        created_at=row["created_at"],
    )


async def create(*, ctx: ServerContext, principal: Principal, data: CreateShareInput) -> ShareView:
    """A share of one of the caller's workers; 404 for anyone else's worker."""
    now = clock.now()
    if data.expires_at is not None and data.expires_at <= now:
        raise ValidationFailed.field("expires_at", "Must be in the future.")
    rows = await Worker.filter(scope.workers(principal), id=data.worker_id).values(
        "id", "agent_id", "gpu_ids", "listen_port"
    )
    if not rows:
        raise NotFound("No such worker.")
    worker = rows[0]
    vendor = await hardware_vendor(agent_id=worker["agent_id"], gpu_ids=worker["gpu_ids"])
    for _ in range(_CODE_ATTEMPTS):
        code = random_base62(SHORT_CODE_LENGTH)
        try:
            async with in_transaction():
                share = await Share.create(
                    user_id=principal.user_id,
                    worker_id=worker["id"],
                    short_code=code,
                    connection_ip=data.connection_ip,
                    hardware_vendor=vendor,
                    expires_at=data.expires_at,
                    max_uses=data.max_uses,
                    used_count=0,
                    created_at=now,
                )
                await _bump_config_version(worker["agent_id"])
            break
        except IntegrityError:
            # Either the code is taken (try another) or the worker was deleted meanwhile.
            if not await Share.filter(short_code=code).exists():
                raise NotFound("No such worker.") from None
    else:
        raise Conflict("Could not allocate a unique short code; try again.")
    await _config_changed(ctx, principal.user_id, worker["agent_id"])
    audit.record(
        audit.Kind.SHARE_CREATED,
        user_id=principal.user_id,
        actor=principal,
        subject_kind="share",
        subject_id=share.id,
        detail=code_prefix(code),
    )
    return _view(
        ctx,
        {
            "id": share.id,
            "short_code": code,
            "worker_id": worker["id"],
            "hardware_vendor": vendor,
            "connection_ip": data.connection_ip,
            "worker__listen_port": worker["listen_port"],
            "expires_at": data.expires_at,
            "max_uses": data.max_uses,
            "used_count": 0,
            "created_at": now,
        },
    )


async def extend(
    *, ctx: ServerContext, principal: Principal, share_id: str, data: ExtendShareInput
) -> ShareView:
    """Change a link's expiry and use limit, keeping its code (whoever holds it keeps it).

    A link used up or expired becomes live again when the new limits allow it: it
    re-enters its agent's config at once. The change is one conditional UPDATE, so a use
    counted meanwhile cannot leave ``max_uses`` below ``used_count``.
    """
    given = data.model_fields_set
    now = clock.now()
    if "expires_at" in given and data.expires_at is not None and data.expires_at <= now:
        raise ValidationFailed.field("expires_at", "Must be in the future.")
    rows = await Share.filter(scope.shares(principal), id=share_id).values(
        *_LIST_COLUMNS, "worker__agent_id", "withdrawn_at"
    )
    if not rows:
        raise NotFound("No such share.")
    row = rows[0]
    changes: dict[str, Any] = {}
    if "expires_at" in given:
        changes["expires_at"] = data.expires_at
    if "max_uses" in given:
        changes["max_uses"] = data.max_uses
    if not changes:
        return _view(ctx, row)
    expires_at = changes.get("expires_at", row["expires_at"])
    max_uses = changes.get("max_uses", row["max_uses"])
    if max_uses is not None and max_uses < row["used_count"]:
        raise ValidationFailed.field(
            "max_uses", f"Must be at least {row['used_count']}, the uses already counted."
        )
    live = is_live(expires_at=expires_at, max_uses=max_uses, used_count=row["used_count"], now=now)
    changes["withdrawn_at"] = None if live else (row["withdrawn_at"] or now)
    was_live = row["withdrawn_at"] is None and is_live(
        expires_at=row["expires_at"],
        max_uses=row["max_uses"],
        used_count=row["used_count"],
        now=now,
    )
    async with in_transaction():
        query = Share.filter(id=share_id)
        if changes.get("max_uses") is not None:
            query = query.filter(used_count__lte=changes["max_uses"])
        if not await query.update(**changes):
            raise ValidationFailed.field("max_uses", "Must not be below the uses already counted.")
        if live != was_live:
            await _bump_config_version(row["worker__agent_id"])
    if live != was_live:
        await _config_changed(ctx, principal.user_id, row["worker__agent_id"])
    audit.record(
        audit.Kind.SHARE_EXTENDED,
        user_id=principal.user_id,
        actor=principal,
        subject_kind="share",
        subject_id=share_id,
        detail=code_prefix(row["short_code"]),
    )
    found = await Share.filter(id=share_id).values(*_LIST_COLUMNS)
    return _view(ctx, found[0] if found else {**row, **changes})


async def list_shares(*, ctx: ServerContext, principal: Principal) -> list[ShareView]:
    """The caller's shares, newest first; one statement."""
    rows = (
        await Share.filter(scope.shares(principal))
        .order_by("-created_at", "-id")
        .values(*_LIST_COLUMNS)
    )
    return [_view(ctx, row) for row in rows]


async def delete(*, ctx: ServerContext, principal: Principal, share_id: str) -> None:
    """Delete one of the caller's links; a live one leaves its agent's config at once."""
    async with in_transaction():
        rows = await Share.filter(scope.shares(principal), id=share_id).values(
            "worker__agent_id", "withdrawn_at", "short_code"
        )
        if not rows or not await Share.filter(id=share_id).delete():
            raise NotFound("No such share.")
        agent_id = rows[0]["worker__agent_id"]
        live = rows[0]["withdrawn_at"] is None
        if live:
            await _bump_config_version(agent_id)
    audit.record(
        audit.Kind.SHARE_DELETED,
        user_id=principal.user_id,
        actor=principal,
        subject_kind="share",
        subject_id=share_id,
        detail=code_prefix(rows[0]["short_code"]),
    )
    if live:
        await _config_changed(ctx, principal.user_id, agent_id)


def code_prefix(code: str) -> str:
    """What the audit log keeps of a short code (a capability): enough to tell links apart."""
    return f"{code[:4]}…"


async def _bump_config_version(agent_id: str) -> None:
    await Agent.filter(id=agent_id).update(config_version=F("config_version") + 1)


async def _config_changed(ctx: ServerContext, user_id: str, agent_id: str) -> None:
    """After the commit: the agent pulls its config (agent push, live views)."""
    await ctx.events.publish(
        Event(kind=EventKind.CONFIG_CHANGED, user_id=user_id, agent_id=agent_id)
    )


async def live_codes(*, agent_id: str, now: datetime) -> dict[str, list[str]]:
    """Worker id -> the short codes of its live links (sorted), for the agent's config."""
    rows = await Share.filter(worker__agent_id=agent_id, withdrawn_at=None).values(
        "worker_id", "short_code", "expires_at", "max_uses", "used_count"
    )
    codes: dict[str, list[str]] = {}
    for row in rows:
        if is_live(
            expires_at=row["expires_at"],
            max_uses=row["max_uses"],
            used_count=row["used_count"],
            now=now,
        ):
            codes.setdefault(row["worker_id"], []).append(row["short_code"])
    return {worker_id: sorted(found) for worker_id, found in codes.items()}


_WITHDRAW_EXPIRED = sql.per_dialect(
    "UPDATE shares SET withdrawn_at = $1 WHERE id IN ("
    "SELECT id FROM shares WHERE withdrawn_at IS NULL AND expires_at <= $2"
    " ORDER BY expires_at LIMIT $3 FOR UPDATE SKIP LOCKED)"
    " AND withdrawn_at IS NULL RETURNING id, worker_id, user_id"
)


async def withdraw_expired(*, ctx: ServerContext) -> int:
    """Withdraw the links that expired since the last sweep from their agents' configs.

    Through the (withdrawn_at, expires_at) index, a batch per statement; the
    conditional UPDATE lets one instance win each link. Returns how many.
    """
    now = clock.now()
    withdrawn = 0
    for _ in range(_WITHDRAW_BATCHES):
        async with in_transaction():
            rows = await sql.fetch(_WITHDRAW_EXPIRED, [now, now, WITHDRAW_BATCH])
            worker_ids = list({row["worker_id"] for row in rows})
            agents = (
                await Worker.filter(id__in=worker_ids).values_list("agent_id", "agent__user_id")
                if worker_ids
                else []
            )
            agent_ids = sorted({agent_id for agent_id, _ in agents})
            if agent_ids:
                await Agent.filter(id__in=agent_ids).update(config_version=F("config_version") + 1)
            queued = await alerts.shares_withdrawn(
                event=WebhookEvent.SHARE_EXPIRED,
                owners={row["id"]: row["user_id"] for row in rows},
                now=now,
            )
        webhooks.wake_sender(ctx, queued)
        for agent_id, user_id in set(agents):
            ctx.events.emit(
                Event(kind=EventKind.CONFIG_CHANGED, user_id=user_id, agent_id=agent_id)
            )
        withdrawn += len(rows)
        if len(rows) < WITHDRAW_BATCH:
            break
    return withdrawn


async def _public_row(short_code: str) -> dict[str, Any]:
    if not _CODE_SHAPE.match(short_code):
        raise NotFound("No such share.")
    rows = await Share.filter(short_code=short_code).values(*_PUBLIC_COLUMNS)
    if not rows:
        raise NotFound("No such share.")
    return rows[0]


def is_live(
    *, expires_at: datetime | None, max_uses: int | None, used_count: int, now: datetime
) -> bool:
    """Whether a share link still lets someone in: not expired, and a use left."""
    return (expires_at is None or now < expires_at) and (max_uses is None or used_count < max_uses)


def _check_usable(row: dict[str, Any], now: datetime) -> None:
    if row["expires_at"] is not None and now >= row["expires_at"]:
        raise Gone("This share link has expired.")
    if row["max_uses"] is not None and row["used_count"] >= row["max_uses"]:
        raise Gone("This share link has been used up.")


def _public(row: dict[str, Any]) -> PublicShare:
    # The worker's current port: a worker moved since the share was made is still reached.
    return PublicShare(
        worker_id=row["worker_id"],
        hardware_vendor=row["hardware_vendor"],
        connection_url=connection_url(row["connection_ip"], row["worker__listen_port"]),
        agent_arch=row["worker__agent__arch"],
    )


async def peek(*, short_code: str) -> PublicShare:
    """What redeem would answer, without using the share up (HEAD). One statement."""
    row = await _public_row(short_code)
    _check_usable(row, clock.now())
    return _public(row)


async def redeem(*, ctx: ServerContext, short_code: str) -> PublicShare:
    """Use the share once: 404 unknown, 410 expired or used up.

    The use is one conditional UPDATE that only counts a use while one is left, so
    exactly ``max_uses`` of any number of racing callers succeed. On PostgreSQL it
    returns the link too (a use is one round trip; a refusal reads the link again to
    say why); on SQLite it is a read, then the UPDATE. The use that takes the last one
    withdraws the link from its agent's config. A use is not published on the bus: no
    live view shows uses, and a NOTIFY per use to every instance would cost about as
    much as the UPDATE (docs/decisions.md, "Shares").
    """
    now = clock.now()
    db = connections.get("default")
    if db.capabilities.dialect == "postgres" and _CODE_SHAPE.match(short_code):
        row = await _redeem_postgres(db, short_code, now)
    else:
        row = await _public_row(short_code)
        _check_usable(row, now)
        counted = await sql.fetch(_USE_SQLITE, [row["id"], now])
        row["used_now"] = counted[0]["used_count"] if counted else None
    if row["used_now"] is None:
        # Another caller took the last use (or the share was deleted) since the read.
        raise Gone("This share link has been used up.")
    if row["max_uses"] is not None and row["used_now"] >= row["max_uses"]:
        await _withdraw_used_up(ctx, row, now)
    return _public(row)


async def _withdraw_used_up(ctx: ServerContext, row: dict[str, Any], now: datetime) -> None:
    agent_id = row["worker__agent_id"]
    queued = 0
    async with in_transaction():
        withdrawn = await Share.filter(id=row["id"], withdrawn_at=None).update(withdrawn_at=now)
        if withdrawn:
            await _bump_config_version(agent_id)
            queued = await alerts.shares_withdrawn(
                event=WebhookEvent.SHARE_USED_UP, owners={row["id"]: row["user_id"]}, now=now
            )
    webhooks.wake_sender(ctx, queued)
    if withdrawn:
        ctx.events.emit(
            Event(kind=EventKind.CONFIG_CHANGED, user_id=row["user_id"], agent_id=agent_id)
        )
        audit.record(
            audit.Kind.SHARE_USED_UP,
            user_id=row["user_id"],
            actor=audit.Actor.ANONYMOUS,
            subject_kind="share",
            subject_id=row["id"],
            detail=f"{row['max_uses']} uses",
        )


# Counts a use while one is left; the count after it, or nothing.
_USE_SQLITE = sql.per_dialect(
    "UPDATE shares SET used_count = used_count + 1 WHERE id = $1"
    " AND (max_uses IS NULL OR used_count < max_uses)"
    " AND (expires_at IS NULL OR expires_at > $2) RETURNING used_count"
)

# A use and the link it opens (the count after this use as used_now), in one statement;
# nothing when no use is left or there is no such link: the link is then read again to
# say why. The conditions are checked again on the row's latest version once its lock
# is granted, so racing uses cannot overshoot max_uses.
_USE_POSTGRES = """
UPDATE shares s SET used_count = s.used_count + 1
FROM workers w JOIN agents a ON a.id = w.agent_id
WHERE s.short_code = $1 AND w.id = s.worker_id
  AND (s.max_uses IS NULL OR s.used_count < s.max_uses)
  AND (s.expires_at IS NULL OR s.expires_at > $2)
RETURNING s.id, s.user_id, s.worker_id, s.hardware_vendor, s.connection_ip,
    w.listen_port AS "worker__listen_port", w.agent_id AS "worker__agent_id",
    a.arch AS "worker__agent__arch", s.max_uses, s.used_count AS used_now
"""


async def _redeem_postgres(db: BaseDBAsyncClient, short_code: str, now: datetime) -> dict[str, Any]:
    rows = await db.execute_query_dict(_USE_POSTGRES, [short_code, now])
    if rows:
        return rows[0]
    row = await _public_row(short_code)  # 404 for no such link
    _check_usable(row, now)  # expired, or used up: say which
    row["used_now"] = None  # used up since the UPDATE (or deleted)
    return row


@dataclass(frozen=True, slots=True)
class SharePreview:
    """What the person who received a link may see of it, without using it up."""

    short_link: str
    hardware_vendor: str
    expires_at: datetime | None
    # None: no limit.
    uses_left: int | None
    # The worker's machine: pending, online or offline.
    machine_status: str
    # Why the link no longer lets anyone in (None: it does).
    gone: str | None


_PREVIEW_COLUMNS = (
    "short_code",
    "hardware_vendor",
    "expires_at",
    "max_uses",
    "used_count",
    "worker__agent__last_seen_at",
    "worker__agent__shut_down_at",
)


async def preview(*, ctx: ServerContext, short_code: str) -> SharePreview:
    """A link as its recipient's browser shows it: 404 unknown; never counts a use."""
    if not _CODE_SHAPE.match(short_code):
        raise NotFound("No such share.")
    rows = await Share.filter(short_code=short_code).values(*_PREVIEW_COLUMNS)
    if not rows:
        raise NotFound("No such share.")
    row = rows[0]
    now = clock.now()
    gone = None
    try:
        _check_usable(row, now)
    except Gone as error:
        gone = error.message
    state = agents.agent_state(
        ctx=ctx,
        last_seen_at=row["worker__agent__last_seen_at"],
        shut_down_at=row["worker__agent__shut_down_at"],
        now=now,
    )
    max_uses = row["max_uses"]
    return SharePreview(
        short_link=short_link(ctx, row["short_code"]),
        hardware_vendor=row["hardware_vendor"],
        expires_at=row["expires_at"],
        uses_left=None if max_uses is None else max(0, max_uses - row["used_count"]),
        machine_status=state.status,
        gone=gone,
    )
