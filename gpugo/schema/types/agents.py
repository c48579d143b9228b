from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from gpugo.schema.context import GraphQLInfo
from gpugo.schema.loaders import Row
from gpugo.schema.resolving import then
from gpugo.services import agents
from gpugo.services.views import GpuView, Presence, gpu_view, presence_of

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
    agent_online: bool = strawberry.field(
        description="Whether the agent is online; false: usedByWorker is only what it last said."
    )
    last_known_at: datetime | None = strawberry.field(
        description="When the agent last reported, if it is not online (null while online)."
    )


def gpu_node(row: Row, presence: Presence) -> Gpu:
    """From a loader row (``GPU_COLUMNS``) of an agent whose presence is ``presence``."""
    return gpu_view_node(gpu_view(row, presence))


def gpu_view_node(view: GpuView) -> Gpu:
    return Gpu(
        gpu_id=view.gpu_id,
        gpu_index=view.gpu_index,
        vendor=view.vendor,
        model=view.model,
        vram_mb=view.vram_mb,
        driver_version=view.driver_version,
        cuda_version=view.cuda_version,
        used_by_worker=strawberry.ID(view.used_by_worker) if view.used_by_worker else None,
        agent_online=view.presence.agent_online,
        last_known_at=view.presence.last_known_at,
    )


@strawberry.type(description="A GPU host running the GPU Go agent.")
class Agent:
    id: strawberry.ID
    hostname: str
    os: str
    arch: str
    status: AgentStatus
    status_reason: str = strawberry.field(description="Why the status is what it is.")
    last_seen_at: datetime | None
    created_at: datetime
    # What the source view already holds; anything else comes from the per-request loaders.
    known: strawberry.Private[dict[str, Any]]
    known_gpus: strawberry.Private[list[Gpu] | None] = None
    known_workers: strawberry.Private[list[Worker] | None] = None

    # Resolvers are plain functions: what the node already holds is returned as is (no
    # coroutine, no task per field); anything else is a coroutine the executor awaits.
    def _column(self, info: GraphQLInfo, name: str) -> Any:
        if name in self.known:
            return self.known[name]
        return self._load_column(info, name)

    async def _load_column(self, info: GraphQLInfo, name: str) -> Any:
        row = await info.context.loaders.agent.load(self.id)
        return row[name] if row else None

    def presence(self) -> Presence:
        """Whether what this agent last reported (its GPUs' and workers') is current."""
        return presence_of(status=self.status.value, last_seen_at=self.last_seen_at)

    @strawberry.field
    def gpu_count(self, info: GraphQLInfo) -> int:
        if "gpu_count" in self.known:
            return self.known["gpu_count"]
        if self.known_gpus is not None:
            return len(self.known_gpus)
        return then(info.context.loaders.gpus_by_agent.load(self.id), len)

    @strawberry.field
    def network_ips(self, info: GraphQLInfo) -> list[str]:
        return then(self._column(info, "network_ips"), lambda ips: list(ips or []))

    @strawberry.field(description="The owner's name for the machine (null: none).")
    def display_name(self, info: GraphQLInfo) -> str | None:
        return self._column(info, "display_name")

    @strawberry.field(description="The owner's tags for the machine.")
    def tags(self, info: GraphQLInfo) -> list[str]:
        return then(self._column(info, "tags"), lambda tags: list(tags or []))

    @strawberry.field(description="Desired configuration; increments on every worker change.")
    def config_version(self, info: GraphQLInfo) -> int:
        return self._column(info, "config_version")

    @strawberry.field(description="The configuration version the agent last fetched (null: never).")
    def fetched_config_version(self, info: GraphQLInfo) -> int | None:
        return self._column(info, "fetched_config_version")

    @strawberry.field
    def config_fetched_at(self, info: GraphQLInfo) -> datetime | None:
        return self._column(info, "config_fetched_at")

    @strawberry.field(description="Whether the agent has fetched the configuration it should run.")
    def config_in_sync(self, info: GraphQLInfo) -> bool:
        names = ("config_version", "fetched_config_version")
        if all(name in self.known for name in names):
            return _in_sync(self.known)
        return then(info.context.loaders.agent.load(self.id), _in_sync)

    @strawberry.field(description="By the agent's GPU index, then id.")
    def gpus(self, info: GraphQLInfo) -> list[Gpu]:
        if self.known_gpus is not None:
            return self.known_gpus
        return then(
            info.context.loaders.gpus_by_agent.load(self.id),
            lambda rows: [gpu_node(row, self.presence()) for row in rows],
        )

    @strawberry.field(description="Every worker of the agent, enabled or not, oldest first.")
    def workers(self, info: GraphQLInfo) -> list[Annotated[Worker, strawberry.lazy(_WORKERS)]]:
        if self.known_workers is not None:
            return self.known_workers
        from gpugo.schema.types.workers import worker_node

        return then(
            info.context.loaders.workers_by_agent.load(self.id),
            lambda rows: [worker_node(row, self.presence()) for row in rows],
        )


def _in_sync(row: Row | None) -> bool:
    return row is not None and agents.config_in_sync(
        config_version=row["config_version"],
        fetched_config_version=row["fetched_config_version"],
    )


def _status(state: agents.AgentState) -> dict[str, Any]:
    return {"status": AgentStatus(state.status), "status_reason": state.reason}


def agent_summary_node(view: agents.AgentSummary) -> Agent:
    """From the agents service's list item."""
    return Agent(
        id=strawberry.ID(view.agent_id),
        hostname=view.hostname,
        os=view.os,
        arch=view.arch,
        **_status(view.state),
        last_seen_at=view.last_seen_at,
        created_at=view.created_at,
        known={
            "gpu_count": view.gpu_count,
            "network_ips": view.network_ips,
            "config_version": view.config_version,
            "fetched_config_version": view.fetched_config_version,
            "config_fetched_at": view.config_fetched_at,
        },
    )


def agent_detail_node(view: agents.AgentDetail) -> Agent:
    """From the agents service's detail: nothing left to load."""
    from gpugo.schema.types.workers import worker_view_node

    return Agent(
        id=strawberry.ID(view.agent_id),
        hostname=view.hostname,
        os=view.os,
        arch=view.arch,
        **_status(view.state),
        last_seen_at=view.last_seen_at,
        created_at=view.created_at,
        known={
            "gpu_count": len(view.gpus),
            "network_ips": list(view.network_ips),
            "config_version": view.config_version,
            "fetched_config_version": view.fetched_config_version,
            "config_fetched_at": view.config_fetched_at,
        },
        known_gpus=[gpu_view_node(gpu) for gpu in view.gpus],
        known_workers=[worker_view_node(worker, with_connections=True) for worker in view.workers],
    )


def agent_row_node(info: GraphQLInfo, row: Row) -> Agent:
    """From a loader row (``loaders.AGENT_COLUMNS``): a worker's or share's agent."""
    state = agents.agent_state(
        ctx=info.context.server, last_seen_at=row["last_seen_at"], shut_down_at=row["shut_down_at"]
    )
    return Agent(
        id=strawberry.ID(row["id"]),
        hostname=row["hostname"],
        os=row["os"],
        arch=row["arch"],
        **_status(state),
        last_seen_at=row["last_seen_at"],
        created_at=row["created_at"],
        known=row,
    )
