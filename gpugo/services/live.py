"""Live views for users: what GraphQL subscriptions stream, with the same rules as the reads.

Every stream subscribes to the bus with the caller's own user id, so it can only
ever see that user's events; an id the client names (an agent, an install token)
is first checked to be the caller's, exactly as a read would be. Checks run
before the stream is returned, so a refusal is an answer, not a broken stream.

Delivery is at most once and live only: a client that reconnects reads the
current state (queries) and subscribes again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from gpugo import clock
from gpugo.auth.principal import Principal
from gpugo.context import ServerContext
from gpugo.counted_log import CountedLog
from gpugo.errors import NotFound, ServiceUnavailable
from gpugo.events import Event, EventKind, Subscription
from gpugo.models import Agent, GpuMetricSample, SystemMetricSample
from gpugo.services import install_tokens, plans
from gpugo.services.metrics_store import VALUE_COLUMNS, Table
from gpugo.timeseries import VictoriaMetrics
from gpugo.timeseries import reads as tsdb

log = logging.getLogger("gpugo.live")

# What ``agentEvents`` streams: everything that changes what a user sees of an agent.
AGENT_EVENT_KINDS = frozenset(
    {
        EventKind.AGENT_REGISTERED,
        EventKind.AGENT_ONLINE,
        EventKind.AGENT_OFFLINE,
        EventKind.AGENT_UPDATED,
        EventKind.AGENT_DELETED,
        EventKind.WORKER_CREATED,
        EventKind.WORKER_UPDATED,
        EventKind.WORKER_DELETED,
        EventKind.WORKER_STATUS_CHANGED,
        EventKind.CONNECTIONS_CHANGED,
        EventKind.CONFIG_CHANGED,
    }
)
# A metrics event names its report by time; the stored time may be rounded (to the
# database's precision), so the report is read back within this much of it.
_REPORT_TOLERANCE = timedelta(milliseconds=1)
# A time-series engine serves a point it acknowledged within about a second, the first
# point of a new series (a new agent or GPU) within about ten: a report is asked for
# again after these pauses before it is skipped.
ENGINE_RETRY_PAUSES = (0.25, 0.5, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 4.0)
# The columns of a report's rows, in SQL and from the engine: what the ingest writes.
_SYSTEM_COLUMNS = ("recorded_at", *VALUE_COLUMNS[Table.SYSTEM])
_GPU_COLUMNS = VALUE_COLUMNS[Table.GPU]
skipped_reports = CountedLog(log, "live metrics reports not delivered")


async def _check_agent(*, principal: Principal, agent_id: str) -> None:
    if not await Agent.filter(id=agent_id, user_id=principal.user_id).exists():
        raise NotFound("No such agent.")


async def agent_events(
    *, ctx: ServerContext, principal: Principal, agent_id: str | None = None
) -> AsyncGenerator[Event, None]:
    """The caller's agent events (of one agent, if named: 404 unless it is the caller's)."""
    if agent_id is not None:
        await _check_agent(principal=principal, agent_id=agent_id)
    return _agent_events(ctx=ctx, principal=principal, agent_id=agent_id)


async def _agent_events(
    *, ctx: ServerContext, principal: Principal, agent_id: str | None
) -> AsyncGenerator[Event, None]:
    async with ctx.events.subscribe(user_id=principal.user_id, agent_id=agent_id) as events:
        while (event := await events.get()) is not None:
            if event.kind in AGENT_EVENT_KINDS and event.agent_id is not None:
                yield event
            if agent_id is not None and event.kind is EventKind.AGENT_DELETED:
                return


async def install_token_outcome(
    *, ctx: ServerContext, principal: Principal, token_id: str
) -> AsyncGenerator[install_tokens.InstallTokenStatus, None]:
    """One message when the caller's install token is used (or expires unused), then the end.

    404 for a token that is not the caller's. A token already used or expired answers
    at once, so a client that subscribes late still learns the outcome.
    """
    await install_tokens.status(principal=principal, token_id=token_id)
    return _install_token_outcome(ctx=ctx, principal=principal, token_id=token_id)


async def _install_token_outcome(
    *, ctx: ServerContext, principal: Principal, token_id: str
) -> AsyncGenerator[install_tokens.InstallTokenStatus, None]:
    async with ctx.events.subscribe(user_id=principal.user_id) as events:
        # Read after subscribing: a use committed in between is seen by one or the other.
        state = await install_tokens.status(principal=principal, token_id=token_id)
        while state.status == "active":
            remaining = (state.expires_at - clock.now()).total_seconds()
            try:
                async with asyncio.timeout(max(remaining, 0)):
                    while True:
                        event = await events.get()
                        if event is None:
                            return  # the server is draining
                        if (
                            event.kind is EventKind.INSTALL_TOKEN_USED
                            and event.resource_id == token_id
                        ):
                            break
            except TimeoutError:
                pass
            state = await install_tokens.status(principal=principal, token_id=token_id)
        yield state


@dataclass(frozen=True, slots=True)
class TokenRefusal:
    token_id: str
    code: str
    message: str
    hostname: str


async def install_token_refusals(
    *, ctx: ServerContext, principal: Principal, token_id: str
) -> AsyncGenerator[TokenRefusal, None]:
    """Each registration refused with the caller's install token (a plan limit, the token
    spent), while the stream lasts. 404 for a token that is not the caller's."""
    await install_tokens.status(principal=principal, token_id=token_id)
    return _install_token_refusals(ctx=ctx, principal=principal, token_id=token_id)


async def _install_token_refusals(
    *, ctx: ServerContext, principal: Principal, token_id: str
) -> AsyncGenerator[TokenRefusal, None]:
    async with ctx.events.subscribe(user_id=principal.user_id) as events:
        while True:
            event = await events.get()
            if event is None:
                return  # the server is draining
            if event.kind is EventKind.INSTALL_TOKEN_REFUSED and event.resource_id == token_id:
                yield TokenRefusal(
                    token_id=token_id,
                    code=str(event.data.get("code", "")),
                    message=str(event.data.get("message", "")),
                    hostname=str(event.data.get("hostname", "")),
                )


@dataclass(frozen=True, slots=True)
class GpuReading:
    gpu_id: str
    utilization: float
    vram_used_mb: int
    vram_total_mb: int
    temperature: int
    power_usage_w: float
    pcie_rx_kb: int | None
    pcie_tx_kb: int | None


@dataclass(frozen=True, slots=True)
class MetricsReport:
    agent_id: str
    recorded_at: datetime
    cpu_usage: float | None
    memory_used_mb: int | None
    memory_total_mb: int | None
    gpus: tuple[GpuReading, ...]


async def metrics_reports(
    *, ctx: ServerContext, principal: Principal, agent_id: str
) -> AsyncGenerator[MetricsReport, None]:
    """Each metrics report of the caller's agent as it arrives (Team and Pro plans)."""
    plans.require_metrics(ctx, principal.plan)
    await _check_agent(principal=principal, agent_id=agent_id)
    return _metrics_reports(ctx=ctx, principal=principal, agent_id=agent_id)


async def _metrics_reports(
    *, ctx: ServerContext, principal: Principal, agent_id: str
) -> AsyncGenerator[MetricsReport, None]:
    async with ctx.events.subscribe(user_id=principal.user_id, agent_id=agent_id) as events:
        while (event := await events.get()) is not None:
            if event.kind is EventKind.AGENT_DELETED:
                return
            if event.kind is not EventKind.METRICS_REPORTED or "recorded_at" not in event.data:
                continue
            recorded_at = datetime.fromisoformat(event.data["recorded_at"])
            if ctx.timeseries is not None:
                report = await _report_from_engine(ctx.timeseries, events, agent_id, recorded_at)
            else:
                report = await _report_at(agent_id, recorded_at)
            if report is not None:
                yield report


async def _report_at(agent_id: str, recorded_at: datetime) -> MetricsReport | None:
    """The samples of one report, through the (agent_id, recorded_at) indexes."""
    window = {
        "agent_id": agent_id,
        "recorded_at__gte": recorded_at - _REPORT_TOLERANCE,
        "recorded_at__lte": recorded_at + _REPORT_TOLERANCE,
    }
    systems = await SystemMetricSample.filter(**window).values(*_SYSTEM_COLUMNS)
    gpus = await GpuMetricSample.filter(**window).order_by("gpu_id").values(*_GPU_COLUMNS)
    if not systems and not gpus:
        return None  # pruned or deleted meanwhile
    system = systems[-1] if systems else None
    return _report(agent_id, system["recorded_at"] if system else recorded_at, system, gpus)


async def _report_from_engine(
    engine: VictoriaMetrics, events: Subscription, agent_id: str, recorded_at: datetime
) -> MetricsReport | None:
    """The report as the engine serves it, asked for again while it does not yet (see
    ``ENGINE_RETRY_PAUSES``). None, with a log line, when it still does not, or when the
    engine cannot be read: the stream goes on with the next report."""
    started = time.monotonic()
    for pause in (*ENGINE_RETRY_PAUSES, None):
        try:
            found = await tsdb.report_at(engine, agent_id=agent_id, at=recorded_at)
        except ServiceUnavailable:
            skipped_reports.add(agent_id, detail="the metrics store cannot be read")
            return None
        if found["system_metrics"] or found["gpu_metrics"]:
            system = found["system_metrics"][-1] if found["system_metrics"] else None
            gpus = sorted(found["gpu_metrics"], key=lambda row: row["gpu_id"])
            return _report(agent_id, recorded_at, system, gpus)
        if pause is None or events.closed:
            break  # not served in time, or the server is draining
        await asyncio.sleep(pause)
    skipped_reports.add(
        agent_id,
        detail=f"not served by the metrics store within {time.monotonic() - started:.0f} s",
    )
    return None


def _report(
    agent_id: str,
    recorded_at: datetime,
    system: dict[str, Any] | None,
    gpus: list[dict[str, Any]],
) -> MetricsReport:
    return MetricsReport(
        agent_id=agent_id,
        recorded_at=recorded_at,
        cpu_usage=system["cpu_usage"] if system else None,
        memory_used_mb=system["memory_used_mb"] if system else None,
        memory_total_mb=system["memory_total_mb"] if system else None,
        gpus=tuple(GpuReading(**{c: row.get(c) for c in _GPU_COLUMNS}) for row in gpus),
    )
