"""The dashboard's query costs the same number of SQL statements for 1 agent as for 200."""

from __future__ import annotations

from datetime import timedelta

from gpugo import clock
from gpugo.auth.tokens import TokenKind, hash_token, new_token
from gpugo.models import Agent, Gpu, Worker, WorkerConnection
from tests.schema.support import Gql
from tests.sql_counter import count_sql

DASHBOARD = """query($after: String) {
  me { id email plan }
  agents(first: 100, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node {
      id hostname os arch status statusReason lastSeenAt createdAt networkIps
      configVersion fetchedConfigVersion configFetchedAt gpuCount
      gpus { gpuId vendor model vramMb usedByWorker }
      workers { id name gpuIds listenPort enabled status isDefault pid restarts createdAt
        connections { clientIp clientPort connectedAt } }
    } }
  }
}"""


async def seed(user_id: str, count: int) -> None:
    """``count`` agents with 2 GPUs, 2 workers and 2 connections per worker (bulk, fast)."""
    now = clock.now()
    agents = [
        Agent(
            user_id=user_id,
            secret_hash=hash_token(new_token(TokenKind.AGENT)),
            hostname=f"host-{i:03d}",
            os="linux",
            arch="amd64",
            network_ips=["10.0.0.1"],
            last_seen_at=now if i % 2 else None,
            created_at=now + timedelta(microseconds=i),
            updated_at=now,
        )
        for i in range(count)
    ]
    await Agent.bulk_create(agents)
    workers = [
        Worker(
            agent_id=agent.id,
            name=f"w{j}",
            gpu_ids=[f"GPU-{j}"],
            listen_port=9001 + j,
            is_default=j == 0,
            status="running",
            created_at=now,
            updated_at=now,
        )
        for agent in agents
        for j in range(2)
    ]
    await Worker.bulk_create(workers)
    await Gpu.bulk_create(
        [
            Gpu(
                agent_id=agent.id,
                gpu_id=f"GPU-{j}",
                gpu_index=j,
                vendor="nvidia",
                model="RTX 4090",
                vram_mb=24564,
                used_by_worker_id=workers[2 * i + j].id,
            )
            for i, agent in enumerate(agents)
            for j in range(2)
        ]
    )
    await WorkerConnection.bulk_create(
        [
            WorkerConnection(worker_id=worker.id, client_ip=f"192.0.2.{k}", connected_at=now)
            for worker in workers
            for k in range(2)
        ]
    )


async def _statements(gql: Gql, after: str | None = None) -> tuple[int, dict]:
    with count_sql() as sql:
        result = await gql.data(DASHBOARD, {"after": after})
    return len(sql), result


async def test_dashboard_statements_do_not_grow_with_agents(api):
    one = Gql(await api.user())
    many = Gql(await api.user())
    await seed(one.user.user_id, 1)
    await seed(many.user.user_id, 200)

    single, result = await _statements(one)
    assert result["agents"]["totalCount"] == 1
    node = result["agents"]["edges"][0]["node"]
    assert len(node["gpus"]) == 2 and len(node["workers"]) == 2
    assert all(len(w["connections"]) == 2 for w in node["workers"])

    first_page, result = await _statements(many)
    assert result["agents"]["totalCount"] == 200
    assert len(result["agents"]["edges"]) == 100
    assert all(len(e["node"]["workers"]) == 2 for e in result["agents"]["edges"])
    second_page, result = await _statements(many, result["agents"]["pageInfo"]["endCursor"])
    assert len(result["agents"]["edges"]) == 100
    assert result["agents"]["pageInfo"]["hasNextPage"] is False

    # session, me, and the page of agents with their GPUs, workers and connections
    assert single == first_page == second_page == 3, (single, first_page, second_page)
