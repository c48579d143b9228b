"""GraphQL says what REST says of an offline agent's workers and GPUs."""

from __future__ import annotations

from datetime import timedelta

from gpugo import clock
from tests.support import go_time, moment, register_agent

PRESENCE = "agentOnline lastKnownAt"
QUERY = f"""query($id: ID!, $worker: ID!) {{
  agent(id: $id) {{
    lastSeenAt
    gpus {{ gpuId usedByWorker {PRESENCE} }}
    workers {{ id status {PRESENCE} liveConnectionCount connections {{ clientIp }} }}
  }}
  worker(id: $worker) {{ {PRESENCE} liveConnectionCount }}
  workers {{ edges {{ node {{ {PRESENCE} liveConnectionCount }} }} }}
  agents {{ edges {{ node {{
    gpus {{ {PRESENCE} }} workers {{ {PRESENCE} liveConnectionCount }}
  }} }} }}
}}"""


async def test_worker_and_gpu_presence(api, gql_user):
    gql = await gql_user()
    agent = await register_agent(gql.user, gpus=1)
    detail = (await gql.user.get(f"/api/v1/agents/{agent.agent_id}")).json()
    worker_id = detail["workers"][0]["worker_id"]
    response = await agent.report(
        {
            "timestamp": go_time(moment()),
            "gpus": [{"gpu_id": "GPU-0", "used_by_worker": worker_id}],
            "workers": [
                {
                    "worker_id": worker_id,
                    "status": "running",
                    "gpu_ids": ["GPU-0"],
                    "connections": [{"client_ip": "10.0.0.9", "connected_at": go_time(moment())}],
                }
            ],
        }
    )
    assert response.status_code == 200
    variables = {"id": agent.agent_id, "worker": worker_id}

    data = await gql.data(QUERY, variables)
    current = {"agentOnline": True, "lastKnownAt": None}
    assert data["agent"]["gpus"] == [{"gpuId": "GPU-0", "usedByWorker": worker_id, **current}]
    [worker] = data["agent"]["workers"]
    assert (worker["status"], worker["agentOnline"], worker["lastKnownAt"]) == (
        "RUNNING",
        True,
        None,
    )
    assert worker["liveConnectionCount"] == 1
    assert data["worker"] == {**current, "liveConnectionCount": 1}
    assert data["workers"]["edges"][0]["node"] == {**current, "liveConnectionCount": 1}
    node = data["agents"]["edges"][0]["node"]
    assert node["gpus"] == [current]
    assert node["workers"] == [{**current, "liveConnectionCount": 1}]

    clock.advance(timedelta(seconds=api.app.state.ctx.settings.agent_offline_seconds + 1))
    data = await gql.data(QUERY, variables)
    seen = data["agent"]["lastSeenAt"]
    known = {"agentOnline": False, "lastKnownAt": seen}
    assert data["agent"]["gpus"] == [{"gpuId": "GPU-0", "usedByWorker": worker_id, **known}]
    [worker] = data["agent"]["workers"]
    assert worker["status"] == "RUNNING"
    assert (worker["agentOnline"], worker["lastKnownAt"]) == (False, seen)
    assert worker["connections"] == [{"clientIp": "10.0.0.9"}]
    assert worker["liveConnectionCount"] == 0
    assert data["worker"] == {**known, "liveConnectionCount": 0}
    assert data["workers"]["edges"][0]["node"] == {**known, "liveConnectionCount": 0}
    node = data["agents"]["edges"][0]["node"]
    assert node["gpus"] == [known]
    assert node["workers"] == [{**known, "liveConnectionCount": 0}]


async def test_a_share_worker_loads_its_agent_presence(api, gql_user):
    gql = await gql_user(plan="pro")
    agent = await register_agent(gql.user, gpus=1)
    worker_id = (await gql.user.get("/api/v1/workers")).json()["workers"][0]["worker_id"]
    response = await gql.user.post(
        "/api/v1/shares", json={"worker_id": worker_id, "connection_ip": "10.0.0.1"}
    )
    assert response.status_code == 201, response.text
    query = f"{{ shares {{ edges {{ node {{ worker {{ {PRESENCE} liveConnectionCount }} }} }} }} }}"
    data = await gql.data(query)
    assert data["shares"]["edges"][0]["node"]["worker"] == {
        "agentOnline": False,
        "lastKnownAt": None,
        "liveConnectionCount": 0,
    }
    assert agent.agent_id
