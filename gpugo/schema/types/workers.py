from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from gpugo.schema.context import GraphQLInfo
from gpugo.schema.loaders import Row
from gpugo.schema.resolving import then
from gpugo.services import agents
from gpugo.services.views import Presence, WorkerView

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
    # What the source view already holds; anything else comes from the per-request loaders.
    known: strawberry.Private[dict[str, Any]]
    known_connections: strawberry.Private[list[ClientConnection] | None] = None

    # Resolvers are plain functions: what the node already holds is returned as is (no
    # coroutine, no task per field); anything else is a coroutine the executor awaits.
    def _column(self, info: GraphQLInfo, name: str) -> Any:
        if name in self.known:
            return self.known[name]
        return self._load_column(info, name)

    async def _load_column(self, info: GraphQLInfo, name: str) -> Any:
        row = await info.context.loaders.worker.load(self.id)
        return row[name] if row else None

    @strawberry.field(description="Created by the agent's registration.")
    def is_default(self, info: GraphQLInfo) -> bool:
        if "is_default" in self.known:
            return bool(self.known["is_default"])
        return then(self._load_column(info, "is_default"), bool)

    @strawberry.field(description="Process id on the agent's host, as last reported.")
    def pid(self, info: GraphQLInfo) -> int | None:
        return self._column(info, "pid")

    @strawberry.field(description="Restarts, as last reported by the agent.")
    def restarts(self, info: GraphQLInfo) -> int | None:
        return self._column(info, "restarts")

    @strawberry.field
    def created_at(self, info: GraphQLInfo) -> datetime:
        return self._column(info, "created_at")

    @strawberry.field(description="GPU memory limit the agent applies (MiB); null: none.")
    def vram_mb(self, info: GraphQLInfo) -> int | None:
        return self._column(info, "vram_mb")

    @strawberry.field(description="Compute limit the agent applies (1-100 %); null: none.")
    def compute_percent(self, info: GraphQLInfo) -> int | None:
        return self._column(info, "compute_percent")

    @strawberry.field(
        description="Isolation the agent applies: shared, soft, hard or partitioned; null: "
        "the agent's default."
    )
    def isolation_mode(self, info: GraphQLInfo) -> str | None:
        return self._column(info, "isolation_mode")

    @strawberry.field(
        description="Whether the worker's agent is online; false: status and connections are "
        "only what it last reported (see lastKnownAt)."
    )
    def agent_online(self, info: GraphQLInfo) -> bool:
        if "agent_online" in self.known:
            return self.known["agent_online"]
        return then(self._load_presence(info), lambda p: p.agent_online)

    @strawberry.field(
        description="When the agent made the report status comes from, if the agent is not "
        "online; null while it is (status is current) or if it never reported."
    )
    def last_known_at(self, info: GraphQLInfo) -> datetime | None:
        if "agent_online" in self.known:
            return self.known["last_known_at"]
        return then(self._load_presence(info), lambda p: p.last_known_at)

    @strawberry.field(
        description="Client connections counted as live: none while the agent is not online."
    )
    def live_connection_count(self, info: GraphQLInfo) -> int:
        if "agent_online" in self.known:
            if not self.known["agent_online"]:
                return 0
            if self.known_connections is not None:
                return len(self.known_connections)
            return then(info.context.loaders.connections_by_worker.load(self.id), len)
        return self._count_live(info)  # type: ignore[return-value]

    async def _count_live(self, info: GraphQLInfo) -> int:
        presence = await self._load_presence(info)
        if not presence.agent_online:
            return 0
        return len(await info.context.loaders.connections_by_worker.load(self.id))

    async def _load_presence(self, info: GraphQLInfo) -> Presence:
        row = await info.context.loaders.agent.load(self.agent_id)
        if row is None:
            return Presence(agent_online=False, last_known_at=None)
        return agents.agent_presence(
            ctx=info.context.server,
            last_seen_at=row["last_seen_at"],
            shut_down_at=row["shut_down_at"],
        )

    @strawberry.field(description="Oldest first.")
    def connections(self, info: GraphQLInfo) -> list[ClientConnection]:
        if self.known_connections is not None:
            return self.known_connections
        return self._load_connections(info)  # type: ignore[return-value]

    async def _load_connections(self, info: GraphQLInfo) -> list[ClientConnection]:
        rows = await info.context.loaders.connections_by_worker.load(self.id)
        return [connection_node(row) for row in rows]

    @strawberry.field
    async def agent(self, info: GraphQLInfo) -> Annotated[Agent, strawberry.lazy(_AGENTS)] | None:
        from gpugo.schema.types.agents import agent_row_node

        row = await info.context.loaders.agent.load(self.agent_id)
        return agent_row_node(info, row) if row else None


def worker_node(
    row: Row, presence: Presence | None = None, connections: list[Row] | None = None
) -> Worker:
    """From a loader row (``loaders.WORKER_COLUMNS``), with its connections if loaded; its
    agent's presence if known (else loaded when asked)."""
    if presence is not None:
        row = {
            **row,
            "agent_online": presence.agent_online,
            "last_known_at": presence.last_known_at,
        }
    return Worker(
        id=strawberry.ID(row["id"]),
        agent_id=strawberry.ID(row["agent_id"]),
        name=row["name"],
        gpu_ids=list(row["gpu_ids"]),
        listen_port=row["listen_port"],
        enabled=row["enabled"],
        status=WorkerStatus(row["status"]),
        known=row,
        known_connections=(
            None if connections is None else [connection_node(c) for c in connections]
        ),
    )


def worker_view_node(view: WorkerView, *, with_connections: bool = False) -> Worker:
    """From the services' one worker view (its connections when the view was read with
    them: an agent's or a worker's detail)."""
    return Worker(
        id=strawberry.ID(view.worker_id),
        agent_id=strawberry.ID(view.agent_id),
        name=view.name,
        gpu_ids=list(view.gpu_ids),
        listen_port=view.listen_port,
        enabled=view.enabled,
        status=WorkerStatus(view.status),
        known={
            "is_default": view.is_default,
            "pid": view.pid,
            "restarts": view.restarts,
            "vram_mb": view.vram_mb,
            "compute_percent": view.compute_percent,
            "isolation_mode": view.isolation_mode,
            "created_at": view.created_at,
            "agent_online": view.presence.agent_online,
            "last_known_at": view.presence.last_known_at,
        },
        known_connections=(
            [
                ClientConnection(
                    client_ip=c.client_ip,
                    client_port=c.client_port,
                    client_pid=c.client_pid,
                    connected_at=c.connected_at,
                )
                for c in view.connections
            ]
            if with_connections
            else None
        ),
    )
