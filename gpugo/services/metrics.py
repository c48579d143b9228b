"""Agents' metrics reports (Team and Pro plans): stored per GPU and per host, kept for a while.

Retention never scans the tables: each agent's own rows older than the window are
deleted through the (agent_id, recorded_at) index, at most once per
``PRUNE_INTERVAL`` per agent in this process.

A report is stored at its own timestamp unless the agent's clock is visibly wrong
(docs/decisions.md, "Metrics timestamps"): one further ahead than ``FUTURE_TOLERANCE``
is stamped with the server's time, one older than the retention window is dropped
(retention would delete it at once) and counted in a log line.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from gpugo import clock
from gpugo.auth.principal import Principal
from gpugo.context import ServerContext
from gpugo.counted_log import CountedLog
from gpugo.errors import FieldError, Unauthorized, ValidationFailed
from gpugo.events import Event, EventKind
from gpugo.inputs.metrics import MetricsReportInput
from gpugo.models import Agent, GpuMetricSample, SystemMetricSample
from gpugo.services import plans

PRUNE_INTERVAL = timedelta(minutes=5)
# Clocks of healthy hosts agree within seconds (NTP); past this the agent's clock is wrong.
FUTURE_TOLERANCE = timedelta(minutes=5)

log = logging.getLogger("gpugo.metrics")
dropped_reports = CountedLog(log, "metrics reports older than the retention window dropped")
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
    try:
        async with in_transaction():
            if data.gpus:
                await GpuMetricSample.bulk_create(
                    [
                        GpuMetricSample(
                            agent_id=agent_id,
                            gpu_id=gpu.gpu_id,
                            recorded_at=recorded_at,
                            utilization=gpu.utilization,
                            vram_used_mb=gpu.vram_used_mb,
                            vram_total_mb=gpu.vram_total_mb,
                            temperature=gpu.temperature,
                            power_usage_w=gpu.power_usage_w,
                            pcie_rx_kb=gpu.pcie_rx_kb,
                            pcie_tx_kb=gpu.pcie_tx_kb,
                        )
                        for gpu in data.gpus
                    ]
                )
            await SystemMetricSample.create(
                agent_id=agent_id,
                recorded_at=recorded_at,
                cpu_usage=data.system.cpu_usage,
                memory_used_mb=data.system.memory_used_mb,
                memory_total_mb=data.system.memory_total_mb,
            )
    except IntegrityError:
        # The agent was deleted since its secret was checked.
        raise Unauthorized("Unknown agent secret.") from None
    await prune_if_due(ctx=ctx, agent_id=agent_id)
    # The report's own time (full precision) lets a live view read this report back.
    await ctx.events.publish(
        Event(
            kind=EventKind.METRICS_REPORTED,
            user_id=principal.user_id,
            agent_id=agent_id,
            data={"recorded_at": recorded_at.isoformat()},
        )
    )


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
    await GpuMetricSample.filter(agent_id=agent_id, recorded_at__lt=cutoff).delete()
    await SystemMetricSample.filter(agent_id=agent_id, recorded_at__lt=cutoff).delete()
    return True
