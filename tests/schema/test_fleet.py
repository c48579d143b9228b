"""The fleet overview: summary, search, state filter, sort, pages, live readings, labels;
an offline machine's GPU use as last known, never counted as in use."""

from __future__ import annotations

from datetime import timedelta

from gpugo import clock
from gpugo.models import Agent
from tests.schema.support import Gql, error
from tests.support import flush_metrics, go_time, moment, register_agent

FLEET = """query($search: String! = "", $state: FleetState, $sort: FleetSort! = NAME,
  $first: Int! = 50, $offset: Int! = 0) {
  fleet(search: $search, state: $state, sort: $sort, first: $first, offset: $offset) {
    summary { machines online offline pending gpusTotal gpusInUse gpusIdle gpusUnreachable
      gpuModels { model count } metricsIncluded utilization vramUsedMb vramTotalMb tags }
    matching
    machines { name displayName tags gpusInUse workersRunning workersTotal lastKnownAt
      utilization temperature agent { id hostname status displayName tags gpuCount lastSeenAt } }
  }
}"""
LABELS = """mutation($id: ID!, $input: AgentLabelsInput!) {
  setAgentLabels(id: $id, input: $input) { agentId hostname displayName tags } }"""


async def _fleet(api, plan: str):
    user = await api.user(plan=plan)
    busy = await register_agent(user, hostname="busy-01", gpus=2)
    await register_agent(user, hostname="new-02", gpus=1)
    silent = await register_agent(user, hostname="silent-03", gpus=1)
    report = {
        "timestamp": go_time(moment()),
        "gpus": [],
        "workers": [],
    }
    assert (await busy.report(report)).status_code == 200
    assert (await silent.report(report)).status_code == 200
    await Agent.filter(id=silent.agent_id).update(last_seen_at=clock.now() - timedelta(hours=1))
    return user, busy, silent


async def test_summary_search_filter_sort_and_pages(api):
    user, busy, silent = await _fleet(api, "team")
    metrics = {
        "timestamp": go_time(moment()),
        "system": {"cpu_usage": 10, "memory_used_mb": 1, "memory_total_mb": 2},
        "gpus": [
            {
                "gpu_id": f"GPU-{i}",
                "utilization": 40 + 20 * i,
                "vram_used_mb": 1000,
                "vram_total_mb": 24564,
                "temperature": 60 + i,
                "power_usage_w": 200,
            }
            for i in range(2)
        ],
    }
    response = await busy.http.post(
        f"/api/v1/agents/{busy.agent_id}/metrics", json=metrics, headers=busy.auth
    )
    assert response.status_code == 200, response.text
    await flush_metrics(api.app)
    gql = Gql(user)
    labelled = await gql.data(
        LABELS, {"id": silent.agent_id, "input": {"displayName": "Old box", "tags": ["rack-9"]}}
    )
    assert labelled["setAgentLabels"]["hostname"] == "silent-03"

    page = (await gql.data(FLEET))["fleet"]
    summary = page["summary"]
    assert (summary["machines"], summary["online"], summary["offline"], summary["pending"]) == (
        3,
        1,
        1,
        1,
    )
    # The running default worker holds the online machine's two GPUs only once reported;
    # the others' GPUs are on machines offline or pending.
    assert (summary["gpusTotal"], summary["gpusInUse"], summary["gpusIdle"]) == (4, 0, 2)
    assert summary["gpusUnreachable"] == 2
    assert summary["gpuModels"] == [{"model": "NVIDIA GeForce RTX 4090", "count": 4}]
    assert summary["metricsIncluded"] is True
    assert summary["utilization"] == 50.0
    assert (summary["vramUsedMb"], summary["vramTotalMb"]) == (2000, 2 * 24564)
    assert summary["tags"] == ["rack-9"]
    assert [m["name"] for m in page["machines"]] == ["busy-01", "new-02", "Old box"]
    first = page["machines"][0]
    assert (first["utilization"], first["temperature"], first["workersTotal"]) == (50.0, 61, 1)
    old = page["machines"][2]
    assert old["agent"]["displayName"] == "Old box" and old["agent"]["tags"] == ["rack-9"]
    assert old["utilization"] is None

    async def names(**variables):
        found = (await gql.data(FLEET, variables))["fleet"]
        return found["matching"], [m["name"] for m in found["machines"]]

    assert await names(state="OFFLINE") == (1, ["Old box"])
    assert await names(search="RACK-9") == (1, ["Old box"])
    assert await names(search="silent") == (1, ["Old box"])
    assert await names(search="0 busy") == (1, ["busy-01"])
    assert await names(sort="STATUS") == (3, ["Old box", "new-02", "busy-01"])
    assert await names(sort="GPUS") == (3, ["busy-01", "new-02", "Old box"])
    assert await names(sort="UTILIZATION") == (3, ["busy-01", "new-02", "Old box"])
    assert await names(first=2, offset=2) == (3, ["Old box"])
    error(await gql(FLEET, {"first": 101}), "validation_error")
    error(await gql(FLEET, {"offset": -1}), "validation_error")
    error(await gql(FLEET, {"search": "x" * 101}), "validation_error")


async def test_no_readings_without_the_metrics_plan_and_only_ones_own_machines(api):
    user, _, _ = await _fleet(api, "personal")
    stranger = await api.user(plan="team")
    await register_agent(stranger, hostname="theirs")
    page = (await Gql(user).data(FLEET))["fleet"]
    assert page["summary"]["metricsIncluded"] is False
    assert page["summary"]["utilization"] is None
    assert "theirs" not in [m["name"] for m in page["machines"]]
    other = await register_agent(stranger, hostname="other")
    error(await Gql(user)(LABELS, {"id": other.agent_id, "input": {"tags": ["x"]}}), "not_found")


async def test_an_offline_machines_gpu_use_is_last_known_and_not_in_use(api):
    user = await api.user(plan="personal")
    busy = await register_agent(user, hostname="busy-01", gpus=2)
    gone = await register_agent(user, hostname="gone-02", gpus=2)
    # Both run their default worker on both GPUs.
    for agent in (busy, gone):
        [worker] = (await agent.config()).json()["workers"]
        report = {
            "timestamp": go_time(moment()),
            "gpus": [{"gpu_id": g, "used_by_worker": None} for g in worker["gpu_ids"]],
            "workers": [
                {
                    "worker_id": worker["worker_id"],
                    "status": "running",
                    "gpu_ids": worker["gpu_ids"],
                }
            ],
        }
        assert (await agent.report(report)).status_code == 200
    gql = Gql(user)
    page = (await gql.data(FLEET))["fleet"]
    assert (page["summary"]["gpusInUse"], page["summary"]["gpusUnreachable"]) == (4, 0)
    assert [(m["gpusInUse"], m["lastKnownAt"]) for m in page["machines"]] == [(2, None)] * 2

    # gone-02 goes silent: what it said is still shown, as last known, and no longer use.
    await Agent.filter(id=gone.agent_id).update(last_seen_at=clock.now() - timedelta(hours=1))
    page = (await gql.data(FLEET))["fleet"]
    summary = page["summary"]
    assert (summary["online"], summary["offline"]) == (1, 1)
    assert (summary["gpusTotal"], summary["gpusInUse"], summary["gpusIdle"]) == (4, 2, 0)
    assert summary["gpusUnreachable"] == 2
    current, last_known = page["machines"]
    assert (current["name"], current["gpusInUse"], current["lastKnownAt"]) == ("busy-01", 2, None)
    assert last_known["name"] == "gone-02"
    assert last_known["agent"]["status"] == "OFFLINE"
    assert (last_known["gpusInUse"], last_known["workersRunning"]) == (2, 1)
    assert last_known["lastKnownAt"] == last_known["agent"]["lastSeenAt"] is not None
    # The summary is the whole fleet's, whichever machines the page shows.
    assert (await gql.data(FLEET, {"state": "OFFLINE"}))["fleet"]["summary"] == summary
