from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gpugo import clock
from gpugo.events import EventKind
from gpugo.models import Agent, Share, Worker
from gpugo.services import workers as workers_service
from gpugo.timefmt import iso
from tests.sql_counter import count_sql
from tests.support import BAD_GPU_IDS, assert_error, assert_iso, register_agent

WORKER_KEYS = {
    "worker_id",
    "agent_id",
    "name",
    "gpu_ids",
    "listen_port",
    "enabled",
    "status",
    "is_default",
    "pid",
    "restarts",
    "vram_mb",
    "compute_percent",
    "isolation_mode",
    "created_at",
    "agent_online",
    "last_known_at",
}
LIMIT_KEYS = {"vram_mb", "compute_percent", "isolation_mode"}
PATCH_KEYS = {"worker_id", "name", "gpu_ids", "listen_port", "enabled", "status", *LIMIT_KEYS}


def assert_worker_item(item: dict[str, Any]) -> None:
    """A WorkerListItem, every field with its JSON type."""
    assert set(item) == WORKER_KEYS, item
    assert isinstance(item["worker_id"], str) and item["worker_id"]
    assert isinstance(item["agent_id"], str) and item["agent_id"]
    assert isinstance(item["name"], str)
    assert isinstance(item["gpu_ids"], list)
    assert all(isinstance(g, str) for g in item["gpu_ids"])
    assert type(item["listen_port"]) is int
    assert type(item["enabled"]) is bool
    assert item["status"] in ("pending", "running", "stopping", "stopped")
    assert_iso(item["created_at"])
    assert type(item["agent_online"]) is bool
    if item["last_known_at"] is not None:
        assert not item["agent_online"]
        assert_iso(item["last_known_at"])


async def agent_config(agent) -> dict[str, Any]:
    """What the agent itself pulls, with its own secret."""
    response = await agent.config()
    assert response.status_code == 200, response.text
    return response.json()


async def config_version(agent) -> int:
    return (await agent_config(agent))["config_version"]


async def report(agent, worker_id: str, status: str, **worker: Any) -> None:
    """The agent reports one worker (e.g. running, with its connections)."""
    response = await agent.report(
        {
            "timestamp": iso(clock.now()),
            "gpus": [],
            "workers": [{"worker_id": worker_id, "status": status, "gpu_ids": [], **worker}],
        }
    )
    assert response.status_code == 200, response.text


async def snapshot(agent_id: str) -> tuple[list[dict], int]:
    """Everything a refused change must leave untouched: the workers and config_version."""
    rows = await Worker.filter(agent_id=agent_id).order_by("id").values()
    return rows, (await Agent.get(id=agent_id)).config_version


async def new_worker(user, agent, **fields: Any):
    body = {"agent_id": agent.agent_id, "name": "w", "gpu_ids": ["GPU-0"], "listen_port": 9100}
    return await user.post("/api/v1/workers", json={**body, **fields})


async def default_worker_id(agent) -> str:
    return (await Worker.get(agent_id=agent.agent_id, is_default=True)).id


# --- GET /api/v1/workers -------------------------------------------------------------------


async def test_list_shows_the_default_worker_of_a_registered_agent(api):
    user = await api.user()
    agent = await register_agent(user, gpus=2)
    response = await user.get("/api/v1/workers")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"workers"}
    [item] = body["workers"]
    assert_worker_item(item)
    assert item["agent_id"] == agent.agent_id
    assert item["name"] == "default"
    assert item["gpu_ids"] == ["GPU-0", "GPU-1"]
    assert item["listen_port"] == 9001
    assert item["enabled"] is True
    assert item["status"] == "pending"


async def test_list_filters_by_agent_and_hostname_and_they_combine(api):
    user = await api.user(plan="personal")
    one = await register_agent(user, gpus=1, hostname="host-one")
    two = await register_agent(user, gpus=1, hostname="host-two")
    assert (await new_worker(user, two, listen_port=9200)).status_code == 201

    async def agent_ids(query: str) -> list[str]:
        response = await user.get(f"/api/v1/workers{query}")
        assert response.status_code == 200, response.text
        return sorted(w["agent_id"] for w in response.json()["workers"])

    assert await agent_ids("") == sorted([one.agent_id, two.agent_id, two.agent_id])
    assert await agent_ids(f"?agent_id={one.agent_id}") == [one.agent_id]
    assert await agent_ids("?hostname=host-two") == [two.agent_id, two.agent_id]
    assert await agent_ids(f"?agent_id={two.agent_id}&hostname=host-two") == [
        two.agent_id,
        two.agent_id,
    ]
    assert await agent_ids(f"?agent_id={one.agent_id}&hostname=host-two") == []
    assert await agent_ids("?hostname=nowhere") == []
    assert await agent_ids("?agent_id=agt_unknown") == []
    # An empty parameter filters nothing.
    assert len(await agent_ids("?agent_id=&hostname=")) == 3


async def test_list_shows_only_the_callers_workers(api):
    owner = await api.user()
    other = await api.user()
    agent = await register_agent(owner, gpus=1, hostname="shared-name")
    await register_agent(other, gpus=1, hostname="shared-name")
    theirs = (await other.get("/api/v1/workers")).json()["workers"]
    assert len(theirs) == 1 and theirs[0]["agent_id"] != agent.agent_id
    by_agent = await other.get(f"/api/v1/workers?agent_id={agent.agent_id}")
    assert by_agent.json() == {"workers": []}
    by_host = (await other.get("/api/v1/workers?hostname=shared-name")).json()["workers"]
    assert [w["agent_id"] for w in by_host] == [theirs[0]["agent_id"]]


async def test_list_filter_values_are_validated(api):
    user = await api.user()
    response = await user.get("/api/v1/workers?hostname=" + "h" * 256)
    error = assert_error(response, 400, "validation_error")
    assert error["details"][0]["field"] == "hostname"


async def test_list_costs_the_same_statements_for_one_worker_or_many(api):
    user = await api.user(plan="personal")
    agent = await register_agent(user, gpus=2)
    await user.get("/api/v1/workers")  # the session's idle clock is written at most once
    with count_sql() as few:
        response = await user.get("/api/v1/workers")
    assert len(response.json()["workers"]) == 1
    for port in range(9100, 9106):
        assert (await new_worker(user, agent, listen_port=port)).status_code == 201
    with count_sql() as many:
        response = await user.get(f"/api/v1/workers?agent_id={agent.agent_id}&hostname=gpu-host-1")
    assert len(response.json()["workers"]) == 7
    assert len(few) == len(many) == 2, (few, many)  # the session, then one SELECT


async def test_workers_need_a_user(api, client):
    user = await api.user()
    await register_agent(user, gpus=1)
    assert_error(await client.get("/api/v1/workers"), 401, "unauthorized")
    pat = await user.create_pat()
    response = await client.get("/api/v1/workers", headers={"Authorization": f"Bearer {pat}"})
    assert response.status_code == 200
    assert len(response.json()["workers"]) == 1


async def test_cookie_writes_need_the_same_origin(api):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    body = {"agent_id": agent.agent_id, "name": "w", "gpu_ids": ["GPU-0"], "listen_port": 9100}
    response = await user.http.post(
        "/api/v1/workers", json=body, headers={"Origin": "https://evil.example"}
    )
    assert_error(response, 403, "forbidden")
    assert await Worker.filter(agent_id=agent.agent_id).count() == 1


# --- POST /api/v1/workers ------------------------------------------------------------------


async def test_create_worker(api):
    user = await api.user()
    agent = await register_agent(user, gpus=2)
    assert await config_version(agent) == 1
    response = await new_worker(user, agent, name="inference", gpu_ids=["GPU-1", "GPU-0"])
    assert response.status_code == 201, response.text
    item = response.json()
    assert_worker_item(item)
    assert item["worker_id"].startswith("wkr_")
    assert item["agent_id"] == agent.agent_id
    assert item["name"] == "inference"
    assert item["gpu_ids"] == ["GPU-1", "GPU-0"]  # the user's order
    assert item["listen_port"] == 9100
    assert item["enabled"] is True
    assert item["status"] == "pending"
    assert await config_version(agent) == 2
    listed = (await user.get("/api/v1/workers")).json()["workers"]
    assert item in listed


async def test_create_a_disabled_worker(api):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    response = await new_worker(user, agent, enabled=False)
    assert response.status_code == 201
    assert response.json()["enabled"] is False


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "n" * 101}, "name"),
        ({"name": 5}, "name"),
        ({"gpu_ids": []}, "gpu_ids"),
        ({"gpu_ids": ["GPU-0", "GPU-0"]}, "gpu_ids"),
        ({"gpu_ids": "GPU-0"}, "gpu_ids"),
        ({"gpu_ids": [0]}, "gpu_ids[0]"),
        ({"listen_port": 1023}, "listen_port"),
        ({"listen_port": 65536}, "listen_port"),
        ({"listen_port": "9100"}, "listen_port"),
        ({"listen_port": 9100.5}, "listen_port"),
        ({"enabled": "yes"}, "enabled"),
        ({"agent_id": None}, "agent_id"),
    ],
)
async def test_create_validates_its_input(api, change, field):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    before = await snapshot(agent.agent_id)
    error = assert_error(await new_worker(user, agent, **change), 400, "validation_error")
    assert field in [d["field"] for d in error["details"]]
    assert await snapshot(agent.agent_id) == before


@pytest.mark.parametrize("gpu_id", BAD_GPU_IDS)
async def test_create_and_patch_refuse_gpu_ids_outside_the_rule(api, gpu_id):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    worker_id = await default_worker_id(agent)
    before = await snapshot(agent.agent_id)
    gpu_ids = ["GPU-0", gpu_id]
    for response in (
        await new_worker(user, agent, gpu_ids=gpu_ids),
        await user.patch(f"/api/v1/workers/{worker_id}", json={"gpu_ids": gpu_ids}),
    ):
        error = assert_error(response, 400, "validation_error")
        assert [d["field"] for d in error["details"]] == ["gpu_ids[1]"]
    assert await snapshot(agent.agent_id) == before


@pytest.mark.parametrize("missing", ["agent_id", "name", "gpu_ids", "listen_port"])
async def test_create_requires_its_fields(api, missing):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    body = {"agent_id": agent.agent_id, "name": "w", "gpu_ids": ["GPU-0"], "listen_port": 9100}
    del body[missing]
    error = assert_error(await user.post("/api/v1/workers", json=body), 400, "validation_error")
    assert error["details"] == [{"field": missing, "message": "This field is required."}]


async def test_create_refuses_gpus_the_agent_does_not_have(api):
    user = await api.user()
    agent = await register_agent(user, gpus=2)
    before = await snapshot(agent.agent_id)
    response = await new_worker(user, agent, gpu_ids=["GPU-1", "GPU-7", "GPU-9"])
    error = assert_error(response, 400, "validation_error")
    assert "GPU-7" in error["message"] and "GPU-9" in error["message"]
    assert "GPU-1" not in error["message"]
    assert [d["field"] for d in error["details"]] == ["gpu_ids", "gpu_ids"]
    assert "GPU-7" in error["details"][0]["message"]
    assert "GPU-9" in error["details"][1]["message"]
    assert await snapshot(agent.agent_id) == before


async def test_create_refuses_gpus_of_another_agent_of_the_same_user(api):
    user = await api.user(plan="personal")
    one = await register_agent(user, gpus=1)
    await register_agent(user, gpus=3)  # has GPU-1 and GPU-2; `one` has only GPU-0
    error = assert_error(await new_worker(user, one, gpu_ids=["GPU-2"]), 400, "validation_error")
    assert "GPU-2" in error["message"]


async def test_create_on_another_users_agent_is_not_found(api):
    owner = await api.user(plan="personal")
    intruder = await api.user(plan="personal")
    agent = await register_agent(owner, gpus=1)
    before = await snapshot(agent.agent_id)
    assert_error(await new_worker(intruder, agent), 404, "not_found")
    assert_error(await new_worker(intruder, agent, agent_id="agt_unknown"), 404, "not_found")
    assert await snapshot(agent.agent_id) == before


async def test_create_stops_at_the_plans_worker_limit(api):
    user = await api.user()  # free: 2 workers in all, and registration made one
    agent = await register_agent(user, gpus=1)
    assert (await new_worker(user, agent, listen_port=9100)).status_code == 201
    before = await snapshot(agent.agent_id)
    response = await new_worker(user, agent, listen_port=9101)
    error = assert_error(response, 403, "plan_limit_exceeded")
    assert "2" in error["message"]
    assert await snapshot(agent.agent_id) == before


async def test_the_worker_limit_counts_every_agent_of_the_user(api):
    user = await api.user(plan="personal")  # 10 workers
    agents = [await register_agent(user, gpus=1, hostname=f"h{i}") for i in range(3)]
    created = 0
    for port in range(9100, 9200):
        response = await new_worker(user, agents[port % 3], listen_port=port)
        if response.status_code != 201:
            assert_error(response, 403, "plan_limit_exceeded")
            break
        created += 1
    assert created == 10 - 3
    assert await Worker.filter(agent__user_id=user.user_id).count() == 10


async def test_concurrent_creations_do_not_exceed_the_plan(api):
    user = await api.user()  # free: one slot left after registration
    agent = await register_agent(user, gpus=1)
    responses = await asyncio.gather(
        *(new_worker(user, agent, listen_port=9100 + i) for i in range(8))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [403] * 7, [r.text for r in responses]
    assert await Worker.filter(agent_id=agent.agent_id).count() == 2
    assert await config_version(agent) == 2


async def test_create_refuses_a_port_another_worker_of_the_agent_uses(api):
    user = await api.user(plan="personal")
    agent = await register_agent(user, gpus=1)
    before = await snapshot(agent.agent_id)
    error = assert_error(await new_worker(user, agent, listen_port=9001), 409, "conflict")
    assert "9001" in error["message"]
    assert await snapshot(agent.agent_id) == before
    # The same port on another agent is fine.
    other = await register_agent(user, gpus=1, hostname="h2")
    await Worker.filter(agent_id=other.agent_id).delete()
    assert (await new_worker(user, other, listen_port=9001)).status_code == 201


async def test_the_unique_index_decides_a_port_race_and_nothing_is_half_written(api, monkeypatch):
    user = await api.user(plan="personal")
    agent = await register_agent(user, gpus=1)

    async def no_check(**kwargs: Any) -> None:
        return None

    # Without the up-front check the database's unique (agent_id, listen_port) index refuses.
    monkeypatch.setattr(workers_service, "_check_port_free", no_check)
    before = await snapshot(agent.agent_id)
    assert_error(await new_worker(user, agent, listen_port=9001), 409, "conflict")
    assert await snapshot(agent.agent_id) == before  # config_version rolled back too
    created = (await new_worker(user, agent, listen_port=9100)).json()
    before = await snapshot(agent.agent_id)
    response = await user.patch(
        f"/api/v1/workers/{created['worker_id']}", json={"listen_port": 9001}
    )
    assert_error(response, 409, "conflict")
    assert await snapshot(agent.agent_id) == before


async def test_concurrent_creations_on_one_port_give_one_worker(api):
    user = await api.user(plan="personal")
    agent = await register_agent(user, gpus=1)
    responses = await asyncio.gather(
        *(new_worker(user, agent, name=f"w{i}", listen_port=9100) for i in range(6))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 5, [r.text for r in responses]
    assert await config_version(agent) == 2


# --- GET /api/v1/workers/{worker_id} -------------------------------------------------------


async def test_get_worker(api):
    user = await api.user()
    agent = await register_agent(user, gpus=2)
    created = (await new_worker(user, agent, gpu_ids=["GPU-1"])).json()
    response = await user.get(f"/api/v1/workers/{created['worker_id']}")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == WORKER_KEYS | {"connections", "live_connection_count"}
    assert body["connections"] == []
    assert body["live_connection_count"] == 0
    assert {k: v for k, v in body.items() if k not in ("connections", "live_connection_count")} == (
        created
    )


async def test_get_worker_lists_its_connections(api):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    worker_id = await default_worker_id(agent)
    connections = [
        {
            "client_ip": "10.0.0.7",
            "client_port": 50123,
            "connected_at": "2026-11-26T01:37:33.123456789+08:00",
        },
        {"client_ip": "2001:db8::7", "connected_at": "2026-11-25T17:40:00Z"},
    ]
    await report(agent, worker_id, "running", connections=connections)
    body = (await user.get(f"/api/v1/workers/{worker_id}")).json()
    assert body["status"] == "running"
    assert body["connections"] == [
        {
            "client_ip": "10.0.0.7",
            "connected_at": "2026-11-25T17:37:33.123Z",
            "client_port": 50123,
            "client_pid": None,
        },
        {
            "client_ip": "2001:db8::7",
            "connected_at": "2026-11-25T17:40:00.000Z",
            "client_port": None,
            "client_pid": None,
        },
    ]


async def test_another_users_worker_is_not_found(api):
    owner = await api.user()
    intruder = await api.user()
    agent = await register_agent(owner, gpus=1)
    worker_id = await default_worker_id(agent)
    before = await snapshot(agent.agent_id)
    assert_error(await intruder.get(f"/api/v1/workers/{worker_id}"), 404, "not_found")
    assert_error(
        await intruder.patch(f"/api/v1/workers/{worker_id}", json={"name": "mine"}),
        404,
        "not_found",
    )
    assert_error(await intruder.delete(f"/api/v1/workers/{worker_id}"), 404, "not_found")
    assert await snapshot(agent.agent_id) == before
    for method in ("get", "delete"):
        response = await getattr(owner, method)("/api/v1/workers/wkr_unknown")
        assert_error(response, 404, "not_found")


# --- PATCH /api/v1/workers/{worker_id} -----------------------------------------------------


async def test_patch_changes_each_field_and_bumps_config_version_each_time(api):
    user = await api.user()
    agent = await register_agent(user, gpus=2)
    worker_id = await default_worker_id(agent)
    url = f"/api/v1/workers/{worker_id}"
    expected = {
        "worker_id": worker_id,
        "name": "default",
        "gpu_ids": ["GPU-0", "GPU-1"],
        "listen_port": 9001,
        "enabled": True,
        "status": "pending",
        "vram_mb": None,
        "compute_percent": None,
        "isolation_mode": None,
    }
    version = await config_version(agent)
    for change in (
        {"name": "renamed"},
        {"gpu_ids": ["GPU-1"]},
        {"listen_port": 9555},
        {"enabled": False},
        {"enabled": True, "name": "both"},
        {"vram_mb": 8192},
        {"compute_percent": 50, "isolation_mode": "partitioned"},
        # null removes a limit.
        {"vram_mb": None},
    ):
        response = await user.patch(url, json=change)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == PATCH_KEYS
        expected.update(change)
        assert body == expected
        version += 1
        assert await config_version(agent) == version
    detail = (await user.get(url)).json()
    assert {k: detail[k] for k in PATCH_KEYS} == expected
    assert type(detail["listen_port"]) is int and type(detail["enabled"]) is bool


async def test_a_patch_that_changes_nothing_writes_nothing(api):
    user = await api.user()
    agent = await register_agent(user, gpus=2)
    worker_id = await default_worker_id(agent)
    before = await snapshot(agent.agent_id)
    for patch in ({}, {"name": "default", "listen_port": 9001}, {"unknown": 1}):
        response = await user.patch(f"/api/v1/workers/{worker_id}", json=patch)
        assert response.status_code == 200
        assert response.json()["name"] == "default"
    assert await snapshot(agent.agent_id) == before
    # An empty body is an empty patch.
    response = await user.patch(f"/api/v1/workers/{worker_id}")
    assert response.status_code == 200
    assert await snapshot(agent.agent_id) == before


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"name": None}, "name"),
        ({"name": ""}, "name"),
        ({"gpu_ids": None}, "gpu_ids"),
        ({"gpu_ids": []}, "gpu_ids"),
        ({"listen_port": None}, "listen_port"),
        ({"listen_port": 80}, "listen_port"),
        ({"enabled": None}, "enabled"),
        ({"enabled": 0}, "enabled"),
    ],
)
async def test_patch_validates_its_input(api, patch, field):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    worker_id = await default_worker_id(agent)
    before = await snapshot(agent.agent_id)
    response = await user.patch(f"/api/v1/workers/{worker_id}", json=patch)
    error = assert_error(response, 400, "validation_error")
    assert [d["field"] for d in error["details"]] == [field]
    assert await snapshot(agent.agent_id) == before


async def test_patch_checks_gpus_and_ports_and_leaves_nothing_half_written(api):
    user = await api.user()
    agent = await register_agent(user, gpus=2)
    worker_id = await default_worker_id(agent)
    other = (await new_worker(user, agent, listen_port=9100)).json()
    before = await snapshot(agent.agent_id)
    url = f"/api/v1/workers/{worker_id}"

    error = assert_error(
        await user.patch(url, json={"name": "x", "gpu_ids": ["GPU-0", "GPU-5"]}),
        400,
        "validation_error",
    )
    assert "GPU-5" in error["message"] and error["details"][0]["field"] == "gpu_ids"
    error = assert_error(
        await user.patch(url, json={"name": "x", "listen_port": other["listen_port"]}),
        409,
        "conflict",
    )
    assert "9100" in error["message"]
    assert await snapshot(agent.agent_id) == before


async def test_concurrent_patches_to_one_port_give_it_to_one_worker(api):
    user = await api.user(plan="personal")
    agent = await register_agent(user, gpus=1)
    ids = [(await new_worker(user, agent, listen_port=p)).json()["worker_id"] for p in (9100, 9101)]
    ids.append(await default_worker_id(agent))
    version = await config_version(agent)
    responses = await asyncio.gather(
        *(user.patch(f"/api/v1/workers/{i}", json={"listen_port": 9300}) for i in ids)
    )
    assert sorted(r.status_code for r in responses) == [200, 409, 409]
    assert await Worker.filter(agent_id=agent.agent_id, listen_port=9300).count() == 1
    assert await config_version(agent) == version + 1


async def test_disabling_a_running_worker_makes_it_stopping(api):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    worker_id = await default_worker_id(agent)
    await report(agent, worker_id, "running")
    assert (await user.get(f"/api/v1/workers/{worker_id}")).json()["status"] == "running"
    response = await user.patch(f"/api/v1/workers/{worker_id}", json={"enabled": False})
    assert response.status_code == 200
    assert response.json()["status"] == "stopping"
    assert response.json()["enabled"] is False
    assert (await user.get(f"/api/v1/workers/{worker_id}")).json()["status"] == "stopping"


@pytest.mark.parametrize("status", ["pending", "stopped", "stopping"])
async def test_disabling_a_worker_that_is_not_running_keeps_its_status(api, status):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    worker_id = await default_worker_id(agent)
    if status != "pending":
        await report(agent, worker_id, status)
    response = await user.patch(f"/api/v1/workers/{worker_id}", json={"enabled": False})
    assert response.json()["status"] == status


async def test_renaming_a_running_worker_keeps_it_running(api):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    worker_id = await default_worker_id(agent)
    await report(agent, worker_id, "running")
    response = await user.patch(f"/api/v1/workers/{worker_id}", json={"name": "x", "enabled": True})
    assert response.json()["status"] == "running"


async def test_the_agents_config_follows_every_change(api):
    user = await api.user()
    agent = await register_agent(user, gpus=2)
    start = await agent_config(agent)
    assert start["config_version"] == 1
    [default] = start["workers"]
    created = (await new_worker(user, agent, gpu_ids=["GPU-1"], enabled=False)).json()
    config = await agent_config(agent)
    assert config["config_version"] == 2
    assert {
        "worker_id": created["worker_id"],
        "gpu_ids": ["GPU-1"],
        "listen_port": 9100,
        "enabled": False,
        "share_codes": [],
    } in config["workers"]
    await user.patch(f"/api/v1/workers/{created['worker_id']}", json={"enabled": True})
    config = await agent_config(agent)
    assert config["config_version"] == 3
    assert [w["enabled"] for w in config["workers"] if w["worker_id"] == created["worker_id"]] == [
        True
    ]
    await user.delete(f"/api/v1/workers/{created['worker_id']}")
    config = await agent_config(agent)
    assert config["config_version"] == 4
    assert [w["worker_id"] for w in config["workers"]] == [default["worker_id"]]


# --- DELETE /api/v1/workers/{worker_id} ----------------------------------------------------


async def test_delete_worker_removes_it_and_its_shares(api):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    created = (await new_worker(user, agent)).json()
    share = await user.post(
        "/api/v1/shares", json={"worker_id": created["worker_id"], "connection_ip": "10.0.0.1"}
    )
    assert share.status_code == 201
    version = await config_version(agent)
    response = await user.delete(f"/api/v1/workers/{created['worker_id']}")
    assert response.status_code == 200
    assert response.json() == {"success": True}
    assert await config_version(agent) == version + 1
    assert_error(await user.get(f"/api/v1/workers/{created['worker_id']}"), 404, "not_found")
    assert await Share.filter(worker_id=created["worker_id"]).count() == 0
    assert (await user.get("/api/v1/shares")).json() == {"shares": []}
    assert_error(await user.delete(f"/api/v1/workers/{created['worker_id']}"), 404, "not_found")
    assert await config_version(agent) == version + 1


async def test_the_default_worker_can_be_deleted_and_its_port_reused(api):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    worker_id = await default_worker_id(agent)
    assert (await user.delete(f"/api/v1/workers/{worker_id}")).json() == {"success": True}
    assert (await user.get("/api/v1/workers")).json() == {"workers": []}
    # It frees a plan slot and its port.
    assert (await new_worker(user, agent, listen_port=9001)).status_code == 201
    assert (await new_worker(user, agent, listen_port=9002)).status_code == 201


# --- events --------------------------------------------------------------------------------

WORKER_EVENTS = {
    EventKind.WORKER_CREATED,
    EventKind.WORKER_UPDATED,
    EventKind.WORKER_DELETED,
    EventKind.CONFIG_CHANGED,
}


async def test_each_change_is_published_after_commit_and_refusals_are_not(api, app):
    user = await api.user(plan="personal")
    agent = await register_agent(user, gpus=1)

    async def next_event(subscription) -> tuple[str, str | None, str | None]:
        while True:
            event = await asyncio.wait_for(subscription.get(), timeout=5)
            if event.kind in WORKER_EVENTS:
                return event.kind, event.agent_id, event.resource_id

    async with app.state.ctx.events.subscribe(user_id=user.user_id) as events:
        assert (await new_worker(user, agent, listen_port=9001)).status_code == 409
        worker_id = (await new_worker(user, agent)).json()["worker_id"]
        url = f"/api/v1/workers/{worker_id}"
        assert (await user.patch(url, json={"name": "renamed"})).status_code == 200
        assert (await user.patch(url, json={"name": "renamed"})).status_code == 200  # no change
        assert (await user.delete(url)).status_code == 200
        received = [await next_event(events) for _ in range(6)]
    config = (EventKind.CONFIG_CHANGED, agent.agent_id, None)
    assert received == [
        (EventKind.WORKER_CREATED, agent.agent_id, worker_id),
        config,
        (EventKind.WORKER_UPDATED, agent.agent_id, worker_id),
        config,
        (EventKind.WORKER_DELETED, agent.agent_id, worker_id),
        config,
    ]


async def test_limits_reach_the_agents_config_and_bad_ones_are_refused(api):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    worker_id = await default_worker_id(agent)
    url = f"/api/v1/workers/{worker_id}"
    for bad, field in (
        ({"vram_mb": 0}, "vram_mb"),
        ({"vram_mb": 1.5}, "vram_mb"),
        ({"compute_percent": 0}, "compute_percent"),
        ({"compute_percent": 101}, "compute_percent"),
        ({"isolation_mode": "strict"}, "isolation_mode"),
    ):
        error = assert_error(await user.patch(url, json=bad), 400, "validation_error")
        assert [d["field"] for d in error["details"]] == [field]
    limits = {"vram_mb": 12288, "compute_percent": 40, "isolation_mode": "soft"}
    assert (await user.patch(url, json=limits)).status_code == 200
    [config] = (await agent.config()).json()["workers"]
    assert {k: config[k] for k in limits} == limits
    # Removed, they leave the agent's config (its omitempty).
    cleared = {"vram_mb": None, "compute_percent": None, "isolation_mode": None}
    assert (await user.patch(url, json=cleared)).status_code == 200
    [config] = (await agent.config()).json()["workers"]
    assert not set(limits) & set(config)
    # On create too.
    second = await user.post(
        "/api/v1/workers",
        json={
            "agent_id": agent.agent_id,
            "name": "capped",
            "gpu_ids": ["GPU-0"],
            "listen_port": 9100,
            **limits,
        },
    )
    assert second.status_code == 201, second.text
    assert {k: second.json()[k] for k in limits} == limits
