"""Workers over GraphQL: the same services, inputs and refusals as /api/v1/workers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from gpugo.models import Agent, Share, Worker, WorkerConnection
from tests.schema.support import data, error, post
from tests.support import BAD_GPU_IDS, ISO_MS, register_agent

FIELDS = "id agentId name gpuIds listenPort enabled status isDefault createdAt"
WORKERS = f"""query($agentId: ID, $hostname: String, $first: Int! = 100, $after: String) {{
  workers(agentId: $agentId, hostname: $hostname, first: $first, after: $after) {{
    totalCount pageInfo {{ hasNextPage endCursor }}
    edges {{ cursor node {{ {FIELDS} }} }}
  }}
}}"""
WORKER = f"""query($id: ID!) {{
  worker(id: $id) {{ {FIELDS} connections {{ clientIp clientPort connectedAt }}
    agent {{ id hostname }} }}
}}"""
CREATE = (
    f"""mutation($input: CreateWorkerInput!) {{ createWorker(input: $input) {{ {FIELDS} }} }}"""
)
UPDATE = f"""mutation($id: ID!, $input: UpdateWorkerInput!) {{
  updateWorker(id: $id, input: $input) {{ {FIELDS} }}
}}"""
DELETE = "mutation($id: ID!) { deleteWorker(id: $id) }"


async def snapshot(agent_id: str) -> tuple[list[dict], int]:
    rows = await Worker.filter(agent_id=agent_id).order_by("id").values()
    return rows, (await Agent.get(id=agent_id)).config_version


def new_input(agent_id: str, **fields: Any) -> dict[str, Any]:
    return {"agentId": agent_id, "name": "w", "gpuIds": ["GPU-0"], "listenPort": 9100, **fields}


async def test_list_shows_the_default_worker(gql_user):
    gql = await gql_user()
    agent = await register_agent(gql.user, gpus=2)
    page = (await gql.data(WORKERS))["workers"]
    assert page["totalCount"] == 1
    assert page["pageInfo"]["hasNextPage"] is False
    node = page["edges"][0]["node"]
    assert node["agentId"] == agent.agent_id
    assert (node["name"], node["gpuIds"], node["listenPort"]) == (
        "default",
        ["GPU-0", "GPU-1"],
        9001,
    )
    assert (node["enabled"], node["status"], node["isDefault"]) == (True, "PENDING", True)
    assert ISO_MS.match(node["createdAt"])
    assert page["pageInfo"]["endCursor"] == page["edges"][0]["cursor"]


async def test_list_filters_and_pages(gql_user):
    gql = await gql_user(plan="team")
    first = await register_agent(gql.user, hostname="a")
    second = await register_agent(gql.user, hostname="b")
    for port in (9100, 9101, 9102):
        data(await gql(CREATE, {"input": new_input(second.agent_id, listenPort=port)}))
    by_agent = (await gql.data(WORKERS, {"agentId": first.agent_id}))["workers"]
    assert [e["node"]["agentId"] for e in by_agent["edges"]] == [first.agent_id]
    by_host = (await gql.data(WORKERS, {"hostname": "b"}))["workers"]
    assert by_host["totalCount"] == 4
    both = await gql.data(WORKERS, {"hostname": "a", "agentId": second.agent_id})
    assert both["workers"]["edges"] == []

    seen, after = [], None
    while True:
        page = (await gql.data(WORKERS, {"first": 2, "after": after}))["workers"]
        seen += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    rest = (await gql.user.get("/api/v1/workers")).json()["workers"]
    assert seen == [w["worker_id"] for w in rest]


@pytest.mark.parametrize("first", [0, -1, 101])
async def test_page_size_is_bounded(gql_user, first):
    gql = await gql_user()
    err = error(await gql(WORKERS, {"first": first}), "validation_error")
    assert err["extensions"]["details"] == [
        {"field": "first", "message": "Must be between 1 and 100."}
    ]


async def test_a_bad_cursor_is_a_validation_error(gql_user):
    gql = await gql_user()
    err = error(await gql(WORKERS, {"after": "not-a-cursor"}), "validation_error")
    assert err["extensions"]["details"][0]["field"] == "after"


async def test_list_filters_are_validated_like_rest(gql_user):
    gql = await gql_user()
    err = error(await gql(WORKERS, {"agentId": "x" * 65}), "validation_error")
    assert err["extensions"]["details"][0]["field"] == "agentId"


async def test_list_shows_only_the_callers_workers(gql_user):
    owner = await gql_user()
    other = await gql_user()
    agent = await register_agent(owner.user)
    page = (await other.data(WORKERS, {"agentId": agent.agent_id}))["workers"]
    assert page == {
        "totalCount": 0,
        "pageInfo": {"hasNextPage": False, "endCursor": None},
        "edges": [],
    }


async def test_create_update_delete(gql_user):
    gql = await gql_user()
    agent = await register_agent(gql.user, gpus=2)
    _, version = await snapshot(agent.agent_id)
    created = (await gql.data(CREATE, {"input": new_input(agent.agent_id, enabled=False)}))[
        "createWorker"
    ]
    assert (created["name"], created["status"], created["enabled"]) == ("w", "PENDING", False)
    assert created["isDefault"] is False
    assert (await snapshot(agent.agent_id))[1] == version + 1

    patch = {"name": "renamed", "gpuIds": ["GPU-1", "GPU-0"], "listenPort": 9200, "enabled": True}
    updated = (await gql.data(UPDATE, {"id": created["id"], "input": patch}))["updateWorker"]
    assert (updated["name"], updated["gpuIds"], updated["listenPort"], updated["enabled"]) == (
        "renamed",
        ["GPU-1", "GPU-0"],
        9200,
        True,
    )
    assert (await snapshot(agent.agent_id))[1] == version + 2

    # A partial patch changes only what it names.
    updated = (await gql.data(UPDATE, {"id": created["id"], "input": {"name": "again"}}))[
        "updateWorker"
    ]
    assert (updated["name"], updated["listenPort"]) == ("again", 9200)

    got = (await gql.data(WORKER, {"id": created["id"]}))["worker"]
    assert got["agent"] == {"id": agent.agent_id, "hostname": "gpu-host-1"}
    assert got["connections"] == []

    assert await gql.data(DELETE, {"id": created["id"]}) == {"deleteWorker": True}
    assert not await Worker.exists(id=created["id"])
    assert (await snapshot(agent.agent_id))[1] == version + 4


@pytest.mark.parametrize("gpu_id", BAD_GPU_IDS)
async def test_create_and_update_refuse_gpu_ids_outside_the_rule(gql_user, gpu_id):
    gql = await gql_user()
    agent = await register_agent(gql.user, gpus=1)
    (worker_id,) = await Worker.filter(agent_id=agent.agent_id).values_list("id", flat=True)
    before = await snapshot(agent.agent_id)
    gpu_ids = ["GPU-0", gpu_id]
    for response in (
        await gql(CREATE, {"input": new_input(agent.agent_id, gpuIds=gpu_ids)}),
        await gql(UPDATE, {"id": worker_id, "input": {"gpuIds": gpu_ids}}),
    ):
        err = error(response, "validation_error")
        assert [d["field"] for d in err["extensions"]["details"]] == ["gpuIds[1]"]
    assert await snapshot(agent.agent_id) == before


async def test_disabling_a_running_worker_makes_it_stopping(gql_user):
    gql = await gql_user()
    agent = await register_agent(gql.user)
    worker = await Worker.get(agent_id=agent.agent_id)
    await Worker.filter(id=worker.id).update(status="running")
    updated = (await gql.data(UPDATE, {"id": worker.id, "input": {"enabled": False}}))[
        "updateWorker"
    ]
    assert updated["status"] == "STOPPING"


async def test_worker_shows_its_connections(gql_user):
    gql = await gql_user()
    agent = await register_agent(gql.user)
    worker = await Worker.get(agent_id=agent.agent_id)
    # As a status report leaves them (tests/rest covers the report itself).
    await WorkerConnection.create(
        worker_id=worker.id,
        client_ip="10.0.0.9",
        client_port=5555,
        connected_at=datetime(2026, 11, 25, 9, tzinfo=UTC),
    )
    await WorkerConnection.create(
        worker_id=worker.id,
        client_ip="10.0.0.8",
        connected_at=datetime(2026, 11, 25, 8, tzinfo=UTC),
    )
    got = (await gql.data(WORKER, {"id": worker.id}))["worker"]
    assert got["connections"] == [
        {"clientIp": "10.0.0.8", "clientPort": None, "connectedAt": "2026-11-25T08:00:00.000Z"},
        {"clientIp": "10.0.0.9", "clientPort": 5555, "connectedAt": "2026-11-25T09:00:00.000Z"},
    ]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"gpuIds": []}, "gpuIds"),
        ({"gpuIds": ["GPU-0", "GPU-0"]}, "gpuIds"),
        ({"listenPort": 1023}, "listenPort"),
        ({"listenPort": 65536}, "listenPort"),
    ],
)
async def test_create_validates_like_rest(gql_user, change, field):
    gql = await gql_user()
    agent = await register_agent(gql.user)
    before = await snapshot(agent.agent_id)
    err = error(
        await gql(CREATE, {"input": new_input(agent.agent_id, **change)}), "validation_error"
    )
    assert err["path"] == ["createWorker"]
    assert err["extensions"]["details"][0]["field"] == field
    rest_body = {
        "agent_id": agent.agent_id,
        "name": change.get("name", "w"),
        "gpu_ids": change.get("gpuIds", ["GPU-0"]),
        "listen_port": change.get("listenPort", 9100),
    }
    rest = (await gql.user.post("/api/v1/workers", json=rest_body)).json()["error"]
    assert [d["message"] for d in err["extensions"]["details"]] == [
        d["message"] for d in rest["details"]
    ]
    assert await snapshot(agent.agent_id) == before


@pytest.mark.parametrize(
    ("patch", "field"),
    [({"name": None}, "name"), ({"listenPort": None}, "listenPort"), ({"gpuIds": None}, "gpuIds")],
)
async def test_update_refuses_explicit_nulls(gql_user, patch, field):
    gql = await gql_user()
    agent = await register_agent(gql.user)
    worker = await Worker.get(agent_id=agent.agent_id)
    before = await snapshot(agent.agent_id)
    err = error(await gql(UPDATE, {"id": worker.id, "input": patch}), "validation_error")
    assert err["extensions"]["details"][0]["field"] == field
    assert await snapshot(agent.agent_id) == before


async def test_create_refusals_use_the_contract_codes(gql_user):
    gql = await gql_user()
    agent = await register_agent(gql.user)
    before = await snapshot(agent.agent_id)
    err = error(
        await gql(CREATE, {"input": new_input(agent.agent_id, gpuIds=["GPU-7"])}),
        "validation_error",
    )
    assert err["extensions"]["details"] == [
        {"field": "gpuIds", "message": "GPU-7 is not a GPU of this agent."}
    ]
    error(await gql(CREATE, {"input": new_input(agent.agent_id, listenPort=9001)}), "conflict")
    data(await gql(CREATE, {"input": new_input(agent.agent_id)}))
    before = await snapshot(agent.agent_id)
    # Free plan: two workers.
    error(
        await gql(CREATE, {"input": new_input(agent.agent_id, listenPort=9300)}),
        "plan_limit_exceeded",
    )
    assert await snapshot(agent.agent_id) == before


async def test_another_users_worker_is_not_found_and_unchanged(gql_user):
    owner = await gql_user()
    other = await gql_user()
    agent = await register_agent(owner.user)
    worker = await Worker.get(agent_id=agent.agent_id)
    before = await snapshot(agent.agent_id)
    for query, variables in (
        (WORKER, {"id": worker.id}),
        (UPDATE, {"id": worker.id, "input": {"name": "mine"}}),
        (DELETE, {"id": worker.id}),
        (CREATE, {"input": new_input(agent.agent_id, listenPort=9500)}),
    ):
        error(await other(query, variables), "not_found")
    assert await snapshot(agent.agent_id) == before


async def test_deleting_a_worker_deletes_its_shares(gql_user):
    gql = await gql_user()
    agent = await register_agent(gql.user)
    worker = await Worker.get(agent_id=agent.agent_id)
    share = await gql.data(
        'mutation($w: ID!) { createShare(input: {workerId: $w, connectionIp: "1.2.3.4"}) { id } }',
        {"w": worker.id},
    )
    assert await Share.exists(id=share["createShare"]["id"])
    data(await gql(DELETE, {"id": worker.id}))
    assert not await Share.exists(id=share["createShare"]["id"])


async def test_mutations_need_a_user(client):
    for query, variables in (
        (CREATE, {"input": new_input("agt_x")}),
        (UPDATE, {"id": "wkr_x", "input": {"name": "a"}}),
        (DELETE, {"id": "wkr_x"}),
        (WORKERS, None),
    ):
        error(await post(client, query, variables), "unauthorized")


async def test_limits_are_set_read_and_removed_like_over_rest(gql_user):
    gql = await gql_user()
    agent = await register_agent(gql.user, gpus=1)
    limits = "vramMb computePercent isolationMode"
    create = f"""mutation($input: CreateWorkerInput!) {{
      createWorker(input: $input) {{ id {limits} }} }}"""
    created = (
        await gql.data(
            create,
            {
                "input": new_input(
                    agent.agent_id, vramMb=4096, computePercent=25, isolationMode="soft"
                )
            },
        )
    )["createWorker"]
    assert (created["vramMb"], created["computePercent"], created["isolationMode"]) == (
        4096,
        25,
        "soft",
    )
    update = f"""mutation($id: ID!, $input: UpdateWorkerInput!) {{
      updateWorker(id: $id, input: $input) {{ {limits} }} }}"""
    refused = await gql(update, {"id": created["id"], "input": {"computePercent": 0}})
    error(refused, "validation_error")
    cleared = (await gql.data(update, {"id": created["id"], "input": {"vramMb": None}}))[
        "updateWorker"
    ]
    assert cleared == {"vramMb": None, "computePercent": 25, "isolationMode": "soft"}
    [_, config] = (await agent.config()).json()["workers"]
    assert (config["compute_percent"], config["isolation_mode"]) == (25, "soft")
    assert "vram_mb" not in config
