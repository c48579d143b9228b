"""Agents' metrics reports (Team and Pro plans): validated here, stored in batches.

Two doors: ``POST /metrics`` (the spec's JSON report, ``record``) and the line
protocol the shipped agent puts in its status reports (``record_line_protocol``);
both validate each reading with the same declarations and make the same points.
Validated points are handed to the process's ``MetricsIngest``
(``services/metrics_store.py``): the report is answered once they wait in its
bounded buffer, and they are written in batches within ``GPUGO_METRICS_FLUSH_SECONDS``
(the flush also tells live subscribers); the sweeper rolls them up
(``services/metrics_rollups.py``).

A report is stored at its own timestamp unless the agent's clock is visibly wrong
(docs/decisions.md, "Metrics timestamps"): one further ahead than ``FUTURE_TOLERANCE``
is stamped with the server's time, one older than the raw tier's window
(``GPUGO_METRICS_RAW_HOURS``) is dropped (retention would delete it at once) and
counted in a log line.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError

from gpugo import clock
from gpugo.auth.principal import Principal
from gpugo.context import ServerContext
from gpugo.counted_log import CountedLog
from gpugo.errors import FieldError, Unauthorized, ValidationFailed
from gpugo.inputs import line_protocol
from gpugo.inputs.metrics import (
    GpuMetricsInput,
    MetricsReportInput,
    SystemMetricsInput,
    WorkerMetricsInput,
)
from gpugo.models import Agent
from gpugo.services import plans
from gpugo.services.metrics_store import Point, Table

# Clocks of healthy hosts agree within seconds (NTP); past this the agent's clock is wrong.
FUTURE_TOLERANCE = timedelta(minutes=5)

log = logging.getLogger("gpugo.metrics")
dropped_reports = CountedLog(log, "metrics reports older than the retention window dropped")
skipped_lines = CountedLog(log, "metrics lines of status reports skipped")
failed_writes = CountedLog(log, "metrics of status reports not stored")


async def record(*, ctx: ServerContext, principal: Principal, data: MetricsReportInput) -> None:
    """Accept one report at its own timestamp; 403 below Team, 400 for GPUs not of this agent."""
    agent_id = principal.agent_id
    if agent_id is None:
        raise Unauthorized("An agent secret is required.")
    plans.require_metrics(ctx, principal.plan)
    if data.gpus:
        await _check_gpu_ids(agent_id=agent_id, data=data)
    recorded_at = sample_time(ctx=ctx, agent_id=agent_id, stamped=data.timestamp)
    if recorded_at is None:
        return
    user_id = principal.user_id
    points = [_gpu_point(user_id, agent_id, recorded_at, gpu) for gpu in data.gpus]
    points.append(_system_point(user_id, agent_id, recorded_at, data.system))
    ctx.metrics.accept(points)


def _gpu_point(user_id: str, agent_id: str, at: datetime, gpu: GpuMetricsInput) -> Point:
    values = (
        gpu.gpu_id,
        gpu.utilization,
        gpu.vram_used_mb,
        gpu.vram_total_mb,
        gpu.temperature,
        gpu.power_usage_w,
        gpu.pcie_rx_kb,
        gpu.pcie_tx_kb,
    )
    return Point(Table.GPU, user_id, agent_id, at, values)


def _system_point(user_id: str, agent_id: str, at: datetime, system: SystemMetricsInput) -> Point:
    values = (system.cpu_usage, system.memory_used_mb, system.memory_total_mb)
    return Point(Table.SYSTEM, user_id, agent_id, at, values)


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
    """Accept the metrics a status report carries; the number of points accepted.

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
    points: list[Point] = []
    skipped = parsed.skipped
    # One decision per distinct timestamp: a dropped report counts once, not per line.
    times: dict[int | None, datetime | None] = {}
    for parsed_point in parsed.points:
        if parsed_point.timestamp not in times:
            times[parsed_point.timestamp] = _point_time(
                ctx, agent_id, parsed_point.timestamp, reported_at
            )
        at = times[parsed_point.timestamp]
        if at is None:
            continue
        try:
            point = _point(user_id, agent_id, at, parsed_point, registered, worker_ids)
        except ValidationError:
            point = None
        if point is None:
            skipped += 1
        else:
            points.append(point)
    if skipped:
        skipped_lines.add(agent_id, count=skipped)
    if points:
        ctx.metrics.accept(points)
    return len(points)


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


def _point(
    user_id: str,
    agent_id: str,
    at: datetime,
    point: line_protocol.Point,
    registered: dict[str, str],
    worker_ids: Collection[str],
) -> Point | None:
    """The point a line makes, or None when it is not one of this agent's readings."""
    if point.measurement == "gpu_metrics":
        gpu_id = registered.get(point.tags.get("gpu_id", "").lower())
        if gpu_id is None:
            return None
        gpu = GpuMetricsInput.model_validate({**point.fields, "gpu_id": gpu_id})
        return _gpu_point(user_id, agent_id, at, gpu)
    if point.measurement == "system_metrics":
        system = SystemMetricsInput.model_validate(point.fields)
        return _system_point(user_id, agent_id, at, system)
    if point.measurement == "worker_metrics":
        worker_id = point.tags.get("worker_id")
        if worker_id not in worker_ids:
            return None
        worker = WorkerMetricsInput.model_validate(point.fields)
        values = (worker_id, worker.status, worker.connections, worker.restarts)
        return Point(Table.WORKER, user_id, agent_id, at, values)
    return None


def sample_time(*, ctx: ServerContext, agent_id: str, stamped: datetime) -> datetime | None:
    """When a sample stamped ``stamped`` by the agent is stored (in UTC); None: dropped."""
    now = clock.now()
    if stamped > now + FUTURE_TOLERANCE:
        # The agent measured it just now; its clock runs ahead.
        return now
    # Points are stored raw first: older than the raw tier's window, nowhere to go.
    if stamped < now - timedelta(hours=ctx.settings.metrics_raw_hours):
        dropped_reports.add(agent_id, detail=f"stamped {stamped.isoformat()}")
        return None
    # UTC: the batch writers store the instant as given (SQLite keeps it as text).
    return stamped.astimezone(UTC)


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
