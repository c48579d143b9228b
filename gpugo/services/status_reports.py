"""Agent status reports: the heartbeat that keeps an agent online and its workers current.

The hot path of the server (every agent, every minute), so it is written for few
statements: one SELECT each for the agent with its GPUs and for its workers (with
their connections when the report replaces some), then one bulk statement per kind
of change, and nothing at all for what did not change. A steady heartbeat is the
credential look-up plus three statements.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from gpugo import clock
from gpugo.auth.principal import Principal
from gpugo.context import ServerContext
from gpugo.errors import Unauthorized
from gpugo.events import Event, EventKind
from gpugo.inputs.agents import ConnectionInput, StatusReportInput, WorkerStatusInput
from gpugo.models import Agent, Gpu, Worker, WorkerConnection
from gpugo.services import licenses
from gpugo.services.agents import agent_state, license_gpu_ids

SHUTDOWN_EVENT = "shutdown"

# What identifies a reported connection; equal multisets mean "unchanged".
ConnectionKey = tuple[str, int | None, int | None, datetime]


@dataclass(frozen=True, slots=True)
class StatusReply:
    config_version: int
    license: licenses.License


@dataclass(slots=True)
class _CurrentWorker:
    status: str
    pid: int | None
    restarts: int | None
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


async def report(
    *, ctx: ServerContext, principal: Principal, data: StatusReportInput
) -> StatusReply:
    """Record a report of the principal's own agent; return its config_version and a license.

    Only this agent's workers and GPUs are touched: other ids are ignored, and a
    ``used_by_worker`` naming no worker of this agent is stored as null.
    """
    agent_id = principal.agent_id
    if agent_id is None:
        raise Unauthorized("An agent secret is required.")
    try:
        outcome = await _apply(ctx=ctx, agent_id=agent_id, data=data)
    except IntegrityError:
        # A worker of this agent was deleted between our read and our write (PostgreSQL's
        # foreign key noticed); the retry reads the current workers.
        outcome = await _apply(ctx=ctx, agent_id=agent_id, data=data)
    await _publish(ctx=ctx, principal=principal, agent_id=agent_id, data=data, outcome=outcome)
    return StatusReply(
        config_version=outcome.config_version,
        license=licenses.issue(ctx=ctx, gpu_ids=outcome.gpu_ids, plan=principal.plan),
    )


async def _apply(*, ctx: ServerContext, agent_id: str, data: StatusReportInput) -> _Outcome:
    now = clock.now()
    shutting_down = data.event == SHUTDOWN_EVENT
    # A worker reported twice counts as its last entry.
    reported = {w.worker_id: w for w in data.workers}
    replacing = {
        worker_id: conns
        for worker_id, w in reported.items()
        if (conns := _connections_to_store(w)) is not None
    }
    async with in_transaction():
        # Read before the UPDATE: the previous last_seen_at says whether this report brings
        # the agent online. (A worker change committing in between shows in the next reply.)
        agent_rows = await Agent.filter(id=agent_id).values(
            "config_version",
            "last_seen_at",
            "shut_down_at",
            "gpus__id",
            "gpus__gpu_id",
            "gpus__gpu_index",
            "gpus__used_by_worker_id",
        )
        if not agent_rows:
            raise Unauthorized("Unknown agent secret.")  # deleted meanwhile
        before = agent_state(
            ctx=ctx,
            last_seen_at=agent_rows[0]["last_seen_at"],
            shut_down_at=agent_rows[0]["shut_down_at"],
            now=now,
        )
        # The parent row first: the same lock order as worker changes (no deadlocks), and
        # it serialises reports of one agent on PostgreSQL.
        seen = await Agent.filter(id=agent_id).update(
            last_seen_at=now,
            shut_down_at=now if shutting_down else None,
            # A shutdown report publishes its own agent.offline; the sweeper must not repeat it.
            offline_notified=shutting_down,
        )
        if not seen:
            raise Unauthorized("Unknown agent secret.")
        gpus = [row for row in agent_rows if row["gpus__id"] is not None]
        needs_workers = bool(reported) or any(g.used_by_worker for g in data.gpus)
        current = (
            await _current_workers(agent_id, with_connections=bool(replacing))
            if needs_workers
            else {}
        )
        status_changed, process_changed = await _update_workers(agent_id, reported, current)
        gpus_changed = await _update_gpus(agent_id, data, gpus, owned=current.keys())
        connections_changed = await _replace_connections(replacing, current)
    return _Outcome(
        config_version=agent_rows[0]["config_version"],
        gpu_ids=license_gpu_ids((g["gpus__gpu_index"], g["gpus__gpu_id"]) for g in gpus),
        came_online=before.status != "online" and not shutting_down,
        status_changed=status_changed,
        connections_changed=connections_changed,
        updated=[
            name for name, yes in (("gpus", gpus_changed), ("workers", process_changed)) if yes
        ],
    )


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


async def _current_workers(agent_id: str, *, with_connections: bool) -> dict[str, _CurrentWorker]:
    columns = ["id", "status", "pid", "restarts"]
    if with_connections:
        # One LEFT JOIN instead of a second query: a row per connection.
        columns += [
            "connections__id",
            "connections__client_ip",
            "connections__client_port",
            "connections__client_pid",
            "connections__connected_at",
        ]
    rows: list[dict[str, Any]] = await Worker.filter(agent_id=agent_id).values(*columns)
    current: dict[str, _CurrentWorker] = {}
    for row in rows:
        worker = current.get(row["id"])
        if worker is None:
            worker = current[row["id"]] = _CurrentWorker(row["status"], row["pid"], row["restarts"])
        if with_connections and row["connections__id"] is not None:
            worker.connections[
                (
                    row["connections__client_ip"],
                    row["connections__client_port"],
                    row["connections__client_pid"],
                    row["connections__connected_at"],
                )
            ] += 1
    return current


async def _update_workers(
    agent_id: str, reported: dict[str, WorkerStatusInput], current: dict[str, _CurrentWorker]
) -> tuple[list[str], bool]:
    """One bulk UPDATE for the workers whose status, pid or restarts changed.

    Returns the workers whose status changed, and whether another worker only got a new
    pid or restart count.
    """
    changed: list[Worker] = []
    status_changed: list[str] = []
    process_changed = False
    for worker_id, report in reported.items():
        stored = current.get(worker_id)
        if stored is None:
            continue  # not this agent's worker
        # pid is as reported (absent: no process); restarts absent keeps the count.
        restarts = report.restarts if report.restarts is not None else stored.restarts
        if (report.status, report.pid, restarts) == (stored.status, stored.pid, stored.restarts):
            continue
        if report.status != stored.status:
            status_changed.append(worker_id)
        else:
            process_changed = True
        changed.append(
            Worker(id=worker_id, status=report.status, pid=report.pid, restarts=restarts)
        )
    if changed:
        await Worker.filter(agent_id=agent_id).bulk_update(
            changed, fields=["status", "pid", "restarts"]
        )
    return status_changed, process_changed


async def _update_gpus(
    agent_id: str, data: StatusReportInput, gpus: list[dict[str, Any]], *, owned: AbstractSet[str]
) -> bool:
    """One bulk UPDATE for the GPUs whose worker changed; unknown GPU ids are ignored."""
    wanted = {
        g.gpu_id: (g.used_by_worker if g.used_by_worker in owned else None) for g in data.gpus
    }
    changed = [
        Gpu(id=row["gpus__id"], used_by_worker_id=wanted[row["gpus__gpu_id"]])
        for row in gpus
        if row["gpus__gpu_id"] in wanted
        and wanted[row["gpus__gpu_id"]] != row["gpus__used_by_worker_id"]
    ]
    if changed:
        await Gpu.filter(agent_id=agent_id).bulk_update(changed, fields=["used_by_worker_id"])
    return bool(changed)


async def _replace_connections(
    replacing: dict[str, list[ConnectionInput]], current: dict[str, _CurrentWorker]
) -> list[str]:
    """Replace the connection lists that differ: one DELETE and one INSERT for all of them."""
    changed: dict[str, list[ConnectionInput]] = {}
    for worker_id, connections in replacing.items():
        worker = current.get(worker_id)
        if worker is None:
            continue  # not this agent's worker
        wanted = Counter(
            (c.client_ip, c.client_port, c.client_pid, c.connected_at) for c in connections
        )
        if wanted != worker.connections:
            changed[worker_id] = connections
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
        for worker_id, connections in changed.items()
        for c in connections
    ]
    if rows:
        await WorkerConnection.bulk_create(rows)
    return list(changed)


async def _publish(
    *,
    ctx: ServerContext,
    principal: Principal,
    agent_id: str,
    data: StatusReportInput,
    outcome: _Outcome,
) -> None:
    """After the commit, only what changed: a steady heartbeat publishes nothing."""
    user_id = principal.user_id
    if data.event == SHUTDOWN_EVENT:
        await ctx.events.publish(Event(EventKind.AGENT_OFFLINE, user_id, agent_id))
    elif outcome.came_online:
        await ctx.events.publish(Event(EventKind.AGENT_ONLINE, user_id, agent_id))
    for worker_id in outcome.status_changed:
        await ctx.events.publish(
            Event(EventKind.WORKER_STATUS_CHANGED, user_id, agent_id, resource_id=worker_id)
        )
    for worker_id in outcome.connections_changed:
        await ctx.events.publish(
            Event(EventKind.CONNECTIONS_CHANGED, user_id, agent_id, resource_id=worker_id)
        )
    if outcome.updated:
        await ctx.events.publish(
            Event(EventKind.AGENT_UPDATED, user_id, agent_id, data={"changed": outcome.updated})
        )
