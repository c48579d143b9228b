"""With VictoriaMetrics configured the SQL sample tables stay empty: the live
``agentMetrics`` subscription and the fleet overview read the engine instead.

The engine runs with its production default ``-search.latencyOffset`` (30 s): reads of
the newest points must not depend on it being lowered.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest

from gpugo.events import Event, EventKind
from gpugo.models import GpuMetricSample, SystemMetricSample, Worker
from tests.conftest import make_client
from tests.live.support import graphql_ws, serve
from tests.live.test_subscriptions import METRICS, bearer, next_data
from tests.rest.test_status_report_metrics import LIBRARY_IDS, lines, register, report
from tests.schema.support import data, post
from tests.schema.test_fleet import FLEET
from tests.support import flush_metrics, moment, out_time
from tests.timeseries.test_victoria_metrics import varied

# Sorted as the answers list them (by GPU id): the second library GPU sorts first.
GPU_IDS = sorted(gpu_id.lower() for gpu_id in LIBRARY_IDS)


@pytest.fixture
def engine_latency_offset() -> str | None:
    return None  # the engine's default, as in production


async def no_sql_samples(agent_id: str) -> bool:
    return (
        await GpuMetricSample.filter(agent_id=agent_id).count()
        + await SystemMetricSample.filter(agent_id=agent_id).count()
    ) == 0


async def post_report(http, agent, body: dict) -> None:
    """A status report of ``agent``, answered 200."""
    response = await http.post(
        f"/api/v1/agents/{agent.agent_id}/status", json=body, headers=agent.auth
    )
    assert response.status_code == 200, response.text


async def test_a_live_subscription_streams_each_report_from_the_engine(vm_app, api):
    user = await api.user(plan="team")
    agent = await register(user)
    worker_id = (await Worker.get(agent_id=agent.agent_id)).id
    async with (
        serve(vm_app) as url,
        make_client(vm_app) as http,
        graphql_ws(url, init=bearer(await user.create_pat())) as socket,
    ):
        op = await socket.subscribe(METRICS, {"agentId": agent.agent_id})
        await asyncio.sleep(0.2)
        # The agent's first report: its series are new to the engine, which serves them
        # only once its index has them (seconds later); the stream waits for it.
        first = moment(-timedelta(seconds=2))
        await post_report(http, agent, report(worker_id, lines(agent.agent_id, worker_id, first)))
        received = (await next_data(socket, op, within=25))["agentMetrics"]
        assert received == {
            "agentId": agent.agent_id,
            "recordedAt": out_time(first),
            "cpuUsage": 12.5,
            "memoryUsedMb": 8192,
            "gpus": [
                {"gpuId": GPU_IDS[0], "utilization": 51.5, "temperature": 62},
                {"gpuId": GPU_IDS[1], "utilization": 50.5, "temperature": 62},
            ],
        }
        # The next report, of series the engine knows: within a second or two.
        second = moment()
        await post_report(
            http, agent, report(worker_id, varied(agent.agent_id, worker_id, second, 4))
        )
        received = (await next_data(socket, op, within=10))["agentMetrics"]
        assert received["recordedAt"] == out_time(second)
        assert (received["cpuUsage"], received["memoryUsedMb"]) == (12.5, 8192)
        assert received["gpus"] == [
            {"gpuId": GPU_IDS[0], "utilization": 70.75, "temperature": 59},
            {"gpuId": GPU_IDS[1], "utilization": 38.25, "temperature": 59},
        ]
    assert await no_sql_samples(agent.agent_id)


async def test_a_report_the_engine_cannot_serve_is_skipped_and_the_stream_goes_on(
    vm_app, api, engine, caplog
):
    user = await api.user(plan="team")
    agent = await register(user)
    worker_id = (await Worker.get(agent_id=agent.agent_id)).id
    ctx = vm_app.state.ctx
    async with (
        serve(vm_app) as url,
        make_client(vm_app) as http,
        graphql_ws(url, init=bearer(await user.create_pat())) as socket,
    ):
        op = await socket.subscribe(METRICS, {"agentId": agent.agent_id})
        await asyncio.sleep(0.2)
        engine.stop()
        # A report announced (by this or another process) while the engine is away.
        with caplog.at_level(logging.WARNING, logger="gpugo.live"):
            ctx.events.emit(
                Event(
                    kind=EventKind.METRICS_REPORTED,
                    user_id=user.user_id,
                    agent_id=agent.agent_id,
                    data={"recorded_at": moment().isoformat()},
                )
            )
            deadline = asyncio.get_running_loop().time() + 10
            while "live metrics reports not delivered" not in caplog.text:
                assert asyncio.get_running_loop().time() < deadline, caplog.text
                await asyncio.sleep(0.05)
        assert "the metrics store cannot be read" in caplog.text
        # Nothing was sent for it, and the socket still streams once the engine is back.
        engine.start()
        at = moment()
        await post_report(http, agent, report(worker_id, lines(agent.agent_id, worker_id, at)))
        received = (await next_data(socket, op, within=25))["agentMetrics"]
        assert received["recordedAt"] == out_time(at)


async def fleet_of(http, pat: str) -> dict:
    return data(await post(http, FLEET, headers={"Authorization": f"Bearer {pat}"}))["fleet"]


async def test_the_fleet_overview_reads_the_latest_readings_from_the_engine(
    app, vm_app, api, engine
):
    user = await api.user(plan="team")
    pat = await user.create_pat()
    agent = await register(user)
    worker_id = (await Worker.get(agent_id=agent.agent_id)).id
    older, newer = moment(-timedelta(seconds=40)), moment(-timedelta(seconds=5))
    reports = [
        report(worker_id, lines(agent.agent_id, worker_id, older)),
        report(worker_id, varied(agent.agent_id, worker_id, newer, 4)),
    ]

    async def send(http) -> None:
        for body in reports:
            await post_report(http, agent, body)

    async with make_client(vm_app) as vm_http:
        await send(vm_http)
        await vm_app.state.ctx.metrics.flush()
        await asyncio.to_thread(engine.make_searchable)
        assert await no_sql_samples(agent.agent_id)

        through_engine = await fleet_of(vm_http, pat)
        [machine] = through_engine["machines"]
        # Each GPU's newest sample: the second report's.
        assert (machine["utilization"], machine["temperature"]) == ((70.75 + 38.25) / 2, 59)
        summary = through_engine["summary"]
        assert summary["utilization"] == (70.75 + 38.25) / 2
        assert (summary["vramUsedMb"], summary["vramTotalMb"]) == (2 * 20148, 2 * 24564)
        # The same answer as SQL gives for the same reports.
        await send(agent.http)
        await flush_metrics(app)
        async with make_client(app) as sql_http:
            through_sql = await fleet_of(sql_http, pat)
        # The same answer but for when each app last heard the agent (each holds the time
        # of the heartbeats it answered until its next flush).
        for fleet in (through_engine, through_sql):
            for machine in fleet["machines"]:
                machine["agent"].pop("lastSeenAt")
        assert through_engine == through_sql

        # While the engine cannot be read, the machines are still shown, without readings.
        engine.stop()
        without = await fleet_of(vm_http, pat)
        assert (without["summary"]["machines"], without["summary"]["online"]) == (1, 1)
        assert without["summary"]["metricsIncluded"] is True
        assert without["summary"]["utilization"] is None
        assert without["machines"][0]["utilization"] is None
