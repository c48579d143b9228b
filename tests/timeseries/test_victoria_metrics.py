"""The VictoriaMetrics backend against a real engine (Debian's ``victoria-metrics``):
points of a replayed agent go there instead of SQL, ``agentMetrics`` reads them back
with the same answer as SQL gives for the same points, nothing acknowledged is lost
while the engine is down (within the buffer's bound), and reads say
``service_unavailable`` meanwhile."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from typing import Any

import httpx

from gpugo.models import GpuMetricSample, Worker
from tests import engines
from tests.conftest import make_client
from tests.observability.support import parse, value
from tests.rest.test_status_report_metrics import LIBRARY_IDS, lines, register, report
from tests.schema.support import GRAPHQL
from tests.support import flush_metrics, moment, out_time
from tests.timeseries.support import OPERATOR_TOKEN, engine_api

_GPU = """at samples utilizationAvg utilizationMax vramUsedMbAvg vramUsedMbMax vramTotalMb
  temperatureAvg temperatureMax powerUsageWAvg powerUsageWMax"""
_SYSTEM = "at samples cpuUsageAvg cpuUsageMax memoryUsedMbAvg memoryUsedMbMax memoryTotalMb"
_WORKER = "at samples runningSamples connectionsAvg connectionsMax restartsMax"
# Points and columns: both shapes read through the engine as through SQL.
QUERY = f"""query($id: ID!, $from: DateTime!, $to: DateTime!, $bucket: Int!) {{
  agentMetrics(agentId: $id, from: $from, to: $to, bucket: $bucket) {{
    bucketSeconds
    gpus {{ gpuId points {{ {_GPU} }} columns {{ {_GPU} }} }}
    system {{ {_SYSTEM} }}
    systemColumns {{ {_SYSTEM} }}
    workers {{ workerId points {{ {_WORKER} }} columns {{ {_WORKER} }} }}
  }} }}"""


def varied(agent_id: str, worker_id: str, at: datetime, k: int) -> str:
    """The agent's line protocol with values that change from report to report."""
    text = lines(agent_id, worker_id, at)
    return (
        text.replace("utilization=50.50", f"utilization={10 + 7 * k % 83}.25")
        .replace("utilization=51.50", f"utilization={90 - 5 * k % 61}.75")
        .replace("vram_used_mb=20000i", f"vram_used_mb={20000 + 37 * k}i")
        .replace("temperature=61.7", f"temperature={55 + k % 9}.4")
        .replace("cpu_usage=12.50", f"cpu_usage={k * 3 % 100}.5")
        .replace("status=1i,connections=2i", f"status={1 if k % 3 else 2}i,connections={k % 4}i")
    )


async def graphql(http: httpx.AsyncClient, pat: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = await http.post(
        GRAPHQL,
        json={"query": QUERY, "variables": variables},
        headers={"Authorization": f"Bearer {pat}"},
    )
    assert response.status_code == 200, response.text
    return response.json()


def rounded(value: Any) -> Any:
    """Averages computed by two engines agree to many digits, not to the last bit."""
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, list):
        return [rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    return value


def _diff(a: Any, b: Any, path: str = "") -> list[str]:
    """Where two answers differ, for the assertion message."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [
            d for k in sorted(set(a) | set(b)) for d in _diff(a.get(k), b.get(k), f"{path}.{k}")
        ]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in _diff(x, y, f"{path}[{i}]")
        ]
    return [] if rounded(a) == rounded(b) else [f"{path}: {a!r} != {b!r}"]


async def vm_count(engine: engines.Engine, agent_id: str) -> float:
    """How many GPU points of the agent the engine holds."""
    series = f'gpu_metrics_utilization{{agent_id="{agent_id}"}}'
    async with httpx.AsyncClient(timeout=5) as http:
        response = await http.get(
            f"{engine.url}/api/v1/query",
            params={"query": f"sum(count_over_time({series}[1h]))"},
        )
    result = response.json()["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


async def test_agent_metrics_read_through_the_engine_match_sql(app, vm_app, api, engine):
    user = await api.user(plan="team")
    pat = await user.create_pat()
    agent = await register(user)
    worker_id = (await Worker.get(agent_id=agent.agent_id)).id
    # 40 reports 10 s apart, some exactly on bucket boundaries, replayed to both apps.
    origin = moment(-timedelta(minutes=20)).replace(second=0, microsecond=0)
    async with make_client(vm_app) as vm_http:
        for k in range(40):
            at = origin + timedelta(seconds=10 * k + (3 if k % 2 else 0))
            body = report(worker_id, varied(agent.agent_id, worker_id, at, k))
            body["timestamp"] = out_time(at + timedelta(seconds=1))
            for http in (agent.http, vm_http):
                response = await http.post(
                    f"/api/v1/agents/{agent.agent_id}/status", json=body, headers=agent.auth
                )
                assert response.status_code == 200, response.text
        await vm_app.state.ctx.metrics.buffer.flush()
        assert vm_app.state.ctx.metrics.buffer.pending == 0
        await flush_metrics(app)
        await asyncio.to_thread(engine.make_searchable)
        # SQL holds the SQL app's points only: the engine's app wrote none there.
        assert await GpuMetricSample.filter(agent_id=agent.agent_id).count() == 80
        windows = [
            # Whole buckets, a bucket that does not divide the range, an unaligned start.
            (origin - timedelta(minutes=1), origin + timedelta(minutes=9), 60),
            (origin, origin + timedelta(minutes=7), 120),
            (origin + timedelta(seconds=17), origin + timedelta(minutes=6, seconds=17), 30),
        ]
        for begin, end, bucket in windows:
            variables = {
                "id": agent.agent_id,
                "from": out_time(begin),
                "to": out_time(end),
                "bucket": bucket,
            }
            sql = await graphql(agent.http, pat, variables)
            engine_answer = await graphql(vm_http, pat, variables)
            assert "errors" not in sql, sql
            assert sql["data"]["agentMetrics"]["gpus"], sql
            assert rounded(engine_answer) == rounded(sql), _diff(engine_answer, sql)


async def test_an_engine_outage_loses_nothing_acknowledged(vm_app, api, engine):
    user = await api.user(plan="team")
    pat = await user.create_pat()
    agent = await register(user)
    worker_id = (await Worker.get(agent_id=agent.agent_id)).id
    ctx = vm_app.state.ctx

    async def replay(http: httpx.AsyncClient, ks: range) -> None:
        for k in ks:
            at = moment(-timedelta(seconds=120 - 5 * k))
            body = report(worker_id, varied(agent.agent_id, worker_id, at, k))
            response = await http.post(
                f"/api/v1/agents/{agent.agent_id}/status", json=body, headers=agent.auth
            )
            assert response.status_code == 200, response.text

    async with make_client(vm_app) as http:
        await replay(http, range(0, 5))
        await ctx.metrics.buffer.flush()
        assert ctx.metrics.buffer.pending == 0
        await asyncio.to_thread(engine.make_searchable)
        assert await vm_count(engine, agent.agent_id) == 10

        engine.stop()
        scrape_headers = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
        before = parse((await http.get("/metrics", headers=scrape_headers)).text)
        await replay(http, range(5, 12))  # acknowledged (200) while the engine is down
        await asyncio.sleep(0.5)  # a few flushes fail meanwhile
        assert ctx.metrics.buffer.pending > 0
        during = parse((await http.get("/metrics", headers=scrape_headers)).text)
        writer = {"writer": "victoria_metrics"}
        assert value(during, "gpugo_writer_flush_failures_total", **writer) > value(
            before, "gpugo_writer_flush_failures_total", **writer
        )
        assert value(during, "gpugo_writer_queue_depth", **writer) == ctx.metrics.buffer.pending

        # Reads say so, in the contract's words.
        variables = {
            "id": agent.agent_id,
            "from": out_time(moment(-timedelta(minutes=5))),
            "to": out_time(moment()),
            "bucket": 60,
        }
        answer = await graphql(http, pat, variables)
        [error] = answer["errors"]
        assert error["extensions"]["code"] == "service_unavailable", answer
        export = await http.get(
            "/api/v1/metrics/prometheus", headers={"Authorization": f"Bearer {pat}"}
        )
        assert export.status_code == 503
        assert export.json()["error"]["code"] == "service_unavailable"

        # Back on the same port and data: everything acknowledged arrives.
        engine.start()
        deadline = time.monotonic() + 20
        while await vm_count(engine, agent.agent_id) < 24:
            assert time.monotonic() < deadline, ctx.metrics.buffer.pending
            await asyncio.sleep(0.2)
        assert await vm_count(engine, agent.agent_id) == 24
        assert ctx.metrics.buffer.pending == 0
        answer = await graphql(http, pat, variables)
        assert "errors" not in answer, answer
        gpus = answer["data"]["agentMetrics"]["gpus"]
        assert sorted(sum(p["samples"] for p in s["points"]) for s in gpus) == [12, 12]
        # The users' export reads the engine too: the latest points, labelled by the server.
        export = await http.get(
            "/api/v1/metrics/prometheus", headers={"Authorization": f"Bearer {pat}"}
        )
        assert export.status_code == 200, export.text
        samples = parse(export.text)
        gpu0 = {
            "agent_id": agent.agent_id,
            "hostname": "gpu-box-01",
            "gpu_id": LIBRARY_IDS[0].lower(),
            "model": "RTX 4090",
        }
        assert value(samples, "gpugo_gpu_utilization_percent", **gpu0) == 10 + 7 * 11 % 83 + 0.25


async def test_a_deleted_agents_points_leave_the_engine(vm_app, api, engine):
    user = await api.user(plan="team")
    agent = await register(user)
    keep = await register(user)
    async with make_client(vm_app) as http:
        for each in (agent, keep):
            worker_id = (await Worker.get(agent_id=each.agent_id)).id
            body = report(
                worker_id, lines(each.agent_id, worker_id, moment(-timedelta(seconds=30)))
            )
            response = await http.post(
                f"/api/v1/agents/{each.agent_id}/status", json=body, headers=each.auth
            )
            assert response.status_code == 200, response.text
        await vm_app.state.ctx.metrics.buffer.flush()
        await asyncio.to_thread(engine.make_searchable)
        assert await vm_count(engine, agent.agent_id) == 2
        # The agent unregisters itself (its own secret), as the shipped agent does.
        response = await http.delete(f"/api/v1/agents/{agent.agent_id}", headers=agent.auth)
        assert response.status_code in (200, 204), response.text
    await asyncio.to_thread(engine.make_searchable)
    assert await vm_count(engine, agent.agent_id) == 0
    assert await vm_count(engine, keep.agent_id) == 2


async def test_only_the_servers_labels_reach_the_engine(vm_app, api, engine):
    """An agent that writes another agent's and user's ids in its tags (and fields) still
    writes only under its own: the labels are the server's, from its credential."""
    victim = await api.user(plan="team")
    victims_agent = await register(victim)
    user = await api.user(plan="team")
    agent = await register(user)
    worker_id = (await Worker.get(agent_id=agent.agent_id)).id
    ms = int(moment(-timedelta(seconds=5)).timestamp() * 1000)
    foreign = f"agent_id={victims_agent.agent_id},user_id={victim.user_id}"
    text = "\n".join(
        [
            f"gpu_metrics,{foreign},gpu_id={LIBRARY_IDS[0]},worker_id=wrk_x,hostname=spoof"
            f" utilization=33.5,vram_used_mb=1i,vram_total_mb=2i,temperature=40,power_usage_w=9,"
            f'agent_id="{victims_agent.agent_id}",user_id="{victim.user_id}" {ms}',
            # A GPU the agent does not have: skipped.
            f"gpu_metrics,{foreign},gpu_id=GPU-NOT-MINE utilization=1,vram_used_mb=1i,"
            f"vram_total_mb=2i,temperature=40,power_usage_w=9 {ms}",
            f"system_metrics,{foreign},hostname=spoof cpu_usage=7,memory_used_mb=1i,"
            f"memory_total_mb=2i {ms}",
            f"worker_metrics,{foreign},worker_id={worker_id},gpu_id=GPU-NOT-MINE status=1i,"
            f"connections=0i,restarts=0i {ms}",
        ]
    )
    async with make_client(vm_app) as http:
        response = await http.post(
            f"/api/v1/agents/{agent.agent_id}/status",
            json=report(worker_id, text),
            headers=agent.auth,
        )
        assert response.status_code == 200, response.text
        await vm_app.state.ctx.metrics.flush()
    await asyncio.to_thread(engine.make_searchable)

    # Everything the engine holds, asked of its own API.
    assert set(await engine_api(engine, "/api/v1/labels")) == {
        "__name__",
        "agent_id",
        "user_id",
        "gpu_id",
        "worker_id",
    }
    assert await engine_api(engine, "/api/v1/label/user_id/values") == [user.user_id]
    assert await engine_api(engine, "/api/v1/label/agent_id/values") == [agent.agent_id]
    # The registered GPU as the server spells it; the worker only on the worker's series.
    assert await engine_api(engine, "/api/v1/label/gpu_id/values") == [LIBRARY_IDS[0].lower()]
    assert await engine_api(engine, "/api/v1/label/worker_id/values") == [worker_id]
    for matcher in (
        f'{{agent_id="{victims_agent.agent_id}"}}',
        f'{{user_id="{victim.user_id}"}}',
        '{hostname="spoof"}',
    ):
        assert await engine_api(engine, "/api/v1/series", **{"match[]": matcher}) == []
    found = await engine_api(engine, "/api/v1/query", query="gpu_metrics_utilization")
    [gpu] = found["result"]
    assert gpu["metric"] == {
        "__name__": "gpu_metrics_utilization",
        "agent_id": agent.agent_id,
        "user_id": user.user_id,
        "gpu_id": LIBRARY_IDS[0].lower(),
    }
    assert gpu["value"][1] == "33.5"
