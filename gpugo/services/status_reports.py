"""Agent status reports: the heartbeat that keeps an agent online and its workers current.

The hot path of the server (every agent, every 30 s or so). One statement reads the
agent by its secret's hash together with its plan, GPUs, workers and connections:
that is the credential check and everything needed to tell what the report changes.
Each process keeps that row in memory (services/agent_states.py), dropped by the
events of every change on every instance (a deleted agent, a new plan, a worker
changed): a report the row in memory shows to be a steady heartbeat is answered
from it, anything else reads the database again.

- A steady heartbeat (nothing changed, the agent online) writes nothing itself: its
  ``last_seen_at`` goes to the LastSeenWriter, which writes every agent seen in the
  last interval with one UPDATE (``GPUGO_LAST_SEEN_FLUSH_SECONDS``). No statement
  when its row is in memory, one otherwise.
- Anything else runs in one transaction: the agent row's UPDATE first (the lock that
  serialises reports of one agent, in the same order as worker changes), the workers
  (and connections) read again under that lock, then one bulk statement per kind of
  change, and nothing for what did not change.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import orjson
from tortoise import connections
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from gpugo import clock, sql
from gpugo.auth.principal import CredentialKind, Principal
from gpugo.auth.resolve import refused_agent_secret
from gpugo.context import ServerContext
from gpugo.errors import Forbidden, GpugoError, Unauthorized
from gpugo.events import Event, EventKind
from gpugo.inputs.agents import (
    ConnectionInput,
    ReportReadings,
    StatusReportInput,
    WorkerStatusInput,
)
from gpugo.inputs.common import parse_input
from gpugo.models import Agent, WorkerConnection
from gpugo.services import alerts, licenses, metrics, shares, webhooks
from gpugo.services.agent_states import CachedState, ReadToken
from gpugo.services.agents import agent_state, license_gpu_ids
from gpugo.services.worker_writes import WorkerWrite
from gpugo.timefmt import parse_stored
from gpugo.webhook_events import WebhookEvent

SHUTDOWN_EVENT = "shutdown"
# The agent keeps the license it holds until less than this is left (it rewrites its
# config file for every license it receives).
LICENSE_RENEWAL_MARGIN = timedelta(minutes=10)

# What identifies a reported connection; equal multisets mean "unchanged".
ConnectionKey = tuple[str, int | None, int | None, datetime]


@dataclass(frozen=True, slots=True)
class StatusReply:
    config_version: int
    # None while the license the agent holds is good for a while yet.
    license: licenses.License | None
    # Worker id -> the short codes of its live share links (the agent lets them in).
    worker_share_codes: dict[str, list[str]]


@dataclass(slots=True)
class _CurrentWorker:
    status: str
    pid: int | None
    restarts: int | None
    gpu_ids: tuple[str, ...] = ()
    connections: Counter[ConnectionKey] = field(default_factory=Counter)


@dataclass(slots=True)
class _Outcome:
    config_version: int
    gpu_ids: list[str]
    came_online: bool
    status_changed: list[str] = field(default_factory=list)
    connections_changed: list[str] = field(default_factory=list)
    # What else changed ("gpus": GPU use, "workers": a pid or restart count): agent.updated.
    updated: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _State:
    """The agent as the report found it (read before any lock)."""

    agent_id: str
    user_id: str
    plan: str
    config_version: int
    last_seen_at: datetime | None
    shut_down_at: datetime | None
    offline_notified: bool
    # (pk, gpu_id, gpu_index, used_by_worker_id)
    gpus: list[tuple[str, str, int | None, str | None]]
    workers: dict[str, _CurrentWorker]
    share_codes: dict[str, list[str]]
    # What the user's enabled webhook endpoints listen to, read with the rest: a changing
    # report looks its alerts up only when someone listens. Held like the rest: growth is
    # told (WEBHOOKS_CHANGED); a listener gone only costs the look-up. An endpoint created
    # while a report is applied, after its read, misses that report's alert, as it would
    # have a moment earlier.
    webhook_events: frozenset[str]


# An agent with everything a report compares against, in one statement; child rows come
# as JSON arrays (no row multiplication). Without its WHERE: the warm-up reads it too.
STATE_FROM = """
SELECT a.id, a.user_id, u.plan, a.config_version, a.last_seen_at, a.shut_down_at,
    a.offline_notified, a.secret_hash,
    (SELECT json_agg(json_build_array(g.id, g.gpu_id, g.gpu_index, g.used_by_worker_id))
        FROM gpus g WHERE g.agent_id = a.id) AS gpus,
    (SELECT json_agg(json_build_array(w.id, w.status, w.pid, w.restarts, to_json(w.gpu_ids)))
        FROM workers w WHERE w.agent_id = a.id) AS workers,
    (SELECT json_agg(json_build_array(
            c.worker_id, c.client_ip, c.client_port, c.client_pid, c.connected_at))
        FROM worker_connections c JOIN workers w ON w.id = c.worker_id
        WHERE w.agent_id = a.id) AS connections,
    (SELECT json_agg(json_build_array(
            s.worker_id, s.short_code, s.expires_at, s.max_uses, s.used_count))
        FROM shares s JOIN workers w ON w.id = s.worker_id
        WHERE w.agent_id = a.id AND s.withdrawn_at IS NULL) AS shares,
    (SELECT json_agg(to_json(e.events)) FROM webhook_endpoints e
        WHERE e.user_id = a.user_id AND e.enabled) AS webhook_events
FROM agents a JOIN users u ON u.id = a.user_id
"""
_STATE = sql.per_dialect(STATE_FROM + "WHERE a.secret_hash = $1")


_COLUMNS = (
    "id",
    "user_id",
    "plan",
    "config_version",
    "last_seen_at",
    "shut_down_at",
    "offline_notified",
    "gpus",
    "workers",
    "connections",
    "shares",
    "webhook_events",
)


_LAST_SEEN_AT, _SHUT_DOWN_AT, _OFFLINE_NOTIFIED, _WORKERS_JSON = (
    _COLUMNS.index(name) for name in ("last_seen_at", "shut_down_at", "offline_notified", "workers")
)


async def _read_row(secret_hash: str) -> tuple[Any, ...] | None:
    rows = await sql.fetch(_STATE, [secret_hash])
    return held_row(rows[0]) if rows else None


def held_row(row: dict[str, Any]) -> tuple[Any, ...]:
    """A row of ``STATE_FROM`` as held in memory per agent (services/agent_states.py):
    one string per plan and user."""
    return tuple(
        sys.intern(row[column]) if column in ("plan", "user_id") else row[column]
        for column in _COLUMNS
    )


def _state_of(row: tuple[Any, ...], now: datetime) -> _State:
    (
        agent_id,
        user_id,
        plan,
        config_version,
        last_seen_at,
        shut_down_at,
        offline_notified,
        gpus,
        workers_json,
        connections,
        shares_json,
        webhook_events,
    ) = row
    workers = {
        worker_id: _CurrentWorker(status, pid, restarts, tuple(gpu_ids or ()))
        for worker_id, status, pid, restarts, gpu_ids in orjson.loads(workers_json or "[]")
    }
    share_codes: dict[str, list[str]] = {}
    for worker_id, code, expires_at, max_uses, used_count in orjson.loads(shares_json or "[]"):
        if shares.is_live(
            expires_at=parse_stored(expires_at), max_uses=max_uses, used_count=used_count, now=now
        ):
            share_codes.setdefault(worker_id, []).append(code)
    for worker_id, ip, port, pid, connected_at in orjson.loads(connections or "[]"):
        workers[worker_id].connections[(ip, port, pid, parse_stored(connected_at))] += 1
    return _State(
        agent_id=agent_id,
        user_id=user_id,
        plan=plan,
        config_version=config_version,
        last_seen_at=parse_stored(last_seen_at),
        shut_down_at=parse_stored(shut_down_at),
        offline_notified=bool(offline_notified),
        gpus=[tuple(g) for g in orjson.loads(gpus or "[]")],  # type: ignore[misc]
        workers=workers,
        share_codes={worker_id: sorted(codes) for worker_id, codes in share_codes.items()},
        webhook_events=frozenset(
            event for events in orjson.loads(webhook_events or "[]") for event in events or ()
        ),
    )


def _held_state(cached: CachedState, agent_id: str, now: datetime) -> _State | None:
    """The state held in memory, with the newest last_seen_at this process knows; None
    on another agent's path (decided on a fresh read: 403)."""
    state = _state_of(cached.row, now)
    if cached.last_seen_at is not None and (
        state.last_seen_at is None or cached.last_seen_at > state.last_seen_at
    ):
        state.last_seen_at = cached.last_seen_at
    return state if state.agent_id == agent_id else None


def _steady_from_memory(
    ctx: ServerContext, cached: CachedState, state: _State, now: datetime
) -> bool:
    """Whether the held ``state`` (which the report changes nothing of) shows a steady
    heartbeat whose last_seen_at may wait for the flush: then the report needs no
    database round trip, and its last_seen_at is handed to the flush."""
    if not _is_steady(ctx, state, now) or not _may_defer(ctx, state, now):
        return False
    ctx.last_seen.touch(state.agent_id, now)
    cached.last_seen_at = now
    return True


# The readings are left out of a body's fingerprint: they differ in every report.
_READINGS = frozenset(ReportReadings.model_fields)


def _fingerprint(body: bytes) -> tuple[bytes, dict[str, Any]] | None:
    """A report body's fingerprint (all but its readings) and the body decoded; None for
    a body the fast path leaves to the full reading (not an object, or spelling U+0000,
    which only the full reading refuses)."""
    if b"\\u0000" in body:
        return None
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(decoded, dict):
        return None
    rest = {key: value for key, value in decoded.items() if key not in _READINGS}
    return hashlib.blake2b(orjson.dumps(rest), digest_size=16).digest(), decoded


def _digest(seen: tuple[bytes, dict[str, Any]] | None) -> bytes | None:
    return seen[0] if seen is not None else None


def _readings_of(decoded: dict[str, Any]) -> ReportReadings | None:
    """A report's readings alone, or None when they are not valid (the full reading of
    the body then says what is wrong)."""
    try:
        return parse_input(ReportReadings, {k: decoded[k] for k in _READINGS if k in decoded})
    except GpugoError:
        return None


async def report(
    *, ctx: ServerContext, secret_hash: str, agent_id: str, body: bytes
) -> StatusReply:
    """Record a report (``body``: the JSON as sent) of the agent whose secret hashes to
    ``secret_hash``; ValidationFailed when it is not a report.

    401 for an unknown (or deleted) agent, 403 for another agent's path. Returns its
    config_version, the live share codes of its workers, and a license for its current
    plan when the one it holds is about to expire. Only this agent's workers and GPUs
    are touched: other ids are ignored, and a ``used_by_worker`` naming no worker of
    this agent is stored as null.

    Most reports are the last one again but for their readings (time, license,
    metrics): one whose fingerprint is that of a body found to change nothing of the
    state still held is answered from it, its readings alone validated.
    """
    now = clock.now()
    await ctx.agent_states.other_writers()
    cached = ctx.agent_states.get(secret_hash)
    held = _held_state(cached, agent_id, now) if cached is not None else None
    # Fingerprinted once: to recognise the body, or to remember it if it changes nothing.
    seen = _fingerprint(body) if held is not None else None
    if (
        cached is not None
        and held is not None
        and seen is not None
        and seen[0] == cached.unchanged_digest
    ):
        readings = _readings_of(seen[1])
        if readings is not None and _steady_from_memory(ctx, cached, held, now):
            return await _reply(
                ctx=ctx, state=held, readings=readings, outcome=_outcome(held), now=now
            )
    data = parse_input(StatusReportInput, body)
    if cached is not None and held is not None:
        if _changes_nothing(held, data):
            if _steady_from_memory(ctx, cached, held, now):
                cached.unchanged_digest = _digest(seen)
                return await _reply(
                    ctx=ctx, state=held, readings=data, outcome=_outcome(held), now=now
                )
        elif (change := _workers_only(ctx, held, data, now)) is not None:
            token = ctx.agent_states.begin()
            outcome = await _write_workers(
                ctx, secret_hash, cached.row, held, data, change, now, token
            )
            return await _reply(ctx=ctx, state=held, readings=data, outcome=outcome, now=now)
    token = ctx.agent_states.begin()
    row = await _read_row(secret_hash)
    if row is None:
        refused_agent_secret(agent_id=agent_id, secret_owner=None)
        raise Unauthorized("Unknown agent secret.")
    state = _state_of(row, now)
    if state.agent_id != agent_id:
        refused_agent_secret(
            agent_id=agent_id,
            secret_owner=Principal(
                kind=CredentialKind.AGENT,
                user_id=state.user_id,
                plan=state.plan,
                agent_id=state.agent_id,
            ),
        )
        raise Forbidden("This agent secret belongs to another agent.")
    if _is_steady(ctx, state, now) and _changes_nothing(state, data):
        if _may_defer(ctx, state, now):
            ctx.last_seen.touch(agent_id, now)
        elif not await Agent.filter(id=agent_id).update(last_seen_at=now):
            raise Unauthorized("Unknown agent secret.")  # deleted meanwhile
        ctx.agent_states.store(
            secret_hash,
            agent_id=state.agent_id,
            user_id=state.user_id,
            row=row,
            last_seen_at=now,
            token=token,
            unchanged_digest=_digest(seen if seen is not None else _fingerprint(body)),
        )
        outcome = _outcome(state)
    elif (change := _workers_only(ctx, state, data, now)) is not None:
        outcome = await _write_workers(ctx, secret_hash, row, state, data, change, now, token)
        return await _reply(ctx=ctx, state=state, readings=data, outcome=outcome, now=now)
    else:
        outcome = await _apply_retried(ctx=ctx, state=state, data=data, now=now)
        # Whatever it wrote is read again by the next report (here; others hear the events).
        ctx.agent_states.forget_agent(agent_id)
    await _publish(ctx=ctx, user_id=state.user_id, agent_id=agent_id, data=data, outcome=outcome)
    return await _reply(ctx=ctx, state=state, readings=data, outcome=outcome, now=now)


async def _write_workers(
    ctx: ServerContext,
    secret_hash: str,
    row: tuple[Any, ...],
    state: _State,
    data: StatusReportInput,
    change: _WorkersChange,
    now: datetime,
    token: ReadToken,
) -> _Outcome:
    """A workers-only change, written by one statement that compares each worker with
    ``state`` (``row``, read or held since ``token``) under its lock; the row as
    written is then held in its place, so that the agent's next report (a change or a
    heartbeat) needs no read either. A worker changed by someone else since (not heard
    of yet) sends the report the full way, and nothing is held."""
    outcome, whole = await _apply_workers_only(
        ctx=ctx, state=state, data=data, change=change, now=now
    )
    if not whole:
        ctx.agent_states.forget_agent(state.agent_id)
        await _publish(
            ctx=ctx, user_id=state.user_id, agent_id=state.agent_id, data=data, outcome=outcome
        )
        return outcome
    # Held as written once this process's caches have heard the report's own events
    # (which drop the agent's row): those invalidations pass, and nothing else.
    ours = ctx.agent_states.begin()
    await ctx.events.publish_all(
        _events(data=data, user_id=state.user_id, agent_id=state.agent_id, outcome=outcome),
        told=lambda: ctx.agent_states.store(
            secret_hash,
            agent_id=state.agent_id,
            user_id=state.user_id,
            row=_written_row(row, state, change, now),
            last_seen_at=now,
            token=token,
            ours_since=ours,
        ),
    )
    return outcome


async def _reply(
    *,
    ctx: ServerContext,
    state: _State,
    readings: ReportReadings,
    outcome: _Outcome,
    now: datetime,
) -> StatusReply:
    if readings.metrics:
        await _record_metrics(ctx=ctx, state=state, readings=readings)
    license = None
    if _needs_license(ctx, readings.license_expiration, now):
        license = licenses.issue(ctx=ctx, gpu_ids=outcome.gpu_ids, plan=state.plan)
    return StatusReply(
        config_version=outcome.config_version,
        license=license,
        worker_share_codes=state.share_codes,
    )


async def _record_metrics(*, ctx: ServerContext, state: _State, readings: ReportReadings) -> None:
    """The report's metrics; whatever happens to them, the heartbeat stands (its writes
    are committed, and the agent would only send the same metrics again)."""
    try:
        await metrics.record_line_protocol(
            ctx=ctx,
            agent_id=state.agent_id,
            user_id=state.user_id,
            plan=state.plan,
            text=readings.metrics or "",
            gpu_ids=[gpu_id for _, gpu_id, _, _ in state.gpus],
            worker_ids=state.workers.keys(),
            reported_at=readings.timestamp,
        )
    except Exception as exc:
        # The agent deleted meanwhile, or the database gone: counted in a log line (at most
        # one a minute per agent), answered 200 all the same.
        metrics.failed_writes.add(state.agent_id, detail=type(exc).__name__)


def _needs_license(ctx: ServerContext, held_expiry_ms: int | None, now: datetime) -> bool:
    """Whether to send a new license: none held, or one expiring within the margin.

    A held expiry later than any this server issues is not one of ours (or the agent's
    clock is off): it gets a fresh license too. A plan change reaches the agent through
    its next config pull (``users.set_plan`` bumps config_version).
    """
    if held_expiry_ms is None:
        return True
    now_ms = now.timestamp() * 1000
    margin_ms = LICENSE_RENEWAL_MARGIN.total_seconds() * 1000
    longest_ms = (ctx.settings.license_ttl_seconds + 60) * 1000
    return not (now_ms + margin_ms <= held_expiry_ms <= now_ms + longest_ms)


def _outcome(state: _State, *, came_online: bool = False, **changed: Any) -> _Outcome:
    """What a report did to ``state``'s agent: nothing but last_seen_at unless told."""
    return _Outcome(state.config_version, _license_gpu_ids(state), came_online, **changed)


def _license_gpu_ids(state: _State) -> list[str]:
    return license_gpu_ids((index, gpu_id) for _, gpu_id, index, _ in state.gpus)


def _is_steady(ctx: ServerContext, state: _State, now: datetime) -> bool:
    """Whether the agent is online, so that a report changing nothing keeps it so."""
    if state.shut_down_at is not None or state.offline_notified:
        return False
    before = agent_state(
        ctx=ctx, last_seen_at=state.last_seen_at, shut_down_at=state.shut_down_at, now=now
    )
    return before.status == "online"


def _changes_nothing(state: _State, data: StatusReportInput) -> bool:
    """True when the report changes nothing but last_seen_at (by what was read). A pure
    function of the state's row and the report without its readings (``_fingerprint``)."""
    if data.event == SHUTDOWN_EVENT:
        return False
    reported = {w.worker_id: w for w in data.workers}
    changes, _, _ = _worker_changes(reported, state.workers)
    if changes:
        return False
    if _gpu_changes(data, state.gpus, workers=state.workers, reported=reported):
        return False
    return not _connection_changes(_replacing(reported), state.workers)


def _may_defer(ctx: ServerContext, state: _State, now: datetime) -> bool:
    """Whether last_seen_at may wait for the next flush.

    Only while the stored value is fresh (within half the offline threshold) and not
    ahead of this report: then a flush a second late cannot let the agent look offline.
    """
    if ctx.settings.last_seen_flush_seconds <= 0 or state.last_seen_at is None:
        return False
    age = now - state.last_seen_at
    return timedelta(0) <= age <= timedelta(seconds=ctx.settings.agent_offline_seconds / 2)


async def _apply_retried(
    *, ctx: ServerContext, state: _State, data: StatusReportInput, now: datetime
) -> _Outcome:
    try:
        return await _apply(ctx=ctx, state=state, data=data, now=now)
    except IntegrityError:
        # A worker of this agent was deleted between our read and our write (PostgreSQL's
        # foreign key noticed); the retry reads the current workers.
        return await _apply(ctx=ctx, state=state, data=data, now=now)


@dataclass(frozen=True, slots=True)
class _WorkersChange:
    """A report's changes when they are only its workers' status, pid or restarts."""

    changed: list[_WorkerWrite]
    status_changed: list[str]
    process_changed: bool


def _workers_only(
    ctx: ServerContext, state: _State, data: StatusReportInput, now: datetime
) -> _WorkersChange | None:
    """The report's worker changes when that is all it changes, of an online agent, with
    no ``worker.failed`` to send (no worker failed, or nobody listens), on PostgreSQL
    (one statement writes them: ``services/worker_writes.py``); None otherwise (``_apply``)."""
    if data.event == SHUTDOWN_EVENT or not _is_steady(ctx, state, now):
        return None
    reported = {w.worker_id: w for w in data.workers}
    changed, status_changed, process_changed = _worker_changes(reported, state.workers)
    if (
        not changed
        or _gpu_changes(data, state.gpus, workers=state.workers, reported=reported)
        or _connection_changes(_replacing(reported), state.workers)
        or (WebhookEvent.WORKER_FAILED in state.webhook_events and _any_failed(changed, state))
    ):
        return None
    if connections.get("default").capabilities.dialect != "postgres":
        return None
    return _WorkersChange(changed, status_changed, process_changed)


def _any_failed(changed: list[_WorkerWrite], state: _State) -> bool:
    return any(
        alerts.failed(
            state.workers[w.id].status, state.workers[w.id].restarts, w.status, w.restarts
        )
        for w in changed
    )


async def _apply_workers_only(
    *,
    ctx: ServerContext,
    state: _State,
    data: StatusReportInput,
    change: _WorkersChange,
    now: datetime,
) -> tuple[_Outcome, bool]:
    """The report's workers written by one statement (with other reports' of the same
    moment: ``WorkerWrites``); True with it when that wrote it all.

    A worker someone else changed since ``state`` was read (or an agent deleted
    meanwhile) is not written by it: the report is then applied the full way, which
    reads the workers again under the lock; what this statement did write is still told.
    """
    changed = change.changed
    written = await ctx.worker_writes.write(
        state.agent_id,
        now,
        [
            WorkerWrite(
                w.id,
                w.status,
                w.pid,
                w.restarts,
                (was := state.workers[w.id]).status,
                was.pid,
                was.restarts,
            )
            for w in changed
        ],
    )
    ctx.last_seen.forget(state.agent_id, now)
    if len(written) == len(changed):
        outcome = _outcome(
            state,
            status_changed=change.status_changed,
            updated=["workers"] if change.process_changed else [],
        )
        return outcome, True
    rest = await _apply_retried(ctx=ctx, state=state, data=data, now=now)
    rest.status_changed += [w for w in change.status_changed if w in written]
    if any(w.id in written and w.id not in change.status_changed for w in changed):
        rest.updated = sorted({*rest.updated, "workers"})
    return rest, False


def _written_row(
    held: tuple[Any, ...], state: _State, change: _WorkersChange, now: datetime
) -> tuple[Any, ...]:
    """The row ``_STATE`` would read after ``change`` was written over the
    ``held`` one (``state``): the agent seen now, its workers as written."""
    row = list(held)
    written = {w.id: w for w in change.changed}
    workers = []
    for worker_id, current in state.workers.items():
        w = written.get(worker_id)
        status, pid, restarts = (
            (w.status, w.pid, w.restarts) if w else (current.status, current.pid, current.restarts)
        )
        workers.append((worker_id, status, pid, restarts, current.gpu_ids))
    row[_LAST_SEEN_AT] = now
    row[_SHUT_DOWN_AT] = None
    row[_OFFLINE_NOTIFIED] = False
    row[_WORKERS_JSON] = orjson.dumps(workers)
    return tuple(row)


async def _apply(
    *, ctx: ServerContext, state: _State, data: StatusReportInput, now: datetime
) -> _Outcome:
    agent_id = state.agent_id
    shutting_down = data.event == SHUTDOWN_EVENT
    # A worker reported twice counts as its last entry.
    reported = {w.worker_id: w for w in data.workers}
    replacing = _replacing(reported)
    # The state was read before the UPDATE: its last_seen_at says whether this report
    # brings the agent online. (A worker change committing in between shows in the next
    # reply.)
    before = agent_state(
        ctx=ctx, last_seen_at=state.last_seen_at, shut_down_at=state.shut_down_at, now=now
    )
    async with in_transaction():
        # The parent row first: the same lock order as worker changes (no deadlocks), and
        # it serialises reports of one agent on PostgreSQL.
        # A shutdown report publishes its own agent.offline; the sweeper must not repeat it.
        seen = await sql.fetch(
            _MARK_SEEN, [now, now if shutting_down else None, shutting_down, agent_id]
        )
        if not seen:
            raise Unauthorized("Unknown agent secret.")  # deleted meanwhile
        # GPU use is told by the workers: by name, or (null) by which running one holds it.
        needs_workers = bool(reported) or bool(data.gpus)
        current = (
            await _current_workers(agent_id, with_connections=bool(replacing))
            if needs_workers
            else {}
        )
        status_changed, process_changed = await _update_workers(agent_id, reported, current)
        gpus_changed = await _update_gpus(
            agent_id, data, state.gpus, workers=current, reported=reported
        )
        connections_changed = await _replace_connections(replacing, current)
        came_online = before.status != "online" and not shutting_down
        queued = await _alert(
            ctx, state, reported, current, now, shutting_down=shutting_down, came_online=came_online
        )
    webhooks.wake_sender(ctx, queued)
    ctx.last_seen.forget(agent_id, now)
    return _outcome(
        state,
        came_online=came_online,
        status_changed=status_changed,
        connections_changed=connections_changed,
        updated=[
            name for name, yes in (("gpus", gpus_changed), ("workers", process_changed)) if yes
        ],
    )


async def _alert(
    ctx: ServerContext,
    state: _State,
    reported: dict[str, WorkerStatusInput],
    current: dict[str, _CurrentWorker],
    now: datetime,
    *,
    shutting_down: bool,
    came_online: bool,
) -> int:
    """The report's webhook deliveries, in its transaction (services/alerts.py)."""
    queued = 0
    listening = state.webhook_events
    if shutting_down:
        # Once per going offline: not again when it was already shut down or announced.
        if (
            state.shut_down_at is None
            and not state.offline_notified
            and WebhookEvent.AGENT_OFFLINE in listening
        ):
            queued += await alerts.agents_offline(
                owners={state.agent_id: state.user_id}, reason=alerts.SHUTDOWN, now=now
            )
    elif came_online and WebhookEvent.AGENT_ONLINE in listening:
        queued += await alerts.agent_online(user_id=state.user_id, agent_id=state.agent_id, now=now)
    if WebhookEvent.WORKER_FAILED not in listening:
        return queued
    reasons = {
        worker_id: reason
        for worker_id, w in reported.items()
        if worker_id in current
        and (
            reason := alerts.failed(
                current[worker_id].status, current[worker_id].restarts, w.status, w.restarts or 0
            )
        )
    }
    if reasons:
        queued += await alerts.workers_failed(user_id=state.user_id, reasons=reasons, now=now)
    return queued


def _replacing(reported: dict[str, WorkerStatusInput]) -> dict[str, list[ConnectionInput]]:
    return {
        worker_id: conns
        for worker_id, w in reported.items()
        if (conns := _connections_to_store(w)) is not None
    }


def _connections_to_store(worker: WorkerStatusInput) -> list[ConnectionInput] | None:
    """The worker's new connection list, or None to keep the stored one."""
    if worker.connection_changed is False:
        # The real agent stamps connected_at with the report's time; "unchanged" keeps the
        # first-seen times.
        return None
    if worker.connections is not None:
        return worker.connections
    # The real agent omits an empty list (Go omitempty) and flags the change instead.
    return [] if worker.connection_changed else None


# The agent's workers (and their connections: one row per connection), read again under
# the agent row's lock. Hand-written like _STATE: no query is built per report.
_WORKERS = sql.per_dialect("""
SELECT w.id, w.status, w.pid, w.restarts, w.gpu_ids FROM workers w WHERE w.agent_id = $1
""")
_WORKERS_WITH_CONNECTIONS = sql.per_dialect("""
SELECT w.id, w.status, w.pid, w.restarts, w.gpu_ids, c.id AS connection_id, c.client_ip,
    c.client_port, c.client_pid, c.connected_at
FROM workers w LEFT JOIN worker_connections c ON c.worker_id = w.id
WHERE w.agent_id = $1
""")


async def _current_workers(agent_id: str, *, with_connections: bool) -> dict[str, _CurrentWorker]:
    statements = _WORKERS_WITH_CONNECTIONS if with_connections else _WORKERS
    current: dict[str, _CurrentWorker] = {}
    for row in await sql.fetch(statements, [agent_id]):
        worker = current.get(row["id"])
        if worker is None:
            worker = current[row["id"]] = _CurrentWorker(
                row["status"],
                row["pid"],
                row["restarts"],
                tuple(sql.json_value(row["gpu_ids"]) or ()),
            )
        if with_connections and row["connection_id"] is not None:
            worker.connections[
                (
                    row["client_ip"],
                    row["client_port"],
                    row["client_pid"],
                    parse_stored(row["connected_at"]),
                )
            ] += 1
    return current


class _WorkerWrite(NamedTuple):
    id: str
    status: str
    pid: int
    restarts: int


def _worker_changes(
    reported: dict[str, WorkerStatusInput], current: dict[str, _CurrentWorker]
) -> tuple[list[_WorkerWrite], list[str], bool]:
    """The workers to write, those whose status changed, and whether another worker only
    got a new pid or restart count."""
    changed: list[_WorkerWrite] = []
    status_changed: list[str] = []
    process_changed = False
    for worker_id, report in reported.items():
        stored = current.get(worker_id)
        if stored is None:
            continue  # not this agent's worker
        # The agent omits a zero pid or restart count (Go omitempty): absent means 0.
        pid, restarts = report.pid or 0, report.restarts or 0
        if (report.status, pid, restarts) == (stored.status, stored.pid, stored.restarts):
            continue
        if report.status != stored.status:
            status_changed.append(worker_id)
        else:
            process_changed = True
        changed.append(_WorkerWrite(worker_id, report.status, pid, restarts))
    return changed, status_changed, process_changed


async def _update_workers(
    agent_id: str, reported: dict[str, WorkerStatusInput], current: dict[str, _CurrentWorker]
) -> tuple[list[str], bool]:
    """One bulk UPDATE for the workers whose status, pid or restarts changed.

    Returns the workers whose status changed, and whether another worker only got a new
    pid or restart count.
    """
    changed, status_changed, process_changed = _worker_changes(reported, current)
    if changed:
        await _bulk_update(
            "workers",
            _WORKER_COLUMNS,
            agent_id,
            [(w.id, tuple(getattr(w, column) for column in _WORKER_COLUMNS)) for w in changed],
        )
    return status_changed, process_changed


# The agent's row first in a report's transaction (the lock order of worker changes).
_MARK_SEEN = sql.per_dialect(
    "UPDATE agents SET last_seen_at = $1, shut_down_at = $2, offline_notified = $3"
    " WHERE id = $4 RETURNING id"
)
_WORKER_COLUMNS = {"status": "VARCHAR(16)", "pid": "INT", "restarts": "INT"}
_GPU_COLUMNS = {"used_by_worker_id": "VARCHAR(32)"}


async def _bulk_update(
    table: str,
    columns: dict[str, str],
    agent_id: str,
    rows: list[tuple[str, tuple[Any, ...]]],
) -> None:
    """One UPDATE of the agent's ``rows`` (id, the values of ``columns`` in order)."""
    params: list[Any] = []
    for index in range(len(columns)):
        for row_id, values in rows:
            params += [row_id, values[index]]
    params.append(agent_id)
    params += [row_id for row_id, _ in rows]
    await sql.fetch(_bulk_update_sql(table, tuple(columns.items()), len(rows)), params)


@functools.lru_cache(maxsize=64)
def _bulk_update_sql(
    table: str, columns: tuple[tuple[str, str], ...], count: int
) -> dict[str, str]:
    """One UPDATE of ``count`` rows of ``table`` (a CASE per column, as Tortoise's
    bulk_update writes it), built once per shape instead of per report. Parameters:
    (id, value) per row for each column in turn, the agent id, the ids."""
    numbers = itertools.count(1)

    def mark(cast: str) -> str:
        return f"CAST(${next(numbers)} AS {cast})"

    sets = []
    for column, cast in columns:
        whens = " ".join(f"WHEN {mark('VARCHAR(32)')} THEN {mark(cast)}" for _ in range(count))
        sets.append(f"{column} = CASE id {whens} END")
    agent = mark("VARCHAR(32)")
    ids = ", ".join(mark("VARCHAR(32)") for _ in range(count))
    # Only placeholders and this module's own table and column names enter the text.
    return sql.per_dialect(
        f"UPDATE {table} SET {', '.join(sets)} WHERE agent_id = {agent} AND id IN ({ids})"  # noqa: S608
    )


def _gpu_users(
    data: StatusReportInput,
    *,
    workers: dict[str, _CurrentWorker],
    reported: dict[str, WorkerStatusInput],
) -> dict[str, str | None]:
    """Reported GPU id -> the worker using it.

    A worker the agent names must be one of its own (else none). ``null`` is what the
    real agent always sends: it means "not said", and the GPU is used by the running
    worker (as of this report) whose GPUs include it; the oldest id wins a GPU two
    running workers share.
    """
    holders: dict[str, str] = {}
    for worker_id in sorted(workers):
        report = reported.get(worker_id)
        status = report.status if report is not None else workers[worker_id].status
        if status == "running":
            for gpu_id in workers[worker_id].gpu_ids:
                holders.setdefault(gpu_id, worker_id)
    return {
        g.gpu_id: holders.get(g.gpu_id)
        if g.used_by_worker is None
        else (g.used_by_worker if g.used_by_worker in workers else None)
        for g in data.gpus
    }


def _gpu_changes(
    data: StatusReportInput,
    gpus: list[tuple[str, str, int | None, str | None]],
    *,
    workers: dict[str, _CurrentWorker],
    reported: dict[str, WorkerStatusInput],
) -> list[tuple[str, tuple[str | None]]]:
    """The GPUs whose worker changed (row id, new worker); unknown GPU ids are ignored."""
    wanted = _gpu_users(data, workers=workers, reported=reported)
    return [
        (pk, (wanted[gpu_id],))
        for pk, gpu_id, _, used_by in gpus
        if gpu_id in wanted and wanted[gpu_id] != used_by
    ]


async def _update_gpus(
    agent_id: str,
    data: StatusReportInput,
    gpus: list[tuple[str, str, int | None, str | None]],
    *,
    workers: dict[str, _CurrentWorker],
    reported: dict[str, WorkerStatusInput],
) -> bool:
    """One bulk UPDATE for the GPUs whose worker changed."""
    changed = _gpu_changes(data, gpus, workers=workers, reported=reported)
    if changed:
        await _bulk_update("gpus", _GPU_COLUMNS, agent_id, changed)
    return bool(changed)


def _connection_changes(
    replacing: dict[str, list[ConnectionInput]], current: dict[str, _CurrentWorker]
) -> dict[str, list[ConnectionInput]]:
    """The connection lists that differ from the stored ones (as multisets)."""
    changed: dict[str, list[ConnectionInput]] = {}
    for worker_id, conns in replacing.items():
        worker = current.get(worker_id)
        if worker is None:
            continue  # not this agent's worker
        wanted = Counter((c.client_ip, c.client_port, c.client_pid, c.connected_at) for c in conns)
        if wanted != worker.connections:
            changed[worker_id] = conns
    return changed


async def _replace_connections(
    replacing: dict[str, list[ConnectionInput]], current: dict[str, _CurrentWorker]
) -> list[str]:
    """Replace the connection lists that differ: one DELETE and one INSERT for all of them."""
    changed = _connection_changes(replacing, current)
    if not changed:
        return []
    await WorkerConnection.filter(worker_id__in=list(changed)).delete()
    rows = [
        WorkerConnection(
            worker_id=worker_id,
            client_ip=c.client_ip,
            client_port=c.client_port,
            client_pid=c.client_pid,
            connected_at=c.connected_at,
        )
        for worker_id, conns in changed.items()
        for c in conns
    ]
    if rows:
        await WorkerConnection.bulk_create(rows)
    return list(changed)


def _events(
    *, data: StatusReportInput, user_id: str, agent_id: str, outcome: _Outcome
) -> list[Event]:
    """Only what changed: a steady heartbeat has none."""
    events = []
    if data.event == SHUTDOWN_EVENT:
        events.append(Event(EventKind.AGENT_OFFLINE, user_id, agent_id))
    elif outcome.came_online:
        events.append(Event(EventKind.AGENT_ONLINE, user_id, agent_id))
    for worker_id in outcome.status_changed:
        events.append(
            Event(EventKind.WORKER_STATUS_CHANGED, user_id, agent_id, resource_id=worker_id)
        )
    for worker_id in outcome.connections_changed:
        events.append(
            Event(EventKind.CONNECTIONS_CHANGED, user_id, agent_id, resource_id=worker_id)
        )
    if outcome.updated:
        events.append(
            Event(EventKind.AGENT_UPDATED, user_id, agent_id, data={"changed": outcome.updated})
        )
    return events


async def _publish(
    *,
    ctx: ServerContext,
    user_id: str,
    agent_id: str,
    data: StatusReportInput,
    outcome: _Outcome,
) -> None:
    """After the commit."""
    await ctx.events.publish_all(
        _events(data=data, user_id=user_id, agent_id=agent_id, outcome=outcome)
    )
