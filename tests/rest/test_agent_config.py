from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from gpugo import clock
from gpugo.auth import resolve
from gpugo.models import Agent, Worker
from gpugo.services import shares
from tests.sql_counter import count_sql
from tests.support import assert_error, assert_iso, moment, out_time, register_agent

REQUIRED_KEYS = {"worker_id", "gpu_ids", "listen_port", "enabled", "share_codes"}
OPTIONAL_KEYS = {"vram_mb", "compute_percent", "isolation_mode"}


def assert_worker_config(item: dict[str, Any]) -> None:
    """A WorkerConfig: the required fields typed, the optional ones absent or typed."""
    assert REQUIRED_KEYS <= set(item) <= REQUIRED_KEYS | OPTIONAL_KEYS, item
    assert isinstance(item["worker_id"], str)
    assert isinstance(item["gpu_ids"], list) and all(isinstance(g, str) for g in item["gpu_ids"])
    assert type(item["listen_port"]) is int
    assert type(item["enabled"]) is bool
    assert all(isinstance(code, str) for code in item["share_codes"])
    if "vram_mb" in item:
        assert type(item["vram_mb"]) is int
    if "compute_percent" in item:
        assert type(item["compute_percent"]) is int and 1 <= item["compute_percent"] <= 100
    if "isolation_mode" in item:
        assert item["isolation_mode"] in ("soft", "hard")


async def test_config_lists_every_worker_and_a_license(api):
    user = await api.user(plan="personal")
    agent = await register_agent(user, gpus=2)
    created = await user.post(
        "/api/v1/workers",
        json={
            "agent_id": agent.agent_id,
            "name": "off",
            "gpu_ids": ["GPU-1"],
            "listen_port": 9100,
            "enabled": False,
        },
    )
    assert created.status_code == 201
    response = await agent.config()
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"config_version", "workers", "license"}
    assert type(body["config_version"]) is int and body["config_version"] == 2
    assert set(body["license"]) == {"plain", "encrypted"}
    assert body["license"]["plain"].startswith("GPU-0,GPU-1|personal|")
    for item in body["workers"]:
        assert_worker_config(item)
    default_id = (await Worker.get(agent_id=agent.agent_id, is_default=True)).id
    # Oldest first, disabled ones included, optional fields left out when unset.
    assert body["workers"] == [
        {
            "worker_id": default_id,
            "gpu_ids": ["GPU-0", "GPU-1"],
            "listen_port": 9001,
            "enabled": True,
            "share_codes": [],
        },
        {
            "worker_id": created.json()["worker_id"],
            "gpu_ids": ["GPU-1"],
            "listen_port": 9100,
            "enabled": False,
            "share_codes": [],
        },
    ]


async def test_limits_appear_when_set(api):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    await Worker.filter(agent_id=agent.agent_id).update(
        vram_mb=8192, compute_percent=50, isolation_mode="soft"
    )
    [item] = (await agent.config()).json()["workers"]
    assert_worker_config(item)
    assert (item["vram_mb"], item["compute_percent"], item["isolation_mode"]) == (8192, 50, "soft")


async def test_an_agent_with_no_workers_gets_an_empty_list(api):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    worker_id = (await Worker.get(agent_id=agent.agent_id)).id
    assert (await user.delete(f"/api/v1/workers/{worker_id}")).status_code == 200
    body = (await agent.config()).json()
    assert body["workers"] == []
    assert body["config_version"] == 2


async def test_the_fetch_is_recorded_on_the_agent(api):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    url = f"/api/v1/agents/{agent.agent_id}"
    before = (await user.get(url)).json()
    assert (before["fetched_config_version"], before["config_fetched_at"]) == (None, None)
    await agent.config()
    after = (await user.get(url)).json()
    assert after["fetched_config_version"] == after["config_version"] == 1
    assert_iso(after["config_fetched_at"])
    # A change makes the desired version run ahead of the fetched one until the next pull.
    worker_id = (await Worker.get(agent_id=agent.agent_id)).id
    await user.patch(f"/api/v1/workers/{worker_id}", json={"name": "renamed"})
    changed = (await user.get(url)).json()
    assert (changed["config_version"], changed["fetched_config_version"]) == (2, 1)
    assert (await agent.config()).json()["config_version"] == 2
    assert (await user.get(url)).json()["fetched_config_version"] == 2


async def test_another_agents_secret_is_forbidden_and_records_nothing(api, client):
    user = await api.user(plan="personal")
    target = await register_agent(user, gpus=1, hostname="target")
    other = await register_agent(user, gpus=1, hostname="other")
    response = await client.get(f"/api/v1/agents/{target.agent_id}/config", headers=other.auth)
    assert_error(response, 403, "forbidden")
    agent = await Agent.get(id=target.agent_id)
    assert (agent.fetched_config_version, agent.config_fetched_at) == (None, None)


@pytest.mark.parametrize("credential", ["none", "pat", "install_token"])
async def test_config_needs_the_agents_secret(api, client, credential):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    headers = {
        "none": {},
        "pat": {"Authorization": f"Bearer {await user.create_pat()}"},
        "install_token": {"Authorization": f"Bearer {await user.install_token()}"},
    }[credential]
    response = await client.get(f"/api/v1/agents/{agent.agent_id}/config", headers=headers)
    assert_error(response, 401, "unauthorized")
    assert (await Agent.get(id=agent.agent_id)).fetched_config_version is None


async def test_config_statements(api):
    user = await api.user(plan="personal")
    agent = await register_agent(user, gpus=4)
    for port in (9100, 9101, 9102):
        created = await user.post(
            "/api/v1/workers",
            json={
                "agent_id": agent.agent_id,
                "name": "w",
                "gpu_ids": ["GPU-1"],
                "listen_port": port,
            },
        )
        assert created.status_code == 201
    with count_sql() as sql:
        body = (await agent.config()).json()
    assert len(body["workers"]) == 4
    # The secret, the fetch mark, the agent with its GPUs, the workers, their share codes.
    assert len(sql) == 5, sql


async def test_an_agent_deleted_while_its_pull_is_on_the_way_gets_401(api, monkeypatch):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    authenticate = resolve.authenticate_agent

    async def authenticate_then_delete(**kwargs: Any):
        principal = await authenticate(**kwargs)
        await Agent.filter(id=principal.agent_id).delete()
        return principal

    monkeypatch.setattr(resolve, "authenticate_agent", authenticate_then_delete)
    assert_error(await agent.config(), 401, "unauthorized")


async def test_share_codes_reach_the_config_and_every_change_of_them_bumps_its_version(
    api, client, app
):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    worker_id = (await Worker.get(agent_id=agent.agent_id)).id

    async def config() -> tuple[int, list[str]]:
        [worker] = (body := (await agent.config()).json())["workers"]
        return body["config_version"], worker["share_codes"]

    async def share(**extra: Any) -> dict[str, Any]:
        body = {"worker_id": worker_id, "connection_ip": "203.0.113.7", **extra}
        response = await user.post("/api/v1/shares", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    version, codes = await config()
    assert codes == []
    # Created: in the config at once, with a new version.
    kept = await share()
    once = await share(max_uses=2)
    soon = await share(expires_at=out_time(moment(timedelta(minutes=10))))
    assert await config() == (
        version + 3,
        sorted([kept["short_code"], once["short_code"], soon["short_code"]]),
    )
    # A use that leaves uses changes nothing; the one that takes the last withdraws it.
    assert (await client.get(f"/s/{once['short_code']}")).status_code == 200
    assert (await config())[0] == version + 3
    assert (await client.get(f"/s/{once['short_code']}")).status_code == 200
    assert await config() == (version + 4, sorted([kept["short_code"], soon["short_code"]]))
    # Expired: the sweeper withdraws it once, whichever instance sweeps.
    ctx = app.state.ctx
    assert await shares.withdraw_expired(ctx=ctx) == 0
    clock.advance(timedelta(minutes=11))
    assert await shares.withdraw_expired(ctx=ctx) == 1
    assert await shares.withdraw_expired(ctx=ctx) == 0
    assert await config() == (version + 5, [kept["short_code"]])
    # Deleted: gone at once; deleting a withdrawn link changes nothing the agent runs.
    assert (await user.delete(f"/api/v1/shares/{kept['share_id']}")).status_code == 200
    assert await config() == (version + 6, [])
    assert (await user.delete(f"/api/v1/shares/{soon['share_id']}")).status_code == 200
    assert await config() == (version + 6, [])
