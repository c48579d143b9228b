from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry

from gpugo.schema.context import GraphQLInfo
from gpugo.schema.loaders import Row
from gpugo.services import workers

if TYPE_CHECKING:
    from gpugo.schema.types.agents import Agent

_AGENTS = "gpugo.schema.types.agents"


@strawberry.enum
class WorkerStatus(Enum):
    PENDING = "pending"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


@strawberry.type(description="A client connected to a worker, as last reported by its agent.")
class ClientConnection:
    client_ip: str
    client_port: int | None
    client_pid: int | None
    connected_at: datetime


def connection_node(row: Row) -> ClientConnection:
    return ClientConnection(
        client_ip=row["client_ip"],
        client_port=row["client_port"],
        client_pid=row["client_pid"],
        connected_at=row["connected_at"],
    )


@strawberry.type(description="Exposes some of an agent's GPUs on a TCP port of that host.")
class Worker:
    id: strawberry.ID
    agent_id: strawberry.ID
    name: str
    gpu_ids: list[str]
    listen_port: int
    enabled: bool
    status: WorkerStatus
    created_at: datetime
    # Known when built from a full row; the services' views leave it out.
    known_is_default: strawberry.Private[bool | None] = None

    @strawberry.field(description="Created by the agent's registration.")
    async def is_default(self, info: GraphQLInfo) -> bool:
        if self.known_is_default is not None:
            return self.known_is_default
        row = await info.context.loaders.worker.load(self.id)
        return bool(row and row["is_default"])

    @strawberry.field
    async def connections(self, info: GraphQLInfo) -> list[ClientConnection]:
        rows = await info.context.loaders.connections_by_worker.load(self.id)
        return [connection_node(row) for row in rows]

    @strawberry.field
    async def agent(self, info: GraphQLInfo) -> Annotated[Agent, strawberry.lazy(_AGENTS)] | None:
        from gpugo.schema.types.agents import agent_node

        row = await info.context.loaders.agent.load(self.agent_id)
        return agent_node(info.context.server, row) if row else None


def worker_node(row: Row) -> Worker:
    """A Worker from a row of ``loaders.WORKER_COLUMNS``."""
    return Worker(
        id=strawberry.ID(row["id"]),
        agent_id=strawberry.ID(row["agent_id"]),
        name=row["name"],
        gpu_ids=list(row["gpu_ids"]),
        listen_port=row["listen_port"],
        enabled=row["enabled"],
        status=WorkerStatus(row["status"]),
        created_at=row["created_at"],
        known_is_default=row["is_default"],
    )


def worker_view_node(view: workers.WorkerView) -> Worker:
    """A Worker from the workers service's view."""
    return Worker(
        id=strawberry.ID(view.worker_id),
        agent_id=strawberry.ID(view.agent_id),
        name=view.name,
        gpu_ids=list(view.gpu_ids),
        listen_port=view.listen_port,
        enabled=view.enabled,
        status=WorkerStatus(view.status),
        created_at=view.created_at,
    )
