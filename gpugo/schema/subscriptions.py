"""Subscription root: live views over graphql-transport-ws on /graphql.

A thin layer over ``services.live``: the services check ownership and plans and
subscribe to the bus with the caller's own user id; here events become GraphQL
objects. Who may connect is decided once per connection (``on_connect``: the
session cookie of the handshake, or a PAT in ``connection_init``), and again
before each message once the principal is older than the context allows, so a
revoked session or PAT stops the flow. A refused connection is closed with 4403.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from datetime import datetime
from enum import Enum
from typing import TypeVar

import strawberry
from strawberry.exceptions import ConnectionRejectionError

from gpugo.errors import GpugoError, NotFound
from gpugo.events import Event, EventKind
from gpugo.inputs.common import lookup_id
from gpugo.schema.context import GraphQLContext, GraphQLInfo
from gpugo.schema.loaders import Loaders
from gpugo.schema.permissions import IsUser, user
from gpugo.schema.types.agents import Agent, agent_detail_node
from gpugo.schema.types.tokens import InstallToken, install_token_node
from gpugo.services import agents, install_tokens, live

T = TypeVar("T")
N = TypeVar("N")
_USER = [IsUser]


async def on_connect(context: GraphQLContext) -> None:
    """The view's ``on_ws_connect``: refuse the connection unless it is a user's."""
    try:
        await context.principal()
    except GpugoError:
        raise ConnectionRejectionError() from None


@strawberry.enum
class AgentEventKind(Enum):
    REGISTERED = EventKind.AGENT_REGISTERED.value
    ONLINE = EventKind.AGENT_ONLINE.value
    OFFLINE = EventKind.AGENT_OFFLINE.value
    UPDATED = EventKind.AGENT_UPDATED.value
    DELETED = EventKind.AGENT_DELETED.value
    WORKER_CREATED = EventKind.WORKER_CREATED.value
    WORKER_UPDATED = EventKind.WORKER_UPDATED.value
    WORKER_DELETED = EventKind.WORKER_DELETED.value
    WORKER_STATUS_CHANGED = EventKind.WORKER_STATUS_CHANGED.value
    CONNECTIONS_CHANGED = EventKind.CONNECTIONS_CHANGED.value
    CONFIG_CHANGED = EventKind.CONFIG_CHANGED.value


@strawberry.type(description="Something changed on one of your agents.")
class AgentEvent:
    kind: AgentEventKind
    agent_id: strawberry.ID
    worker_id: strawberry.ID | None = strawberry.field(
        description="The worker concerned, for the WORKER_* and CONNECTIONS_CHANGED kinds."
    )
    changed: list[str] = strawberry.field(
        description="For UPDATED: what changed (gpus, workers, config_fetched)."
    )

    @strawberry.field(
        description="The agent as it is now (read when asked for); null once deleted."
    )
    async def agent(self, info: GraphQLInfo) -> Agent | None:
        try:
            view = await agents.get_agent(
                ctx=info.context.server, principal=await user(info), agent_id=self.agent_id
            )
        except NotFound:
            return None
        return agent_detail_node(view)


def _agent_event_node(event: Event) -> AgentEvent:
    worker_id = event.resource_id if event.kind.value.startswith("worker.") else None
    changed = event.data.get("changed")
    return AgentEvent(
        kind=AgentEventKind(event.kind.value),
        agent_id=strawberry.ID(event.agent_id or ""),
        worker_id=strawberry.ID(worker_id) if worker_id else None,
        changed=[str(c) for c in changed] if isinstance(changed, list) else [],
    )


@strawberry.type(description="The outcome of an install token: used (with its agent) or expired.")
class InstallTokenOutcome:
    token: InstallToken
    agent_id: strawberry.ID | None = strawberry.field(
        description="The agent that registered with the token; null if expired unused."
    )

    @strawberry.field(description="The new agent as it is now; null if none (or deleted since).")
    async def agent(self, info: GraphQLInfo) -> Agent | None:
        if self.agent_id is None:
            return None
        try:
            view = await agents.get_agent(
                ctx=info.context.server, principal=await user(info), agent_id=self.agent_id
            )
        except NotFound:
            return None
        return agent_detail_node(view)


def _token_outcome_node(state: install_tokens.InstallTokenStatus) -> InstallTokenOutcome:
    agent_id = state.agent.agent_id if state.agent is not None else None
    return InstallTokenOutcome(
        token=install_token_node(state),
        agent_id=strawberry.ID(agent_id) if agent_id else None,
    )


@strawberry.type(description="A registration refused with an install token, and why.")
class InstallTokenRefusal:
    token_id: strawberry.ID
    code: str = strawberry.field(description="The error code the agent got.")
    message: str
    hostname: str = strawberry.field(description="The machine that tried to register.")


def _refusal_node(refusal: live.TokenRefusal) -> InstallTokenRefusal:
    return InstallTokenRefusal(
        token_id=strawberry.ID(refusal.token_id),
        code=refusal.code,
        message=refusal.message,
        hostname=refusal.hostname,
    )


@strawberry.type(description="One GPU's reading in a metrics report.")
class GpuReading:
    gpu_id: str
    utilization: float
    vram_used_mb: int
    vram_total_mb: int
    temperature: int
    power_usage_w: float
    pcie_rx_kb: int | None
    pcie_tx_kb: int | None


@strawberry.type(description="A metrics report of an agent, as it arrived.")
class MetricsReport:
    agent_id: strawberry.ID
    recorded_at: datetime
    cpu_usage: float | None
    memory_used_mb: int | None
    memory_total_mb: int | None
    gpus: list[GpuReading]


def _metrics_node(report: live.MetricsReport) -> MetricsReport:
    return MetricsReport(
        agent_id=strawberry.ID(report.agent_id),
        recorded_at=report.recorded_at,
        cpu_usage=report.cpu_usage,
        memory_used_mb=report.memory_used_mb,
        memory_total_mb=report.memory_total_mb,
        gpus=[
            GpuReading(
                gpu_id=g.gpu_id,
                utilization=g.utilization,
                vram_used_mb=g.vram_used_mb,
                vram_total_mb=g.vram_total_mb,
                temperature=g.temperature,
                power_usage_w=g.power_usage_w,
                pcie_rx_kb=g.pcie_rx_kb,
                pcie_tx_kb=g.pcie_tx_kb,
            )
            for g in report.gpus
        ],
    )


async def _deliver(
    info: GraphQLInfo, source: AsyncGenerator[T, None], node: Callable[[T], N]
) -> AsyncGenerator[N, None]:
    """Each item as a GraphQL object, while the connection's credential still holds."""
    context = info.context
    try:
        async for item in source:
            # HTTP requests in flight (an agents' burst) are answered before this delivery.
            await context.server.requests_first.turn()
            # Re-resolved once it is old: a revoked session or PAT ends the subscription
            # with its error (unauthorized) instead of this message.
            await context.principal()
            # On a WebSocket the context lives as long as the connection: fresh loaders per
            # message, so nested fields never answer from an old cache.
            context.loaders = Loaders()
            yield node(item)
    finally:
        await source.aclose()


@strawberry.type
class Subscription:
    @strawberry.subscription(
        permission_classes=_USER,
        description=(
            "Changes on your agents as they happen (of one agent, if agentId is given): "
            "status (online, offline), workers, connections, GPUs, configuration. Live only: "
            "after a reconnect, query the current state and subscribe again."
        ),
    )
    async def agent_events(
        self, info: GraphQLInfo, agent_id: strawberry.ID | None = None
    ) -> AsyncGenerator[AgentEvent, None]:
        if agent_id is not None:
            agent_id = lookup_id(agent_id, "agent")
        source = await live.agent_events(
            ctx=info.context.server, principal=await user(info), agent_id=agent_id
        )
        return _deliver(info, source, _agent_event_node)

    @strawberry.subscription(
        permission_classes=_USER,
        description=(
            "One message when your install token is used (with the new agent) or expires; "
            "at once if that already happened."
        ),
    )
    async def install_token(
        self, info: GraphQLInfo, id: strawberry.ID
    ) -> AsyncGenerator[InstallTokenOutcome, None]:
        source = await live.install_token_outcome(
            ctx=info.context.server,
            principal=await user(info),
            token_id=lookup_id(id, "install token"),
        )
        return _deliver(info, source, _token_outcome_node)

    @strawberry.subscription(
        permission_classes=_USER,
        description="Each registration refused with your install token (e.g. over the plan's "
        "GPUs), with the reason the machine was given.",
    )
    async def install_token_refusals(
        self, info: GraphQLInfo, id: strawberry.ID
    ) -> AsyncGenerator[InstallTokenRefusal, None]:
        source = await live.install_token_refusals(
            ctx=info.context.server,
            principal=await user(info),
            token_id=lookup_id(id, "install token"),
        )
        return _deliver(info, source, _refusal_node)

    @strawberry.subscription(
        permission_classes=_USER,
        description="Each metrics report of one of your agents as it arrives (Team and Pro).",
    )
    async def agent_metrics(
        self, info: GraphQLInfo, agent_id: strawberry.ID
    ) -> AsyncGenerator[MetricsReport, None]:
        source = await live.metrics_reports(
            ctx=info.context.server,
            principal=await user(info),
            agent_id=lookup_id(agent_id, "agent"),
        )
        return _deliver(info, source, _metrics_node)
