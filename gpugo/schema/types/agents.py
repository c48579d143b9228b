from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry

from gpugo.context import ServerContext
from gpugo.schema.context import GraphQLInfo
from gpugo.schema.loaders import Row
from gpugo.services.agents import agent_state

if TYPE_CHECKING:
    from gpugo.schema.types.workers import Worker

_WORKERS = "gpugo.schema.types.workers"


@strawberry.enum
class AgentStatus(Enum):
    PENDING = "pending"
    ONLINE = "online"
    OFFLINE = "offline"


@strawberry.type(description="A GPU of an agent.")
class Gpu:
    gpu_id: str = strawberry.field(description="The agent's own name for it, e.g. GPU-0.")
    gpu_index: int | None
    vendor: str
    model: str
    vram_mb: int
    driver_version: str | None
    cuda_version: str | None
    used_by_worker: strawberry.ID | None = strawberry.field(
        description="Id of the worker the agent last reported using this GPU."
    )


def gpu_node(row: Row) -> Gpu:
    worker_id = row["used_by_worker_id"]
    return Gpu(
        gpu_id=row["gpu_id"],
        gpu_index=row["gpu_index"],
        vendor=row["vendor"],
        model=row["model"],
        vram_mb=row["vram_mb"],
        driver_version=row["driver_version"],
        cuda_version=row["cuda_version"],
        used_by_worker=strawberry.ID(worker_id) if worker_id else None,
    )


@strawberry.type(description="A GPU host running the GPU Go agent.")
class Agent:
    id: strawberry.ID
    hostname: str
    os: str
    arch: str
    status: AgentStatus
    status_reason: str = strawberry.field(description="Why the status is what it is.")
    network_ips: list[str]
    config_version: int = strawberry.field(
        description="Desired configuration; increments on every worker change."
    )
    fetched_config_version: int | None = strawberry.field(
        description="The configuration version the agent last fetched (null: never)."
    )
    config_fetched_at: datetime | None
    last_seen_at: datetime | None
    created_at: datetime

    @strawberry.field
    async def gpu_count(self, info: GraphQLInfo) -> int:
        return len(await info.context.loaders.gpus_by_agent.load(self.id))

    @strawberry.field
    async def gpus(self, info: GraphQLInfo) -> list[Gpu]:
        return [gpu_node(row) for row in await info.context.loaders.gpus_by_agent.load(self.id)]

    @strawberry.field(description="Every worker of the agent, enabled or not, oldest first.")
    async def workers(
        self, info: GraphQLInfo
    ) -> list[Annotated[Worker, strawberry.lazy(_WORKERS)]]:
        from gpugo.schema.types.workers import worker_node

        rows = await info.context.loaders.workers_by_agent.load(self.id)
        return [worker_node(row) for row in rows]


def agent_node(server: ServerContext, row: Row, now: datetime | None = None) -> Agent:
    """An Agent from a row of ``loaders.AGENT_COLUMNS``; status is computed on read."""
    state = agent_state(
        ctx=server, last_seen_at=row["last_seen_at"], shut_down_at=row["shut_down_at"], now=now
    )
    return Agent(
        id=strawberry.ID(row["id"]),
        hostname=row["hostname"],
        os=row["os"],
        arch=row["arch"],
        status=AgentStatus(state.status),
        status_reason=state.reason,
        network_ips=list(row["network_ips"] or []),
        config_version=row["config_version"],
        fetched_config_version=row["fetched_config_version"],
        config_fetched_at=row["config_fetched_at"],
        last_seen_at=row["last_seen_at"],
        created_at=row["created_at"],
    )
