from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest

from gpugo import clock
from gpugo.auth import resolve
from gpugo.models import Agent, GpuMetricSample, SystemMetricSample
from gpugo.services import metrics
from tests.support import (
    BAD_GPU_IDS,
    Api,
    assert_error,
    flush_metrics,
    go_time,
    moment,
    register_agent,
)


def metrics_body(gpu_ids: list[str] | None = None, **change: Any) -> dict[str, Any]:
    return {
        # The agent's local time (+08:00): stored as the instant it names.
        "timestamp": go_time(moment(), offset_hours=8),
        "system": {"cpu_usage": 12.5, "memory_used_mb": 8192, "memory_total_mb": 65536},
        "gpus": [
            {
                "gpu_id": gpu_id,
                "utilization": 87.5,
                "vram_used_mb": 20000,
                "vram_total_mb": 24564,
                "temperature": 71,
                "power_usage_w": 312.4,
            }
            for gpu_id in (gpu_ids if gpu_ids is not None else ["GPU-0"])
        ],
        **change,
    }


async def post_metrics(agent, body: dict[str, Any]):
    return await agent.http.post(
        f"/api/v1/agents/{agent.agent_id}/metrics", json=body, headers=agent.auth
    )


async def samples(api: Api, agent_id: str) -> tuple[list[dict], list[dict]]:
    """The agent's stored samples, once every accepted point is written."""
    await flush_metrics(api.app)
    gpus = (
        await GpuMetricSample.filter(agent_id=agent_id).order_by("recorded_at", "gpu_id").values()
    )
    system = await SystemMetricSample.filter(agent_id=agent_id).order_by("recorded_at").values()
    return gpus, system


@pytest.mark.parametrize("plan", ["team", "pro"])
async def test_metrics_are_stored_with_the_reports_timestamp(api, plan):
    user = await api.user(plan=plan)
    agent = await register_agent(user, gpus=2)
    recorded = moment(-timedelta(seconds=30))
    body = metrics_body(["GPU-0", "GPU-1"], timestamp=go_time(recorded, offset_hours=8))
    response = await post_metrics(agent, body)
    assert response.status_code == 200
    assert response.json() == {"success": True}
    gpus, [system] = await samples(api, agent.agent_id)
    assert [(g["gpu_id"], g["recorded_at"]) for g in gpus] == [
        ("GPU-0", recorded),
        ("GPU-1", recorded),
    ]
    assert gpus[0]["utilization"] == 87.5
    assert (gpus[0]["vram_used_mb"], gpus[0]["vram_total_mb"]) == (20000, 24564)
    assert (gpus[0]["temperature"], gpus[0]["power_usage_w"]) == (71, 312.4)
    assert (gpus[0]["pcie_rx_kb"], gpus[0]["pcie_tx_kb"]) == (None, None)
    assert system["recorded_at"] == recorded
    assert (system["cpu_usage"], system["memory_used_mb"], system["memory_total_mb"]) == (
        12.5,
        8192,
        65536,
    )


@pytest.mark.parametrize("plan", ["free", "personal"])
async def test_metrics_need_a_team_or_pro_plan(api, plan):
    user = await api.user(plan=plan)
    agent = await register_agent(user, gpus=1)
    response = await post_metrics(agent, metrics_body())
    assert_error(response, 403, "plan_feature_unavailable")
    assert await samples(api, agent.agent_id) == ([], [])


async def test_a_report_without_gpus_stores_the_host(api):
    user = await api.user(plan="team")
    agent = await register_agent(user, gpus=1)
    for gpus in ([], None):
        assert (await post_metrics(agent, metrics_body(gpus=gpus))).status_code == 200
    gpus, system = await samples(api, agent.agent_id)
    assert (len(gpus), len(system)) == (0, 2)


async def test_gpus_of_other_agents_are_refused_by_name(api):
    user = await api.user(plan="team")
    agent = await register_agent(user, gpus=1)
    response = await post_metrics(agent, metrics_body(["GPU-0", "GPU-7"]))
    error = assert_error(response, 400, "validation_error")
    assert error["details"] == [
        {"field": "gpus[1].gpu_id", "message": "GPU-7 is not a GPU of this agent."}
    ]
    assert "GPU-7" in error["message"]
    assert await samples(api, agent.agent_id) == ([], [])


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("system", "cpu_usage"), 100.5),
        (("system", "cpu_usage"), -1),
        (("system", "memory_used_mb"), 1.5),
        (("system", "memory_total_mb"), "1"),
        (("gpus", 0, "utilization"), 101),
        (("gpus", 0, "vram_used_mb"), -1),
        (("gpus", 0, "vram_total_mb"), 2**31),
        (("gpus", 0, "temperature"), "hot"),
        (("gpus", 0, "power_usage_w"), None),
        (("gpus", 0, "pcie_rx_kb"), -5),
        (("timestamp",), "soon"),
    ],
)
async def test_values_out_of_range_are_refused_with_their_field(api, path, value):
    user = await api.user(plan="team")
    agent = await register_agent(user, gpus=1)
    body = metrics_body()
    target: Any = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    error = assert_error(await post_metrics(agent, body), 400, "validation_error")
    field = ".".join(str(p) for p in path).replace(".0.", "[0].")
    assert [d["field"] for d in error["details"]] == [field]
    assert await samples(api, agent.agent_id) == ([], [])


@pytest.mark.parametrize("gpu_id", BAD_GPU_IDS)
async def test_gpu_ids_outside_the_rule_are_refused(api, gpu_id):
    user = await api.user(plan="team")
    agent = await register_agent(user, gpus=1)
    error = assert_error(
        await post_metrics(agent, metrics_body(["GPU-0", gpu_id])), 400, "validation_error"
    )
    assert [d["field"] for d in error["details"]] == ["gpus[1].gpu_id"]
    assert await samples(api, agent.agent_id) == ([], [])


async def test_a_gpu_reported_twice_is_refused(api):
    user = await api.user(plan="team")
    agent = await register_agent(user, gpus=1)
    error = assert_error(
        await post_metrics(agent, metrics_body(["GPU-0", "GPU-0"])), 400, "validation_error"
    )
    assert error["details"][0]["field"] == "gpus"


async def test_the_real_agents_floats_are_stored_rounded(api):
    user = await api.user(plan="pro")
    agent = await register_agent(user, gpus=1)
    body = metrics_body()
    body["gpus"][0].update({"temperature": 61.7, "pcie_rx_kb": 1234.6, "pcie_tx_kb": 0.4})
    assert (await post_metrics(agent, body)).status_code == 200
    [gpu], _ = await samples(api, agent.agent_id)
    assert (gpu["temperature"], gpu["pcie_rx_kb"], gpu["pcie_tx_kb"]) == (62, 1235, 0)


async def test_another_agents_secret_is_forbidden_and_stores_nothing(api, client):
    user = await api.user(plan="team")
    target = await register_agent(user, gpus=1, hostname="target")
    other = await register_agent(user, gpus=1, hostname="other")
    response = await client.post(
        f"/api/v1/agents/{target.agent_id}/metrics", json=metrics_body(), headers=other.auth
    )
    assert_error(response, 403, "forbidden")
    assert await samples(api, target.agent_id) == ([], [])
    assert await samples(api, other.agent_id) == ([], [])


async def test_metrics_need_the_agents_secret(api, client):
    user = await api.user(plan="team")
    agent = await register_agent(user, gpus=1)
    url = f"/api/v1/agents/{agent.agent_id}/metrics"
    assert_error(await client.post(url, json=metrics_body()), 401, "unauthorized")
    pat = {"Authorization": f"Bearer {await user.create_pat()}"}
    assert_error(await client.post(url, json=metrics_body(), headers=pat), 401, "unauthorized")


async def test_a_report_older_than_the_raw_window_is_dropped_and_counted(api, settings, caplog):
    user = await api.user(plan="team")
    agent = await register_agent(user, gpus=1)
    stale = moment(-timedelta(hours=settings.metrics_raw_hours + 1))
    before = metrics.dropped_reports.total
    with caplog.at_level(logging.WARNING, logger="gpugo.metrics"):
        for _ in range(3):
            response = await post_metrics(agent, metrics_body(timestamp=stale.isoformat()))
            # Nothing for the agent to correct by retrying: the report is answered.
            assert response.json() == {"success": True}
    assert await samples(api, agent.agent_id) == ([], [])
    assert metrics.dropped_reports.total == before + 3
    # Counted, and one line for the agent within a minute.
    lines = [r.getMessage() for r in caplog.records if r.name == "gpugo.metrics"]
    assert len(lines) == 1 and agent.agent_id in lines[0], lines


async def test_a_report_from_a_clock_far_ahead_is_stamped_with_the_servers_time(api):
    user = await api.user(plan="team")
    agent = await register_agent(user, gpus=1)
    # Within the tolerance: the agent's own time.
    slightly_ahead = moment(metrics.FUTURE_TOLERANCE - timedelta(minutes=1))
    assert (
        await post_metrics(agent, metrics_body(timestamp=slightly_ahead.isoformat()))
    ).is_success
    # A day ahead: the server's time of arrival.
    before = moment()
    ahead = metrics_body(timestamp=moment(timedelta(days=1)).isoformat())
    assert (await post_metrics(agent, ahead)).is_success
    after = clock.now()
    gpus, system = await samples(api, agent.agent_id)
    # In time order: the day-ahead report first.
    assert before <= gpus[0]["recorded_at"] <= after
    assert gpus[1]["recorded_at"] == slightly_ahead
    assert [s["recorded_at"] for s in system] == [g["recorded_at"] for g in gpus]


async def test_an_agent_deleted_while_its_gpu_metrics_are_on_the_way_gets_401(api, monkeypatch):
    user = await api.user(plan="team")
    agent = await register_agent(user, gpus=1)
    authenticate = resolve.authenticate_agent

    async def authenticate_then_delete(**kwargs: Any):
        principal = await authenticate(**kwargs)
        await Agent.filter(id=principal.agent_id).delete()
        return principal

    monkeypatch.setattr(resolve, "authenticate_agent", authenticate_then_delete)
    # The GPU ids are checked against the agent's row: gone, so its secret is unknown.
    assert_error(await post_metrics(agent, metrics_body(["GPU-0"])), 401, "unauthorized")
    assert await samples(api, agent.agent_id) == ([], [])


async def test_points_of_an_agent_deleted_before_the_flush_leave_the_batch_whole(api):
    user = await api.user(plan="team")
    gone = await register_agent(user, gpus=1, hostname="gone")
    kept = await register_agent(user, gpus=1, hostname="kept")
    assert (await post_metrics(gone, metrics_body())).status_code == 200
    assert (await post_metrics(kept, metrics_body())).status_code == 200
    assert (await user.delete(f"/api/v1/agents/{gone.agent_id}")).is_success
    # One batch holds both agents' points: the deleted one's are left out, not the batch.
    assert await flush_metrics(api.app) == 4
    assert api.app.state.ctx.metrics.buffer.pending == 0
    assert await samples(api, gone.agent_id) == ([], [])
    gpus, system = await samples(api, kept.agent_id)
    assert len(gpus) == len(system) == 1
