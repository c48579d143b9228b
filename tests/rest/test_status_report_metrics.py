"""Metrics in the status report: the line protocol the shipped agent sends every 30 s.

Stored like POST /metrics for Team and Pro, dropped quietly below; nothing in the
text ever costs the heartbeat its 200 or its other writes.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import pytest

from gpugo.models import GpuMetricSample, SystemMetricSample, Worker, WorkerMetricSample
from gpugo.services import metrics
from tests.schema.support import Gql
from tests.support import Agent, Api, flush_metrics, moment, out_time, register_agent

# The agent's library names GPUs its own way; registration lowercased them.
LIBRARY_IDS = ["GPU-8F2C1A3E", "GPU-0D9E8F7A"]


async def register(user) -> Agent:
    """Registered as the agent does: the library's UUIDs lowercased."""
    token = await user.install_token()
    http = user.client_for_agent()
    response = await http.post(
        "/api/v1/agents/register",
        json={
            "hostname": "gpu-box-01",
            "os": "linux",
            "arch": "amd64",
            "gpus": [
                {
                    "gpu_id": gpu_id.lower(),
                    "vendor": "NVIDIA",
                    "model": "RTX 4090",
                    "vram_mb": 24564,
                }
                for gpu_id in LIBRARY_IDS
            ],
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return Agent(http, body["agent_id"], body["agent_secret"], body["license"])


def lines(agent_id: str, worker_id: str, at: datetime, *, gpu_ids=LIBRARY_IDS) -> str:
    ms = int(at.timestamp() * 1000)
    text = [
        f"gpu_metrics,agent_id={agent_id},gpu_id={gpu_id},model=NVIDIA\\ GeForce\\ RTX\\ 4090,"
        f"vendor=nvidia utilization={50 + i}.50,vram_used_mb=20000i,vram_total_mb=24564i,"
        f"temperature=61.7,power_usage_w=312.4,pcie_rx_kb=1234.5,pcie_tx_kb=99.9 {ms}"
        for i, gpu_id in enumerate(gpu_ids)
    ]
    text.append(
        f"system_metrics,agent_id={agent_id},hostname=gpu-box-01 cpu_usage=12.50,"
        f"memory_used_mb=8192i,memory_total_mb=65536i {ms}"
    )
    text.append(
        f"worker_metrics,agent_id={agent_id},worker_id={worker_id} "
        f"status=1i,connections=2i,restarts=0i {ms}"
    )
    return "\n".join(text)


def report(worker_id: str, text: str | None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "timestamp": out_time(moment()),
        "gpus": None,
        "workers": [{"worker_id": worker_id, "status": "running", "gpu_ids": [], "pid": 7}],
        **extra,
    }
    if text is not None:
        body["metrics"] = text
    return body


async def counts(api: Api, agent_id: str) -> tuple[int, int, int]:
    """The agent's stored samples per table, once every accepted point is written."""
    await flush_metrics(api.app)
    return (
        await GpuMetricSample.filter(agent_id=agent_id).count(),
        await SystemMetricSample.filter(agent_id=agent_id).count(),
        await WorkerMetricSample.filter(agent_id=agent_id).count(),
    )


@pytest.mark.parametrize("plan", ["team", "pro"])
async def test_the_metrics_of_a_status_report_are_stored_and_charted(api, plan):
    user = await api.user(plan=plan)
    agent = await register(user)
    worker_id = (await Worker.get(agent_id=agent.agent_id)).id
    at = moment(-timedelta(seconds=5))
    response = await agent.report(report(worker_id, lines(agent.agent_id, worker_id, at)))
    assert response.status_code == 200, response.text
    # Answered once accepted; stored by the next flush.
    assert await GpuMetricSample.filter(agent_id=agent.agent_id).count() == 0
    assert await flush_metrics(api.app) == 4
    gpus = await GpuMetricSample.filter(agent_id=agent.agent_id).order_by("utilization").values()
    # Matched to the registered ids whatever the case; floats stored rounded.
    assert [(g["gpu_id"], g["utilization"], g["temperature"]) for g in gpus] == [
        (LIBRARY_IDS[0].lower(), 50.5, 62),
        (LIBRARY_IDS[1].lower(), 51.5, 62),
    ]
    assert all(g["recorded_at"] == at for g in gpus)
    [worker] = await WorkerMetricSample.filter(agent_id=agent.agent_id).values()
    assert (worker["worker_id"], worker["status"], worker["connections"]) == (worker_id, 1, 2)
    # The dashboard's query reads them back, workers included.
    query = """query($id: ID!, $from: DateTime!, $to: DateTime!) {
      agentMetrics(agentId: $id, from: $from, to: $to, bucket: 60) {
        gpus { gpuId points { samples utilizationMax } }
        system { samples cpuUsageMax }
        workers { workerId points { samples runningSamples connectionsMax } }
      } }"""
    window = {
        "id": agent.agent_id,
        "from": out_time(at - timedelta(minutes=1)),
        "to": out_time(at + timedelta(minutes=1)),
    }
    charted = (await Gql(user).data(query, window))["agentMetrics"]
    assert sorted(s["gpuId"] for s in charted["gpus"]) == sorted(g.lower() for g in LIBRARY_IDS)
    assert sum(p["samples"] for p in charted["system"]) == 1
    [series] = charted["workers"]
    assert series["workerId"] == worker_id
    assert [(p["samples"], p["runningSamples"], p["connectionsMax"]) for p in series["points"]] == [
        (1, 1, 2)
    ]


@pytest.mark.parametrize("plan", ["free", "personal"])
async def test_below_team_they_are_dropped_quietly(api, plan):
    user = await api.user(plan=plan)
    agent = await register_agent(user, gpus=1)
    worker_id = (await Worker.get(agent_id=agent.agent_id)).id
    text = lines(agent.agent_id, worker_id, moment(), gpu_ids=["GPU-0"])
    response = await agent.report(report(worker_id, text))
    assert response.status_code == 200 and response.json()["success"] is True
    assert await counts(api, agent.agent_id) == (0, 0, 0)


def bad_texts(agent_id: str, worker_id: str) -> list[str]:
    now_ms = int(moment().timestamp() * 1000)
    return [
        "",
        "\x00\x01\x02\xff binary \ufffd",
        "gpu_metrics" + ",x=y" * 250_000,  # a megabyte of one line
        f'gpu_metrics,gpu_id=GPU-0 utilization="high" {now_ms}',  # wrong type
        f"gpu_metrics,gpu_id=GPU-0 utilization=50,vram_used_mb=1.5 {now_ms}",  # float for int
        f"cpu_temperature,host=a value=3 {now_ms}",  # unknown measurement
        f"system_metrics cpu_usage=12.5,memory_used_mb=1i,memory_total_mb=2i {now_ms // 1000}",
        f"system_metrics cpu_usage=500,memory_used_mb=1i,memory_total_mb=2i {now_ms}",  # range
        f"worker_metrics,worker_id=wkr_other status=1i,connections=1i,restarts=0i {now_ms}",
        f"gpu_metrics,gpu_id=GPU-9 utilization=5,vram_used_mb=1i,vram_total_mb=2i {now_ms}",
        "system_metrics cpu_usage=1 99999999999999999999999",
        "system_metrics cpu_usage=nan",
        'x s="unterminated',
        "=,= =,=",
    ]


async def test_bad_metrics_text_never_fails_a_report(api, caplog):
    user = await api.user(plan="team")
    agent = await register_agent(user, gpus=1)
    worker_id = (await Worker.get(agent_id=agent.agent_id)).id
    before = metrics.skipped_lines.total
    with caplog.at_level(logging.WARNING, logger="gpugo.metrics"):
        for pid, text in enumerate(bad_texts(agent.agent_id, worker_id), start=100):
            body = report(worker_id, text)
            body["workers"][0]["pid"] = pid
            response = await agent.report(body)
            assert response.status_code == 200, (text[:80], response.text)
            # The report's other writes happened.
            assert (await Worker.get(id=worker_id)).pid == pid
    assert await counts(api, agent.agent_id) == (0, 0, 0)
    assert metrics.skipped_lines.total > before
    # Counted, in one line for the agent within the minute (plus the seconds-stamped
    # report, dropped as older than the retention window).
    skipped = [r for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 1 and agent.agent_id in skipped[0].getMessage()


async def test_good_lines_next_to_bad_ones_are_kept(api):
    user = await api.user(plan="team")
    agent = await register_agent(user, gpus=1)
    worker_id = (await Worker.get(agent_id=agent.agent_id)).id
    good = lines(agent.agent_id, worker_id, moment(), gpu_ids=["gpu-0"])
    text = "\n".join(["garbage", good, 'x y="'])
    assert (await agent.report(report(worker_id, text))).status_code == 200
    assert await counts(api, agent.agent_id) == (1, 1, 1)


async def test_a_clock_far_ahead_is_stamped_with_the_servers_time(api):
    user = await api.user(plan="team")
    agent = await register_agent(user, gpus=1)
    worker_id = (await Worker.get(agent_id=agent.agent_id)).id
    before = moment()
    text = lines(agent.agent_id, worker_id, moment(timedelta(days=30)), gpu_ids=["GPU-0"])
    assert (await agent.report(report(worker_id, text))).status_code == 200
    await flush_metrics(api.app)
    [system] = await SystemMetricSample.filter(agent_id=agent.agent_id).values()
    assert before <= system["recorded_at"] <= moment(timedelta(seconds=5))


async def test_the_same_report_again_stores_each_ones_metrics(api):
    """An agent's reports are the same body again but for their time and metrics: each
    one's points are stored, at its own time, however the server answers them."""
    user = await api.user(plan="pro")
    agent = await register(user)
    worker_id = (await Worker.get(agent_id=agent.agent_id)).id
    times = [moment(-timedelta(seconds=s)) for s in (90, 60, 30, 0)]
    for at in times:
        body = report(worker_id, lines(agent.agent_id, worker_id, at))
        body["timestamp"] = out_time(at)
        response = await agent.report(body)
        assert response.status_code == 200, response.text
    assert await counts(api, agent.agent_id) == (8, 4, 4)
    stored = await SystemMetricSample.filter(agent_id=agent.agent_id).order_by("recorded_at")
    assert [s.recorded_at for s in stored] == times
