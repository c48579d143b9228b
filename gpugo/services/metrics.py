"""Agents' metrics reports (Team and Pro plans): stored per GPU and per host, kept for a while.

Retention never scans the tables: each agent's own rows older than the window are
deleted through the (agent_id, recorded_at) index, at most once per
``PRUNE_INTERVAL`` per agent in this process.

Two doors: ``POST /metrics`` (the spec's JSON report, ``record``) and the line
protocol the shipped agent puts in its status reports (``record_line_protocol``);
both validate each reading with the same declarations and store the same rows.

A report is stored at its own timestamp unless the agent's clock is visibly wrong
(docs/decisions.md, "Metrics timestamps"): one further ahead than ``FUTURE_TOLERANCE``
is stamped with the server's time, one older than the retention window is dropped
(retention would delete it at once) and counted in a log line.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from gpugo import clock
from gpugo.auth.principal import Principal
from gpugo.context import ServerContext
from gpugo.counted_log import CountedLog
from gpugo.errors import FieldError, Unauthorized, ValidationFailed
from gpugo.events import Event, EventKind
from gpugo.inputs import line_protocol
from gpugo.inputs.metrics import (
    GpuMetricsInput,
    MetricsReportInput,
    SystemMetricsInput,
    WorkerMetricsInput,
)
from gpugo.models import Agent, GpuMetricSample, SystemMetricSample, WorkerMetricSample
from gpugo.services import plans

PRUNE_INTERVAL = timedelta(minutes=5)
# Clocks of healthy hosts agree within seconds (NTP); past this the agent's clock is wrong.
FUTURE_TOLERANCE = timedelta(minutes=5)

log = logging.getLogger("gpugo.metrics")
dropped_reports = CountedLog(log, "metrics reports older than the retention window dropped")
skipped_lines = CountedLog(log, "metrics lines of status reports skipped")
failed_writes = CountedLog(log, "metrics of status reports not stored")
# Past this many remembered agents, forget those not pruned within the interval.
_PRUNE_MEMORY = 10_000

# agent id -> when this process last pruned that agent's samples.
_last_pruned: dict[str, datetime] = {}


async def record(*, ctx: ServerContext, principal: Principal, data: MetricsReportInput) -> None:
    """Store one report at its own timestamp; 403 below Team, 400 for GPUs not of this agent."""
    agent_id = principal.agent_id
    if agent_id is None:
        raise Unauthorized("An agent secret is required.")
    plans.require_metrics(ctx, principal.plan)
    if data.gpus:
        await _check_gpu_ids(agent_id=agent_id, data=data)
    recorded_at = sample_time(ctx=ctx, agent_id=agent_id, stamped=data.timestamp)
    if recorded_at is None:
        return
    samples = _Samples(
        gpus=[_gpu_row(agent_id, recorded_at, gpu) for gpu in data.gpus],
        systems=[_system_row(agent_id, recorded_at, data.system)],
    )
    try:
        await _store(ctx, principal.user_id, samples)
    except IntegrityError:
        # The agent was deleted since its secret was checked.
        raise Unauthorized("Unknown agent secret.") from None
    await prune_if_due(ctx=ctx, agent_id=agent_id)
    await _announce(ctx, principal.user_id, agent_id, recorded_at)


@dataclass(slots=True)
class _Samples:
    gpus: list[GpuMetricSample] = field(default_factory=list)
    systems: list[SystemMetricSample] = field(default_factory=list)
    workers: list[WorkerMetricSample] = field(default_factory=list)


async def _store(ctx: ServerContext, user_id: str, samples: _Samples) -> None:
    """One multi-row INSERT per kind, in one transaction."""
    # --- time-series engine: if one is configured, the points go to it instead of the
    # SQL tables (batched and retried there; gpugo/timeseries/victoria.py). ---
    if ctx.timeseries is not None:
        ctx.timeseries.add(
            user_id=user_id, samples=[*samples.gpus, *samples.systems, *samples.workers]
        )
        return
    async with in_transaction():
        for rows in (samples.gpus, samples.systems, samples.workers):
            if rows:
                await type(rows[0]).bulk_create(rows)


async def _announce(ctx: ServerContext, user_id: str, agent_id: str, at: datetime) -> None:
    # The report's own time (full precision) lets a live view read this report back.
    await ctx.events.publish(
        Event(
            kind=EventKind.METRICS_REPORTED,
            user_id=user_id,
            agent_id=agent_id,
            data={"recorded_at": at.isoformat()},
        )
    )


def _gpu_row(agent_id: str, at: datetime, gpu: GpuMetricsInput) -> GpuMetricSample:
    return GpuMetricSample(
        agent_id=agent_id,
        gpu_id=gpu.gpu_id,
        recorded_at=at,
        utilization=gpu.utilization,
        vram_used_mb=gpu.vram_used_mb,
        vram_total_mb=gpu.vram_total_mb,
        temperature=gpu.temperature,
        power_usage_w=gpu.power_usage_w,
        pcie_rx_kb=gpu.pcie_rx_kb,
        pcie_tx_kb=gpu.pcie_tx_kb,
    )


def _system_row(agent_id: str, at: datetime, system: SystemMetricsInput) -> SystemMetricSample:
    return SystemMetricSample(
        agent_id=agent_id,
        recorded_at=at,
        cpu_usage=system.cpu_usage,
        memory_used_mb=system.memory_used_mb,
        memory_total_mb=system.memory_total_mb,
    )


async def record_line_protocol(
    *,
    ctx: ServerContext,
    agent_id: str,
    user_id: str,
    plan: str,
    text: str,
    gpu_ids: Iterable[str],
    worker_ids: Collection[str],
    reported_at: datetime,
) -> int:
    """Store the metrics a status report carries; the number of samples stored.

    Team and Pro only (others' are dropped quietly: the agent cannot tell them apart).
    GPU ids match the registered ones whatever their case (the agent's library writes
    its own); readings of GPUs and workers not the agent's, unknown measurements and
    lines that are not line protocol are skipped and counted in a log line at most
    once a minute per agent. A point without a timestamp takes the report's.
    """
    if not plans.limits_for(ctx, plan).metrics:
        return 0
    parsed = line_protocol.parse(text)
    registered = {gpu_id.lower(): gpu_id for gpu_id in gpu_ids}
    samples = _Samples()
    skipped = parsed.skipped
    # One decision per distinct timestamp: a dropped report counts once, not per line.
    times: dict[int | None, datetime | None] = {}
    for point in parsed.points:
        if point.timestamp not in times:
            times[point.timestamp] = _point_time(ctx, agent_id, point.timestamp, reported_at)
        at = times[point.timestamp]
        if at is None:
            continue
        try:
            row = _point_row(agent_id, at, point, registered, worker_ids)
        except ValidationError:
            row = None
        if row is None:
            skipped += 1
        elif isinstance(row, GpuMetricSample):
            samples.gpus.append(row)
        elif isinstance(row, SystemMetricSample):
            samples.systems.append(row)
        else:
            samples.workers.append(row)
    if skipped:
        skipped_lines.add(agent_id, count=skipped)
    stored = len(samples.gpus) + len(samples.systems) + len(samples.workers)
    if not stored:
        return 0
    await _store(ctx, user_id, samples)
    await prune_if_due(ctx=ctx, agent_id=agent_id)
    readings = samples.systems or samples.gpus
    if readings:
        await _announce(ctx, user_id, agent_id, max(r.recorded_at for r in readings))
    return stored


def _point_time(
    ctx: ServerContext, agent_id: str, timestamp_ms: int | None, reported_at: datetime
) -> datetime | None:
    if timestamp_ms is None:
        stamped = reported_at
    else:
        try:
            stamped = datetime.fromtimestamp(timestamp_ms / 1000, UTC)
        except (OverflowError, OSError, ValueError):
            # Far outside any calendar (nanoseconds, say): the agent's clock says nothing.
            stamped = clock.now() + 2 * FUTURE_TOLERANCE
    return sample_time(ctx=ctx, agent_id=agent_id, stamped=stamped)


def _point_row(
    agent_id: str,
    at: datetime,
    point: line_protocol.Point,
    registered: dict[str, str],
    worker_ids: Collection[str],
) -> GpuMetricSample | SystemMetricSample | WorkerMetricSample | None:
    """The sample a point makes, or None when it is not one of this agent's readings."""
    if point.measurement == "gpu_metrics":
        gpu_id = registered.get(point.tags.get("gpu_id", "").lower())
        if gpu_id is None:
            return None
        return _gpu_row(
            agent_id, at, GpuMetricsInput.model_validate({**point.fields, "gpu_id": gpu_id})
        )
    if point.measurement == "system_metrics":
        return _system_row(agent_id, at, SystemMetricsInput.model_validate(point.fields))
    if point.measurement == "worker_metrics":
        worker_id = point.tags.get("worker_id")
        if worker_id not in worker_ids:
            return None
        worker = WorkerMetricsInput.model_validate(point.fields)
        return WorkerMetricSample(
            agent_id=agent_id,
            worker_id=worker_id,
            recorded_at=at,
            status=worker.status,
            connections=worker.connections,
            restarts=worker.restarts,
        )
    return None


def sample_time(*, ctx: ServerContext, agent_id: str, stamped: datetime) -> datetime | None:
    """When a sample stamped ``stamped`` by the agent is stored; None when it is dropped."""
    now = clock.now()
    if stamped > now + FUTURE_TOLERANCE:
        # The agent measured it just now; its clock runs ahead.
        return now
    if stamped < now - timedelta(days=ctx.settings.metrics_retention_days):
        dropped_reports.add(agent_id, detail=f"stamped {stamped.isoformat()}")
        return None
    return stamped


async def _check_gpu_ids(*, agent_id: str, data: MetricsReportInput) -> None:
    # From the agent row, so an agent deleted meanwhile is told 401, not "unknown GPU".
    rows = await Agent.filter(id=agent_id).values_list("gpus__gpu_id", flat=True)
    if not rows:
        raise Unauthorized("Unknown agent secret.")
    known = set(rows)
    details = [
        FieldError(f"gpus[{i}].gpu_id", f"{gpu.gpu_id} is not a GPU of this agent.")
        for i, gpu in enumerate(data.gpus)
        if gpu.gpu_id not in known
    ]
    if details:
        raise ValidationFailed(
            "; ".join(f"{d.field}: {d.message}" for d in details[:3]), details=details
        )


async def prune_if_due(*, ctx: ServerContext, agent_id: str) -> bool:
    """Delete the agent's samples older than the retention window, if not done lately."""
    now = clock.now()
    last = _last_pruned.get(agent_id)
    if last is not None and now - last < PRUNE_INTERVAL:
        return False
    if len(_last_pruned) >= _PRUNE_MEMORY:
        for stale in [a for a, at in _last_pruned.items() if now - at >= PRUNE_INTERVAL]:
            del _last_pruned[stale]
    # Marked before the deletes so concurrent reports of this agent do not prune twice.
    _last_pruned[agent_id] = now
    cutoff = now - timedelta(days=ctx.settings.metrics_retention_days)
    for model in (GpuMetricSample, SystemMetricSample, WorkerMetricSample):
        await model.filter(agent_id=agent_id, recorded_at__lt=cutoff).delete()
    return True
