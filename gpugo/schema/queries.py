"""Query root: reads go through the services REST uses (metrics: read helpers in metrics.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from gpugo.errors import NotFound
from gpugo.inputs.audit import DEFAULT_EVENTS_PAGE, AuditQueryInput
from gpugo.inputs.common import lookup_id, parse_input
from gpugo.inputs.workers import WorkerFilterInput
from gpugo.schema import metrics
from gpugo.schema.context import GraphQLInfo
from gpugo.schema.fleet import FleetQueries
from gpugo.schema.pagination import (
    DEFAULT_PAGE,
    Connection,
    by_creation,
    check_first,
    connection,
    decode_cursor,
    paginate,
    position,
    position_time,
)
from gpugo.schema.permissions import IsUser, user
from gpugo.schema.preload import agents_page
from gpugo.schema.types.agents import Agent, agent_detail_node
from gpugo.schema.types.audit import AuditEvent, UserSession, audit_event_node, session_node
from gpugo.schema.types.metrics import (
    GPU_COLUMNS,
    SYSTEM_COLUMNS,
    AgentMetrics,
    agent_metrics_node,
    as_rows,
)
from gpugo.schema.types.shares import Share, share_node
from gpugo.schema.types.tokens import (
    InstallToken,
    PersonalAccessTokenInfo,
    install_token_node,
    pat_info_node,
)
from gpugo.schema.types.users import User, user_node
from gpugo.schema.types.workers import Worker, worker_view_node
from gpugo.schema.webhooks import WebhookQueries
from gpugo.services import (
    agents,
    audit,
    install_tokens,
    pats,
    plans,
    sessions,
    shares,
    users,
    workers,
)
from gpugo.timeseries import reads as tsdb

_USER = [IsUser]
First = Annotated[int, strawberry.argument(description="Page size, 1 to 100.")]
After = Annotated[str | None, strawberry.argument(description="endCursor of the previous page.")]


def _check_page(first: int, after: str | None) -> None:
    # Before any database work: a bad page request costs nothing.
    check_first(first)
    if after is not None:
        decode_cursor(after)


def _worker_position(node: Worker) -> tuple[int, str]:
    return position(node.known["created_at"], node.id)


@strawberry.type
class Query(WebhookQueries, FleetQueries):
    @strawberry.field(permission_classes=_USER, description="The signed-in user.")
    async def me(self, info: GraphQLInfo) -> User:
        view = await users.get_current(principal=await user(info))
        return user_node(view)

    @strawberry.field(permission_classes=_USER)
    async def personal_access_token(self, info: GraphQLInfo) -> PersonalAccessTokenInfo:
        return pat_info_node(await pats.get_info(principal=await user(info)))

    @strawberry.field(permission_classes=_USER)
    async def install_token(self, info: GraphQLInfo, id: strawberry.ID) -> InstallToken | None:
        token_id = lookup_id(id, "install token")
        state = await install_tokens.status(principal=await user(info), token_id=token_id)
        return install_token_node(state)

    @strawberry.field(permission_classes=_USER, description="Agents, newest first.")
    async def agents(
        self, info: GraphQLInfo, first: First = DEFAULT_PAGE, after: After = None
    ) -> Connection[Agent]:
        _check_page(first, after)
        return await agents_page(info, first=first, after=after)

    @strawberry.field(permission_classes=_USER)
    async def agent(self, info: GraphQLInfo, id: strawberry.ID) -> Agent | None:
        agent_id = lookup_id(id, "agent")
        view = await agents.get_agent(
            ctx=info.context.server, principal=await user(info), agent_id=agent_id
        )
        return agent_detail_node(view)

    @strawberry.field(
        permission_classes=_USER,
        description="An agent's GPU and host metrics in time buckets (Team and Pro plans).",
    )
    async def agent_metrics(
        self,
        info: GraphQLInfo,
        agent_id: strawberry.ID,
        start: Annotated[datetime, strawberry.argument(name="from")],
        to: datetime,
        bucket: Annotated[
            int, strawberry.argument(description="Bucket width in seconds; at most 1440 buckets.")
        ] = 60,
    ) -> AgentMetrics | None:
        agent_id = lookup_id(agent_id, "agent")
        principal = await user(info)
        plans.require_metrics(info.context.server, principal.plan)
        w = metrics.window(start=start, end=to, bucket_seconds=bucket)
        if not await metrics.owns_agent(user_id=principal.user_id, agent_id=agent_id):
            raise NotFound("No such agent.")
        # The reads that can take long: a user has only so many running (429 beyond),
        # on a connection of their own.
        server = info.context.server
        async with info.context.metrics_turn, server.metrics_reads.slot(principal.user_id):
            if server.timeseries is not None:
                # --- time-series engine configured: read through its PromQL range API
                # (service_unavailable while it cannot be read). ---
                gpu_rows = as_rows(
                    await tsdb.gpu_buckets(server.timeseries, agent_id=agent_id, w=w),
                    "gpu_id",
                    GPU_COLUMNS,
                )
                system_rows = as_rows(
                    await tsdb.system_buckets(server.timeseries, agent_id=agent_id, w=w),
                    None,
                    SYSTEM_COLUMNS,
                )
            else:
                gpu_rows, system_rows = await metrics.gpu_and_system_buckets(
                    agent_id=agent_id, w=w, db=server.metrics_db
                )
        return agent_metrics_node(
            agent_id=agent_id, w=w, gpu_rows=gpu_rows, system_rows=system_rows
        )

    @strawberry.field(permission_classes=_USER, description="Workers, oldest first.")
    async def workers(
        self,
        info: GraphQLInfo,
        agent_id: strawberry.ID | None = None,
        hostname: str | None = None,
        first: First = DEFAULT_PAGE,
        after: After = None,
    ) -> Connection[Worker]:
        _check_page(first, after)
        filters = parse_input(
            WorkerFilterInput,
            {k: v for k, v in (("agent_id", agent_id), ("hostname", hostname)) if v is not None},
        )
        found = await workers.list_workers(
            ctx=info.context.server, principal=await user(info), filters=filters
        )
        nodes = [worker_view_node(view) for view in found]
        return paginate(nodes, first=first, after=after, key=_worker_position)

    @strawberry.field(permission_classes=_USER)
    async def worker(self, info: GraphQLInfo, id: strawberry.ID) -> Worker | None:
        worker_id = lookup_id(id, "worker")
        view = await workers.get(
            ctx=info.context.server, principal=await user(info), worker_id=worker_id
        )
        return worker_view_node(view, with_connections=True)

    @strawberry.field(
        permission_classes=_USER, description="The account's security log, newest first."
    )
    async def audit_events(
        self,
        info: GraphQLInfo,
        first: Annotated[
            int, strawberry.argument(description="Page size, 1 to 100.")
        ] = DEFAULT_EVENTS_PAGE,
        after: After = None,
        kind: Annotated[
            str | None, strawberry.argument(description="Only events of this kind.")
        ] = None,
    ) -> Connection[AuditEvent]:
        _check_page(first, after)
        query = parse_input(AuditQueryInput, {"limit": first, "kind": kind})
        principal = await user(info)
        before = position_time(decode_cursor(after)) if after is not None else None
        page = await audit.list_events(
            principal=principal, limit=query.limit, before=before, kind=query.kind
        )
        total = await audit.count_events(principal=principal, kind=query.kind)
        return connection(
            [audit_event_node(e) for e in page.events],
            key=lambda node: position(node.at, node.id),
            has_next=page.next_before is not None,
            total=total,
        )

    @strawberry.field(
        permission_classes=_USER, description="The account's signed-in sessions, newest first."
    )
    async def sessions(self, info: GraphQLInfo) -> list[UserSession]:
        found = await sessions.list_sessions(
            principal=await user(info), settings=info.context.settings
        )
        return [session_node(view) for view in found]

    @strawberry.field(permission_classes=_USER, description="Shares, newest first.")
    async def shares(
        self, info: GraphQLInfo, first: First = DEFAULT_PAGE, after: After = None
    ) -> Connection[Share]:
        _check_page(first, after)
        found = await shares.list_shares(ctx=info.context.server, principal=await user(info))
        nodes = [share_node(view) for view in found]
        return paginate(nodes, first=first, after=after, key=by_creation, newest_first=True)
