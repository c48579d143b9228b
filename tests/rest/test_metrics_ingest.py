"""Metrics ingest off the request path: accepted into a bounded buffer, written in batches.

A report is answered once its points wait in the buffer; the flush writes them (and
tells live subscribers). Past the bound the oldest unwritten points are dropped and
counted, never a heartbeat; a write that fails keeps the batch for the next flush.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from tortoise import connections

from gpugo.app import create_app
from gpugo.models import SystemMetricSample
from gpugo.settings import Settings
from tests.conftest import make_client
from tests.schema.support import Gql
from tests.support import Api, empty_database, flush_metrics, moment, out_time, register_agent


@asynccontextmanager
async def own_app(settings: Settings, **changes: Any) -> AsyncIterator[tuple[Starlette, Api]]:
    """An app of its own settings, on an emptied database, with its user factory."""
    app = create_app(settings.replace(**changes), auto_migrate=False)
    async with app.router.lifespan_context(app):
        await empty_database()
        api = Api(app, make_client)
        try:
            yield app, api
        finally:
            await api.aclose()


def host_lines(times: list[datetime]) -> str:
    """One host reading per time, its CPU figure telling which it is (the second)."""
    return "\n".join(
        f"system_metrics cpu_usage={at.second}.0,memory_used_mb=1i,memory_total_mb=2i "
        f"{int(at.timestamp() * 1000)}"
        for at in times
    )


def status(text: str) -> dict[str, Any]:
    return {"timestamp": out_time(moment()), "gpus": [], "workers": [], "metrics": text}


async def stored_cpu(agent_id: str) -> list[float]:
    rows = await SystemMetricSample.filter(agent_id=agent_id).order_by("recorded_at")
    return [row.cpu_usage for row in rows]


async def test_past_the_bound_the_oldest_points_go_and_heartbeats_are_answered(settings):
    async with own_app(settings, metrics_buffer_points=5) as (app, api):
        user = await api.user(plan="team")
        agent = await register_agent(user, gpus=0)
        start = moment(-timedelta(minutes=5)).replace(second=0)
        times = [start + timedelta(seconds=i) for i in range(12)]
        for i in range(0, 12, 3):
            # Three points per report: 12 accepted, 5 fit.
            response = await agent.report(status(host_lines(times[i : i + 3])))
            assert response.status_code == 200, response.text
        buffer = app.state.ctx.metrics.buffer
        assert (buffer.pending, buffer.dropped) == (5, 7)
        assert await flush_metrics(app) == 5
        # The newest five, the reports' own times.
        assert await stored_cpu(agent.agent_id) == [7.0, 8.0, 9.0, 10.0, 11.0]
        assert (buffer.pending, buffer.dropped) == (0, 7)


async def test_a_table_away_keeps_the_points_until_a_flush_can_write_them(settings):
    async with own_app(settings, metrics_buffer_points=4) as (app, api):
        user = await api.user(plan="team")
        agent = await register_agent(user, gpus=0)
        start = moment(-timedelta(minutes=5)).replace(second=0)
        times = [start + timedelta(seconds=i) for i in range(6)]
        db = connections.get("default")
        await db.execute_script("ALTER TABLE system_metric_samples RENAME TO system_away")
        try:
            for i in range(0, 6, 2):
                response = await agent.report(status(host_lines(times[i : i + 2])))
                assert response.status_code == 200, response.text
            # The write fails: the batch waits, within the bound (the oldest two dropped).
            assert await flush_metrics(app) == 0
            buffer = app.state.ctx.metrics.buffer
            assert (buffer.pending, buffer.dropped) == (4, 2)
            # Heartbeats go on meanwhile.
            assert (await agent.report(status(""))).status_code == 200
        finally:
            await db.execute_script("ALTER TABLE system_away RENAME TO system_metric_samples")
        assert await flush_metrics(app) == 4
        assert await stored_cpu(agent.agent_id) == [2.0, 3.0, 4.0, 5.0]


AGENT_METRICS = """query($id: ID!, $from: DateTime!, $to: DateTime!) {
  agentMetrics(agentId: $id, from: $from, to: $to, bucket: 60) {
    system { at samples cpuUsageMax } } }"""


async def test_agent_metrics_reads_the_points_once_flushed(api):
    user = await api.user(plan="team")
    agent = await register_agent(user, gpus=0)
    start = moment(-timedelta(minutes=5)).replace(second=0)
    times = [start + timedelta(seconds=10 * i) for i in range(3)]
    assert (await agent.report(status(host_lines(times)))).status_code == 200
    window = {
        "id": agent.agent_id,
        "from": out_time(start),
        "to": out_time(start + timedelta(minutes=1)),
    }
    gql = Gql(user)
    # Accepted, not yet written.
    assert (await gql.data(AGENT_METRICS, window))["agentMetrics"]["system"] == []
    assert await flush_metrics(api.app) == 3
    charted = (await gql.data(AGENT_METRICS, window))["agentMetrics"]["system"]
    assert charted == [{"at": out_time(start), "samples": 3, "cpuUsageMax": 20.0}]
