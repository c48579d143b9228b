"""The fleet at a glance: a summary of every machine of a user, and one page of them
found by name, state and tag, in the order asked.

Two statements whatever the fleet's size: every agent with its labels and, as JSON
arrays, what the overview needs of its GPUs (id, model, user) and workers (status,
GPUs); and, on plans with metrics, the latest GPU readings of the last few minutes
(from the time-series engine instead, when one is configured: then one statement).
Search, filter, sort and the page are cut here, in memory: a fleet of 1,000 machines
is a thousand rows, and the summary needs every one of them anyway. Only the page's
machines become views.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from gpugo import clock, sql
from gpugo.auth.principal import Principal
from gpugo.context import ServerContext
from gpugo.errors import ServiceUnavailable, ValidationFailed
from gpugo.services import plans
from gpugo.services.agent_labels import labels_of
from gpugo.services.agents import SUMMARY_COLUMNS, AgentSummary, summary
from gpugo.services.views import Presence, presence_of
from gpugo.timefmt import parse_stored
from gpugo.timeseries import reads as tsdb

log = logging.getLogger("gpugo.fleet")

STATES = ("online", "offline", "pending")
SORTS = ("name", "status", "gpus", "utilization", "last_seen", "newest")
MAX_PAGE = 100
MAX_SEARCH = 100
# Problems first when sorting by state.
_STATE_ORDER = {"offline": 0, "pending": 1, "online": 2}


@dataclass(frozen=True, slots=True)
class MachineReading:
    """The latest GPU readings of one machine (each GPU's newest sample)."""

    utilization: float  # mean over its GPUs, percent
    temperature: int  # its hottest GPU, Celsius
    vram_used_mb: int
    vram_total_mb: int
    at: datetime
    gpus: int


@dataclass(frozen=True, slots=True)
class FleetMachine:
    summary: AgentSummary
    display_name: str | None
    tags: tuple[str, ...]
    # Its GPUs' models, in no particular order.
    models: tuple[str, ...]
    # What the machine last reported: current only while it is online (``presence``).
    gpus_in_use: int
    workers_running: int
    workers_total: int
    presence: Presence
    # None: no metrics on this plan, or none reported lately.
    reading: MachineReading | None

    @property
    def name(self) -> str:
        return self.display_name or self.summary.hostname

    @property
    def status(self) -> str:
        return self.summary.state.status


@dataclass(frozen=True, slots=True)
class FleetSummary:
    machines: int
    by_state: dict[str, int]
    gpus_total: int
    # On online machines: held by a running worker, or free. The rest are on machines
    # offline or pending, neither busy nor available as far as anyone knows (an offline
    # machine's last report is not counted as use now).
    gpus_in_use: int
    gpus_idle: int
    # Model name -> how many GPUs of it, most first.
    gpu_models: list[tuple[str, int]]
    metrics_included: bool
    # Over the machines reporting metrics lately (None: none, or not on this plan).
    utilization: float | None
    vram_used_mb: int | None
    vram_total_mb: int | None
    tags: list[str]


@dataclass(frozen=True, slots=True)
class FleetPage:
    summary: FleetSummary
    # Machines matching the search and filter, all pages.
    matching: int
    machines: list[FleetMachine]


# Every agent of a user with what the overview shows of its GPUs and workers.
_MACHINES = sql.per_dialect(
    f"SELECT {SUMMARY_COLUMNS}, a.display_name, a.tags,"  # noqa: S608 (constants only)
    " (SELECT json_agg(json_build_array(g.gpu_id, g.model, g.used_by_worker_id))"
    " FROM gpus g WHERE g.agent_id = a.id) AS gpus,"
    " (SELECT json_agg(json_build_array(w.status, to_json(w.gpu_ids)))"
    " FROM workers w WHERE w.agent_id = a.id) AS workers"
    " FROM agents a WHERE a.user_id = $1"
)


def _latest_sql() -> dict[str, str]:
    # Each GPU's newest sample since $2, for the user's agents: through the
    # (agent_id, recorded_at) index.
    return sql.per_dialect(
        "SELECT s.agent_id, s.gpu_id, s.utilization, s.temperature, s.vram_used_mb,"
        " s.vram_total_mb, s.recorded_at FROM gpu_metric_samples s JOIN ("
        "SELECT agent_id, gpu_id, MAX(recorded_at) AS at FROM gpu_metric_samples"
        " WHERE agent_id IN (SELECT id FROM agents WHERE user_id = $1) AND recorded_at >= $2"
        " GROUP BY agent_id, gpu_id) m ON s.agent_id = m.agent_id AND s.gpu_id = m.gpu_id"
        " AND s.recorded_at = m.at"
    )


_LATEST = _latest_sql()


async def _newest_samples(
    ctx: ServerContext, user_id: str, since: datetime
) -> list[dict[str, Any]]:
    """Each GPU's newest sample since ``since``, of the user's agents."""
    if ctx.timeseries is None:
        return await sql.fetch(_LATEST, [user_id, since])
    # --- time-series engine configured: the samples are there, not in SQL. ---
    try:
        return await tsdb.newest_gpu_samples(ctx.timeseries, user_id=user_id, since=since)
    except ServiceUnavailable:
        # The overview still shows the machines, without readings (docs/observability.md).
        log.warning("the fleet overview shows no readings: the metrics store cannot be read")
        return []


async def _readings(ctx: ServerContext, user_id: str, since: datetime) -> dict[str, MachineReading]:
    by_agent: dict[str, dict[str, dict[str, Any]]] = {}
    for row in await _newest_samples(ctx, user_id, since):
        by_agent.setdefault(row["agent_id"], {})[row["gpu_id"]] = row
    readings = {}
    for agent_id, gpus in by_agent.items():
        rows = list(gpus.values())
        readings[agent_id] = MachineReading(
            utilization=sum(r["utilization"] for r in rows) / len(rows),
            temperature=max(r["temperature"] for r in rows),
            vram_used_mb=sum(r["vram_used_mb"] for r in rows),
            vram_total_mb=sum(r["vram_total_mb"] for r in rows),
            at=max(parse_stored(r["recorded_at"]) for r in rows),  # type: ignore[type-var]
            gpus=len(rows),
        )
    return readings


def _machine(
    ctx: ServerContext, row: dict[str, Any], now: datetime, readings: dict[str, MachineReading]
) -> FleetMachine:
    view = summary(ctx, row, now)
    gpus = sql.json_value(row["gpus"]) or []
    workers = sql.json_value(row["workers"]) or []
    gpu_ids = {gpu_id for gpu_id, _, _ in gpus}
    # GPUs held by a running worker (the agent's report, or the worker's own list).
    held = {gpu_id for gpu_id, _, user in gpus if user}
    running = 0
    for status, worker_gpus in workers:
        if status == "running":
            running += 1
            held |= set(sql.json_value(worker_gpus) or [])
    name, tags = labels_of(row["display_name"], sql.json_value(row["tags"]))
    presence = presence_of(status=view.state.status, last_seen_at=view.last_seen_at)
    return FleetMachine(
        summary=view,
        display_name=name,
        tags=tags,
        models=tuple(model for _, model, _ in gpus),
        gpus_in_use=len(held & gpu_ids),
        workers_running=running,
        workers_total=len(workers),
        presence=presence,
        reading=readings.get(view.agent_id) if presence.agent_online else None,
    )


def _matches(machine: FleetMachine, words: list[str]) -> bool:
    view = machine.summary
    haystack = " ".join(
        [view.hostname, machine.display_name or "", *machine.tags, *view.network_ips]
    ).casefold()
    return all(word in haystack for word in words)


def _sort_key(sort: str) -> Any:
    def name(m: FleetMachine) -> tuple[str, str]:
        return (m.name.casefold(), m.summary.agent_id)

    if sort == "name":
        return name
    if sort == "status":
        return lambda m: (_STATE_ORDER[m.status], *name(m))
    if sort == "gpus":
        return lambda m: (-m.summary.gpu_count, *name(m))
    if sort == "utilization":
        return lambda m: (m.reading is None, -(m.reading.utilization if m.reading else 0), *name(m))
    if sort == "last_seen":
        # Longest silent first: the machines to look at.
        return lambda m: (
            m.summary.last_seen_at is not None,
            m.summary.last_seen_at or m.summary.created_at,
            *name(m),
        )
    return lambda m: (-m.summary.created_at.timestamp(), m.summary.agent_id)


def _check(*, search: str, state: str | None, sort: str, first: int, offset: int) -> None:
    if len(search) > MAX_SEARCH:
        raise ValidationFailed.field("search", f"At most {MAX_SEARCH} characters.")
    if state is not None and state not in STATES:
        raise ValidationFailed.field("state", f"One of {', '.join(STATES)}.")
    if sort not in SORTS:
        raise ValidationFailed.field("sort", f"One of {', '.join(SORTS)}.")
    if not 1 <= first <= MAX_PAGE:
        raise ValidationFailed.field("first", f"Must be between 1 and {MAX_PAGE}.")
    if offset < 0:
        raise ValidationFailed.field("offset", "Must not be negative.")


async def page(
    *,
    ctx: ServerContext,
    principal: Principal,
    search: str = "",
    state: str | None = None,
    sort: str = "name",
    first: int = 50,
    offset: int = 0,
) -> FleetPage:
    """The summary of all the caller's machines and one page of those that match."""
    _check(search=search, state=state, sort=sort, first=first, offset=offset)
    rows = await sql.fetch(_MACHINES, [principal.user_id])
    metrics_included = plans.limits_for(ctx, principal.plan).metrics
    readings: dict[str, MachineReading] = {}
    now = clock.now()
    if metrics_included and rows:
        since = now - timedelta(seconds=ctx.settings.agent_offline_seconds)
        readings = await _readings(ctx, principal.user_id, since)
    machines = [_machine(ctx, row, now, readings) for row in rows]
    fleet_summary = _summary(machines, metrics_included)
    words = search.casefold().split()
    found = [
        m
        for m in machines
        if (state is None or m.status == state) and (not words or _matches(m, words))
    ]
    found.sort(key=_sort_key(sort))
    return FleetPage(
        summary=fleet_summary, matching=len(found), machines=found[offset : offset + first]
    )


def _summary(machines: list[FleetMachine], metrics_included: bool) -> FleetSummary:
    by_state = Counter(m.status for m in machines)
    online = [m for m in machines if m.status == "online"]
    models = Counter(model for m in machines for model in m.models)
    live = [m.reading for m in machines if m.reading is not None]
    tags = sorted({t for m in machines for t in m.tags}, key=str.casefold)
    return FleetSummary(
        machines=len(machines),
        by_state={s: by_state.get(s, 0) for s in STATES},
        gpus_total=sum(len(m.models) for m in machines),
        gpus_in_use=sum(m.gpus_in_use for m in online),
        gpus_idle=sum(len(m.models) - m.gpus_in_use for m in online),
        gpu_models=sorted(models.items(), key=lambda kv: (-kv[1], kv[0])),
        metrics_included=metrics_included,
        # Per GPU: a machine of 8 GPUs weighs 8 times one of 1.
        utilization=(
            sum(r.utilization * r.gpus for r in live) / sum(r.gpus for r in live) if live else None
        ),
        vram_used_mb=sum(r.vram_used_mb for r in live) if live else None,
        vram_total_mb=sum(r.vram_total_mb for r in live) if live else None,
        tags=tags,
    )
