"""Agents over GraphQL: list, detail, status, delete, through the agents service."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gpugo import clock
from gpugo.models import Agent, Gpu, Share, Worker, WorkerConnection
from tests.schema.support import Gql, data, error, post
from tests.support import ISO_MS, register_agent

AGENT_FIELDS = """id hostname os arch status statusReason lastSeenAt createdAt networkIps
  configVersion fetchedConfigVersion configFetchedAt gpuCount
  gpus { gpuId gpuIndex vendor model vramMb driverVersion cudaVersion usedByWorker }
  workers { id agentId name gpuIds listenPort enabled status isDefault pid restarts createdAt
    connections { clientIp clientPort clientPid connectedAt } }"""
AGENTS = f"""query($first: Int! = 100, $after: String) {{
  agents(first: $first, after: $after) {{
    totalCount pageInfo {{ hasNextPage endCursor }} edges {{ cursor node {{ {AGENT_FIELDS} }} }}
  }}
}}"""
AGENT = f"query($id: ID!) {{ agent(id: $id) {{ {AGENT_FIELDS} }} }}"
DELETE = "mutation($id: ID!) { deleteAgent(id: $id) }"


async def test_list_and_detail_agree(gql_user):
    gql = await gql_user()
    agent = await register_agent(gql.user, gpus=2, hostname="box-1")
    page = (await gql.data(AGENTS))["agents"]
    assert page["totalCount"] == 1
    listed = page["edges"][0]["node"]
    detail = (await gql.data(AGENT, {"id": agent.agent_id}))["agent"]
    assert listed == detail
    assert detail["id"] == agent.agent_id
    assert (detail["hostname"], detail["os"], detail["arch"]) == ("box-1", "linux", "amd64")
    assert (detail["status"], detail["lastSeenAt"]) == ("PENDING", None)
    assert detail["statusReason"]
    assert detail["networkIps"] == ["192.168.1.20"]
    assert (detail["configVersion"], detail["fetchedConfigVersion"]) == (1, None)
    assert detail["gpuCount"] == 2
    assert [g["gpuId"] for g in detail["gpus"]] == ["GPU-0", "GPU-1"]
    assert detail["gpus"][0]["vramMb"] == 24564
    worker = detail["workers"][0]
    assert (worker["name"], worker["isDefault"], worker["listenPort"]) == ("default", True, 9001)
    assert worker["agentId"] == agent.agent_id
    assert ISO_MS.match(worker["createdAt"]) and ISO_MS.match(detail["createdAt"])
    assert worker["connections"] == []


async def test_list_matches_rest_newest_first_and_pages(gql_user):
    gql = await gql_user(plan="team")
    for i in range(3):
        await register_agent(gql.user, gpus=1, hostname=f"h{i}")
        clock.advance(timedelta(milliseconds=5))
    first = (await gql.data(AGENTS, {"first": 2}))["agents"]
    rest_of = (await gql.data(AGENTS, {"first": 2, "after": first["pageInfo"]["endCursor"]}))[
        "agents"
    ]
    got = [e["node"]["hostname"] for e in first["edges"] + rest_of["edges"]]
    assert got == ["h2", "h1", "h0"]
    assert (first["pageInfo"]["hasNextPage"], rest_of["pageInfo"]["hasNextPage"]) == (True, False)
    rest = await gql.user.get("/api/v1/agents")
    if rest.status_code == 200:
        assert got == [a["hostname"] for a in rest.json()["agents"]]


async def test_status_follows_the_last_report(gql_user):
    gql = await gql_user()
    agent = await register_agent(gql.user)
    query = "query($id: ID!) { agent(id: $id) { status statusReason lastSeenAt } }"
    await Agent.filter(id=agent.agent_id).update(last_seen_at=clock.now())
    got = (await gql.data(query, {"id": agent.agent_id}))["agent"]
    assert got["status"] == "ONLINE" and ISO_MS.match(got["lastSeenAt"])
    clock.advance(timedelta(minutes=3, seconds=1))
    got = (await gql.data(query, {"id": agent.agent_id}))["agent"]
    assert got["status"] == "OFFLINE"
    assert "3 minutes" in got["statusReason"]
    listed = (await gql.data("{ agents { edges { node { status } } } }"))["agents"]
    assert listed["edges"][0]["node"]["status"] == "OFFLINE"


async def test_detail_shows_connections_and_gpu_use(gql_user):
    gql = await gql_user()
    agent = await register_agent(gql.user, gpus=2)
    worker = await Worker.get(agent_id=agent.agent_id)
    await Gpu.filter(agent_id=agent.agent_id, gpu_id="GPU-1").update(used_by_worker_id=worker.id)
    await Worker.filter(id=worker.id).update(status="running", pid=4242, restarts=1)
    await WorkerConnection.create(
        worker_id=worker.id,
        client_ip="10.1.1.1",
        client_port=40000,
        client_pid=77,
        connected_at=datetime(2026, 11, 25, 8, tzinfo=UTC),
    )
    for query in (AGENT, AGENTS):
        result = await gql.data(query, {"id": agent.agent_id} if query is AGENT else None)
        node = result["agent"] if query is AGENT else result["agents"]["edges"][0]["node"]
        assert [g["usedByWorker"] for g in node["gpus"]] == [None, worker.id]
        got = node["workers"][0]
        assert (got["status"], got["pid"], got["restarts"]) == ("RUNNING", 4242, 1)
        assert got["connections"] == [
            {
                "clientIp": "10.1.1.1",
                "clientPort": 40000,
                "clientPid": 77,
                "connectedAt": "2026-11-25T08:00:00.000Z",
            }
        ]


async def test_config_version_follows_worker_changes(gql_user):
    gql = await gql_user()
    agent = await register_agent(gql.user)
    worker = await Worker.get(agent_id=agent.agent_id)
    data(
        await gql(
            'mutation($id: ID!) { updateWorker(id: $id, input: {name: "x"}) { id } }',
            {"id": worker.id},
        )
    )
    got = await gql.data(
        "query($id: ID!) { agent(id: $id) { configVersion } }", {"id": agent.agent_id}
    )
    assert got["agent"]["configVersion"] == 2


async def test_delete_agent_cascades(gql_user):
    gql = await gql_user()
    agent = await register_agent(gql.user)
    worker = await Worker.get(agent_id=agent.agent_id)
    share = (
        'mutation($w: ID!) { createShare(input: {workerId: $w, connectionIp: "1.2.3.4"}) { id } }'
    )
    data(await gql(share, {"w": worker.id}))
    assert await gql.data(DELETE, {"id": agent.agent_id}) == {"deleteAgent": True}
    assert not await Agent.exists(id=agent.agent_id)
    assert not await Gpu.exists(agent_id=agent.agent_id)
    assert not await Worker.exists(agent_id=agent.agent_id)
    assert not await Share.exists()
    error(await gql(DELETE, {"id": agent.agent_id}), "not_found")
    # The agent's secret died with it.
    assert (await agent.config()).status_code == 401


async def test_another_users_agent_is_not_found_and_kept(gql_user):
    owner = await gql_user()
    other = await gql_user()
    agent = await register_agent(owner.user)
    response = await other(AGENT, {"id": agent.agent_id})
    error(response, "not_found")
    assert response.json()["data"] == {"agent": None}
    error(await other(DELETE, {"id": agent.agent_id}), "not_found")
    assert await Agent.exists(id=agent.agent_id)
    assert (await other.data(AGENTS))["agents"]["totalCount"] == 0


async def test_agents_need_a_user(client):
    error(await post(client, AGENTS), "unauthorized")
    error(await post(client, DELETE, {"id": "agt_x"}), "unauthorized")


async def test_an_agent_secret_cannot_delete_through_graphql(api, client):
    user = await api.user()
    agent = await register_agent(user)
    response = await post(client, DELETE, {"id": agent.agent_id}, headers=agent.auth)
    error(response, "unauthorized")
    assert await Agent.exists(id=agent.agent_id)


async def test_workers_agent_field_resolves(api):
    user = await api.user()
    agent = await register_agent(user)
    result = await Gql(user).data(
        "{ workers { edges { node { agent { id gpuCount networkIps status } } } } }"
    )
    node = result["workers"]["edges"][0]["node"]
    assert node["agent"] == {
        "id": agent.agent_id,
        "gpuCount": 2,
        "networkIps": ["192.168.1.20"],
        "status": "PENDING",
    }
