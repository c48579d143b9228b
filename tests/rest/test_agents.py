from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from gpugo import clock
from gpugo.events import EventKind
from gpugo.models import (
    Agent,
    Gpu,
    GpuMetricSample,
    InstallToken,
    Share,
    SystemMetricSample,
    Worker,
    WorkerConnection,
)
from tests.sql_counter import count_sql
from tests.support import assert_error, assert_iso, moment, out_time, register_agent

LIST_ITEM_KEYS = {
    "agent_id",
    "hostname",
    "status",
    "os",
    "arch",
    "gpuCount",
    # What the shipped CLI decodes (ggo agent list, interactive worker create).
    "gpu_count",
    "gpus",
    "workers",
    "last_seen_at",
    "created_at",
}
# Reports carry the server's now, as an agent with a correct clock sends them.
NOW = out_time(moment())


def assert_list_item(item: dict[str, Any]) -> None:
    """An AgentListItem: the spec's fields and the CLI's, each with its JSON type."""
    assert set(item) == LIST_ITEM_KEYS, item
    for key in ("agent_id", "hostname", "os", "arch"):
        assert isinstance(item[key], str) and item[key], key
    assert item["status"] in ("pending", "online", "offline")
    assert type(item["gpuCount"]) is int and item["gpu_count"] == item["gpuCount"]
    assert len(item["gpus"]) == item["gpu_count"]
    for gpu in item["gpus"]:
        assert isinstance(gpu["gpu_id"], str) and type(gpu["vram_mb"]) is int
    for worker in item["workers"]:
        assert isinstance(worker["worker_id"], str) and type(worker["listen_port"]) is int
        assert worker["agent_id"] == item["agent_id"]
    if item["last_seen_at"] is not None:
        assert_iso(item["last_seen_at"])
    assert_iso(item["created_at"])


def assert_detail(body: dict[str, Any]) -> None:
    """The spec's agent detail: every field present with its JSON type (extras allowed)."""
    for key in ("agent_id", "hostname", "os", "arch"):
        assert isinstance(body[key], str) and body[key], key
    assert body["status"] in ("pending", "online", "offline")
    assert isinstance(body["network_ips"], list)
    assert all(isinstance(ip, str) for ip in body["network_ips"])
    assert isinstance(body["gpus"], list)
    for gpu in body["gpus"]:
        assert isinstance(gpu["gpu_id"], str)
        assert isinstance(gpu["vendor"], str) and gpu["vendor"] == gpu["vendor"].lower()
        assert isinstance(gpu["model"], str)
        assert type(gpu["vram_mb"]) is int
        assert gpu["used_by_worker"] is None or isinstance(gpu["used_by_worker"], str)
    assert isinstance(body["workers"], list)
    for worker in body["workers"]:
        assert isinstance(worker["worker_id"], str)
        assert type(worker["is_default"]) is bool
        assert worker["status"] in ("pending", "running", "stopping", "stopped")
        assert isinstance(worker["gpu_ids"], list)
        assert all(isinstance(g, str) for g in worker["gpu_ids"])
        assert type(worker["listen_port"]) is int
        assert isinstance(worker["connections"], list)
        for connection in worker["connections"]:
            assert isinstance(connection["client_ip"], str)
            assert_iso(connection["connected_at"])
    if body["last_seen_at"] is not None:
        assert_iso(body["last_seen_at"])
    assert_iso(body["created_at"])


async def test_list_agents(api):
    user = await api.user(plan="personal")
    first = await register_agent(user, gpus=1, hostname="host-a")
    clock.advance(timedelta(seconds=1))
    second = await register_agent(user, gpus=3, hostname="host-b", vendor="amd")
    await second.report({"timestamp": NOW, "gpus": [], "workers": []})
    response = await user.get("/api/v1/agents")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"agents"}
    for item in body["agents"]:
        assert_list_item(item)
    # Newest first.
    assert [(a["agent_id"], a["hostname"], a["gpuCount"], a["status"]) for a in body["agents"]] == [
        (second.agent_id, "host-b", 3, "online"),
        (first.agent_id, "host-a", 1, "pending"),
    ]
    assert body["agents"][0]["os"] == "linux" and body["agents"][0]["arch"] == "amd64"
    assert [g["gpu_id"] for g in body["agents"][0]["gpus"]] == ["GPU-0", "GPU-1", "GPU-2"]
    assert body["agents"][0]["gpus"][0]["vendor"] == "amd"
    [default] = body["agents"][1]["workers"]
    assert (default["is_default"], default["gpu_ids"], default["listen_port"]) == (
        True,
        ["GPU-0"],
        9001,
    )
    assert_iso(body["agents"][0]["last_seen_at"])
    assert body["agents"][1]["last_seen_at"] is None


async def test_list_shows_only_the_callers_agents(api):
    owner = await api.user()
    other = await api.user()
    await register_agent(owner, gpus=1)
    assert (await other.get("/api/v1/agents")).json() == {"agents": []}


async def test_list_costs_the_same_statements_for_one_agent_or_many(api):
    user = await api.user(plan="team")
    await register_agent(user, gpus=1, hostname="h0")
    with count_sql() as few:
        response = await user.get("/api/v1/agents")
    assert len(response.json()["agents"]) == 1
    for n in range(1, 8):
        agent = await register_agent(user, gpus=2, hostname=f"h{n}")
        await agent.report({"timestamp": NOW, "gpus": [], "workers": []})
    with count_sql() as many:
        response = await user.get("/api/v1/agents")
    assert len(response.json()["agents"]) == 8
    assert len(few) == len(many) == 2, (few, many)  # the session, then one SELECT


async def test_a_pat_and_the_agents_own_secret_work_on_agent_views(api, client):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    bearer = {"Authorization": f"Bearer {await user.create_pat()}"}
    assert (await client.get("/api/v1/agents", headers=bearer)).status_code == 200
    url = f"/api/v1/agents/{agent.agent_id}"
    assert (await client.get(url, headers=bearer)).status_code == 200
    assert_error(await client.get("/api/v1/agents"), 401, "unauthorized")
    # The agent's own secret sees its own agent (the CLI on the host).
    listed = (await client.get("/api/v1/agents", headers=agent.auth)).json()["agents"]
    assert [a["agent_id"] for a in listed] == [agent.agent_id]
    assert (await client.get(url, headers=agent.auth)).status_code == 200


async def test_agent_detail(api):
    user = await api.user(plan="personal")
    agent = await register_agent(user, gpus=2)
    default_id = (await Worker.get(agent_id=agent.agent_id)).id
    second = await user.post(
        "/api/v1/workers",
        json={"agent_id": agent.agent_id, "name": "w2", "gpu_ids": ["GPU-1"], "listen_port": 9100},
    )
    second_id = second.json()["worker_id"]
    await agent.report(
        {
            "timestamp": NOW,
            "gpus": [{"gpu_id": "GPU-0", "used_by_worker": default_id}],
            "workers": [
                {
                    "worker_id": default_id,
                    "status": "running",
                    "pid": 77,
                    "gpu_ids": ["GPU-0", "GPU-1"],
                    "connections": [{"client_ip": "10.1.2.3", "connected_at": NOW}],
                }
            ],
        }
    )
    response = await user.get(f"/api/v1/agents/{agent.agent_id}")
    assert response.status_code == 200
    body = response.json()
    assert_detail(body)
    assert body["agent_id"] == agent.agent_id
    assert body["hostname"] == "gpu-host-1"
    assert body["status"] == "online"
    assert body["network_ips"] == ["192.168.1.20"]
    assert [(g["gpu_id"], g["used_by_worker"]) for g in body["gpus"]] == [
        ("GPU-0", default_id),
        ("GPU-1", None),
    ]
    assert body["gpus"][0] == {
        "gpu_id": "GPU-0",
        "gpu_index": None,
        "vendor": "nvidia",
        "model": "NVIDIA GeForce RTX 4090",
        "vram_mb": 24564,
        "driver_version": "550.54.14",
        "cuda_version": "12.4",
        "used_by_worker": default_id,
        "agent_online": True,
        "last_known_at": None,
    }
    default, extra = body["workers"]
    assert_iso(default.pop("created_at"))
    assert default == {
        "worker_id": default_id,
        "agent_id": agent.agent_id,
        "name": "default",
        "is_default": True,
        "enabled": True,
        "status": "running",
        "gpu_ids": ["GPU-0", "GPU-1"],
        "listen_port": 9001,
        "pid": 77,
        # Absent in the report (the agent's omitempty): 0.
        "restarts": 0,
        "vram_mb": None,
        "compute_percent": None,
        "isolation_mode": None,
        "agent_online": True,
        "last_known_at": None,
        "connections": [
            {
                "client_ip": "10.1.2.3",
                "connected_at": NOW,
                "client_port": None,
                "client_pid": None,
            }
        ],
        "live_connection_count": 1,
    }
    assert extra["worker_id"] == second_id
    assert (extra["is_default"], extra["status"], extra["connections"]) == (False, "pending", [])
    # The config sync state: version 2 wanted (one worker created), never fetched.
    assert (body["config_version"], body["fetched_config_version"]) == (2, None)
    assert body["config_fetched_at"] is None
    assert isinstance(body["status_reason"], str)


async def test_a_pending_agent_detail(api):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    body = (await user.get(f"/api/v1/agents/{agent.agent_id}")).json()
    assert_detail(body)
    assert body["status"] == "pending"
    assert body["last_seen_at"] is None
    [worker] = body["workers"]
    assert (worker["status"], worker["connections"]) == ("pending", [])


async def test_another_users_agent_is_not_found(api):
    owner = await api.user()
    other = await api.user()
    agent = await register_agent(owner, gpus=1)
    url = f"/api/v1/agents/{agent.agent_id}"
    missing = await other.get("/api/v1/agents/agt_doesnotexist")
    assert_error(missing, 404, "not_found")
    foreign = await other.get(url)
    assert_error(foreign, 404, "not_found")
    # Never reveal existence: the same body as a missing id.
    assert foreign.json() == missing.json()
    assert_error(await other.delete(url), 404, "not_found")
    assert await Agent.exists(id=agent.agent_id)
    assert (await owner.get(url)).status_code == 200


async def _fill(agent, owner) -> dict[str, Any]:
    """Give the agent a row in every table that hangs off it; return the ids."""
    worker = await Worker.get(agent_id=agent.agent_id)
    await WorkerConnection.create(worker=worker, client_ip="10.0.0.1", connected_at=clock.now())
    share = await owner.post(
        "/api/v1/shares", json={"worker_id": worker.id, "connection_ip": "203.0.113.7"}
    )
    assert share.status_code == 201, share.text
    now = clock.now()
    await GpuMetricSample.create(
        agent_id=agent.agent_id,
        gpu_id="GPU-0",
        recorded_at=now,
        utilization=1,
        vram_used_mb=1,
        vram_total_mb=2,
        temperature=40,
        power_usage_w=10,
    )
    await SystemMetricSample.create(
        agent_id=agent.agent_id, recorded_at=now, cpu_usage=1, memory_used_mb=1, memory_total_mb=2
    )
    return {"worker_id": worker.id, "share_id": share.json()["share_id"]}


async def _remaining(agent_id: str, ids: dict[str, Any]) -> dict[str, int]:
    return {
        "agents": await Agent.filter(id=agent_id).count(),
        "gpus": await Gpu.filter(agent_id=agent_id).count(),
        "workers": await Worker.filter(agent_id=agent_id).count(),
        "connections": await WorkerConnection.filter(worker_id=ids["worker_id"]).count(),
        "shares": await Share.filter(id=ids["share_id"]).count(),
        "gpu_metrics": await GpuMetricSample.filter(agent_id=agent_id).count(),
        "system_metrics": await SystemMetricSample.filter(agent_id=agent_id).count(),
    }


async def test_deleting_an_agent_cascades_and_kills_its_secret(api):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    ids = await _fill(agent, user)
    assert set((await _remaining(agent.agent_id, ids)).values()) == {1}
    response = await user.delete(f"/api/v1/agents/{agent.agent_id}")
    assert response.status_code == 200
    assert response.json() == {"success": True}
    assert set((await _remaining(agent.agent_id, ids)).values()) == {0}
    assert_error(
        await agent.report({"timestamp": NOW, "gpus": [], "workers": []}), 401, "unauthorized"
    )
    assert_error(await user.get(f"/api/v1/agents/{agent.agent_id}"), 404, "not_found")
    assert_error(await user.delete(f"/api/v1/agents/{agent.agent_id}"), 404, "not_found")
    # The install token keeps naming the host it registered.
    token = await InstallToken.get(agent_hostname="gpu-host-1")
    assert token.used_at is not None and token.agent_id is None


async def test_an_agent_deletes_itself_with_its_own_secret(api, client):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    response = await client.delete(f"/api/v1/agents/{agent.agent_id}", headers=agent.auth)
    assert response.status_code == 200
    assert response.json() == {"success": True}
    assert not await Agent.exists(id=agent.agent_id)
    assert_error(
        await client.delete(f"/api/v1/agents/{agent.agent_id}", headers=agent.auth),
        401,
        "unauthorized",
    )


async def test_another_agents_secret_cannot_delete_and_nothing_changes(api, client):
    user = await api.user(plan="personal")
    target = await register_agent(user, gpus=1, hostname="target")
    other = await register_agent(user, gpus=1, hostname="other")
    ids = await _fill(target, user)
    # An agent secret acts within its own agent: another agent is not found, as for a stranger.
    response = await client.delete(f"/api/v1/agents/{target.agent_id}", headers=other.auth)
    assert_error(response, 404, "not_found")
    assert set((await _remaining(target.agent_id, ids)).values()) == {1}
    # Another user's agent's secret: the same refusal.
    stranger = await register_agent(await api.user(), gpus=1, hostname="stranger")
    response = await client.delete(f"/api/v1/agents/{target.agent_id}", headers=stranger.auth)
    assert_error(response, 404, "not_found")
    assert set((await _remaining(target.agent_id, ids)).values()) == {1}


@pytest.mark.parametrize("credential", ["none", "install_token", "garbage"])
async def test_delete_needs_a_user_or_the_agent(api, client, credential):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    headers = {
        "none": {},
        "install_token": {"Authorization": f"Bearer {await user.install_token()}"},
        "garbage": {"Authorization": "Bearer gpgo_agent_nope"},
    }[credential]
    response = await client.delete(f"/api/v1/agents/{agent.agent_id}", headers=headers)
    assert_error(response, 401, "unauthorized")
    assert await Agent.exists(id=agent.agent_id)


async def test_delete_with_a_cookie_needs_the_same_origin(api):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    response = await user.http.delete(
        f"/api/v1/agents/{agent.agent_id}", headers={"Origin": "https://evil.example"}
    )
    assert_error(response, 403, "forbidden")
    assert await Agent.exists(id=agent.agent_id)


async def test_deleting_frees_the_plan(api):
    user = await api.user()
    agent = await register_agent(user, gpus=2)
    token = await user.install_token()
    body = {
        "hostname": "next",
        "os": "linux",
        "arch": "amd64",
        "gpus": [{"gpu_id": "GPU-0", "vendor": "nvidia", "model": "m", "vram_mb": 1}],
    }
    refused = await agent.http.post(
        "/api/v1/agents/register", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert_error(refused, 403, "plan_limit_exceeded")
    assert (await user.delete(f"/api/v1/agents/{agent.agent_id}")).status_code == 200
    accepted = await agent.http.post(
        "/api/v1/agents/register", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert accepted.status_code == 201, accepted.text


async def test_registration_and_deletion_are_published(api, app):
    user = await api.user()
    async with app.state.ctx.events.subscribe(user_id=user.user_id) as events:
        agent = await register_agent(user, gpus=1)
        await user.delete(f"/api/v1/agents/{agent.agent_id}")
        received = [await asyncio.wait_for(events.get(), timeout=5) for _ in range(3)]
    assert [(e.kind, e.agent_id) for e in received] == [
        (EventKind.AGENT_REGISTERED, agent.agent_id),
        (EventKind.INSTALL_TOKEN_USED, agent.agent_id),
        (EventKind.AGENT_DELETED, agent.agent_id),
    ]
