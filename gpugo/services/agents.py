"""Agents: registration with an install token, what users see of their agents, deletion."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple, NoReturn

from tortoise.transactions import in_transaction

from gpugo import clock, sql
from gpugo.auth.principal import Principal
from gpugo.auth.tokens import TokenKind, hash_token, new_token
from gpugo.context import ServerContext
from gpugo.errors import (
    GpugoError,
    NotFound,
    TokenExpired,
    TokenUsed,
    Unauthorized,
    ValidationFailed,
)
from gpugo.events import Event, EventKind
from gpugo.inputs.agents import RegisterAgentInput
from gpugo.models import Agent, Gpu, InstallToken, Worker, WorkerConnection
from gpugo.services import alerts, audit, install_tokens, licenses, plans, scope, webhooks
from gpugo.services.views import (
    CONNECTION_COLUMNS,
    GPU_COLUMNS,
    WORKER_COLUMNS,
    ConnectionView,
    GpuView,
    Presence,
    WorkerView,
    connection_view,
    gpu_order,
    gpu_views,
    presence_of,
    worker_view,
)
from gpugo.timefmt import parse_stored

DEFAULT_WORKER_PORT = 9001
DEFAULT_WORKER_NAME = "default"


@dataclass(frozen=True, slots=True)
class Registered:
    agent_id: str
    agent_secret: str
    license: licenses.License


class AgentState(NamedTuple):
    status: str  # pending | online | offline
    reason: str


class AgentSummary(NamedTuple):
    """A named tuple, like the views (``services.views``): made in one call."""

    agent_id: str
    hostname: str
    state: AgentState
    os: str
    arch: str
    gpu_count: int
    last_seen_at: datetime | None
    created_at: datetime
    network_ips: list[str]
    config_version: int
    fetched_config_version: int | None
    config_fetched_at: datetime | None


@dataclass(frozen=True, slots=True)
class AgentDetail:
    agent_id: str
    hostname: str
    state: AgentState
    os: str
    arch: str
    network_ips: tuple[str, ...]
    gpus: tuple[GpuView, ...]
    workers: tuple[WorkerView, ...]
    config_version: int
    fetched_config_version: int | None
    config_fetched_at: datetime | None
    last_seen_at: datetime | None
    created_at: datetime

    @property
    def config_in_sync(self) -> bool:
        return config_in_sync(
            config_version=self.config_version, fetched_config_version=self.fetched_config_version
        )


def config_in_sync(*, config_version: int, fetched_config_version: int | None) -> bool:
    """Whether the agent has fetched the configuration it should run (desired = fetched)."""
    return fetched_config_version == config_version


def agent_state(
    *,
    ctx: ServerContext,
    last_seen_at: datetime | None,
    shut_down_at: datetime | None,
    now: datetime | None = None,
) -> AgentState:
    """pending until the first report; online within the threshold; otherwise offline."""
    if last_seen_at is None:
        return AgentState("pending", "The agent has not reported yet.")
    if shut_down_at is not None:
        return AgentState("offline", "The agent reported that it is shutting down.")
    now = now or clock.now()
    threshold = timedelta(seconds=ctx.settings.agent_offline_seconds)
    if now - last_seen_at <= threshold:
        return AgentState("online", "The agent reported recently.")
    seconds = ctx.settings.agent_offline_seconds
    span = f"{seconds // 60} minutes" if seconds >= 120 else f"{seconds} seconds"
    return AgentState("offline", f"No report for more than {span}.")


def agent_presence(
    *,
    ctx: ServerContext,
    last_seen_at: datetime | None,
    shut_down_at: datetime | None,
    now: datetime | None = None,
) -> Presence:
    """Whether what the agent last reported is current (see ``views.Presence``)."""
    state = agent_state(ctx=ctx, last_seen_at=last_seen_at, shut_down_at=shut_down_at, now=now)
    return presence_of(status=state.status, last_seen_at=last_seen_at)


def license_gpu_ids(gpus: Iterable[tuple[int | None, str]]) -> list[str]:
    """``(gpu_index, gpu_id)`` pairs -> the ids a license names, in the one GPU order."""
    return [gpu_id for gpu_index, gpu_id in sorted(gpus, key=lambda g: gpu_order(*g))]


async def register(
    *, ctx: ServerContext, install_token_hash: str, data: RegisterAgentInput
) -> Registered:
    """Register an agent (``_register``); a refusal is told to the token's owner live (the
    Add-machine page waiting for it says why)."""
    try:
        return await _register(ctx=ctx, install_token_hash=install_token_hash, data=data)
    except GpugoError as error:
        await install_tokens.refused(
            ctx=ctx, install_token_hash=install_token_hash, hostname=data.hostname, error=error
        )
        raise


async def _register(
    *, ctx: ServerContext, install_token_hash: str, data: RegisterAgentInput
) -> Registered:
    """Claim the install token and create the agent, its GPUs and its default worker.

    A host without a GPU (a client-only machine) gets no default worker: a worker
    exposes GPUs, and an empty one would only take a slot of the plan. All or
    nothing: a refused registration (used or expired token, plan limits) leaves no
    row behind and the token unclaimed.
    """
    now = clock.now()
    secret = new_token(TokenKind.AGENT)
    async with in_transaction():
        rows = await InstallToken.filter(token_hash=install_token_hash).values(
            "id", "user_id", "expires_at", "used_at", "user__plan"
        )
        if not rows:
            raise Unauthorized("Unknown install token.")
        token = rows[0]
        _check_unspent(token, now)
        user_id, plan = token["user_id"], token["user__plan"]
        await plans.lock_usage(user_id)
        # The single-use mark: one conditional UPDATE, so of racing registrations exactly
        # one sees a row to claim.
        claimed = await InstallToken.filter(id=token["id"], used_at=None).update(used_at=now)
        if not claimed:
            _refused_token(token, "used")
            raise TokenUsed()
        with_default_worker = bool(data.gpus)
        await plans.check_room(
            ctx=ctx,
            user_id=user_id,
            plan=plan,
            more_gpus=len(data.gpus),
            more_workers=int(with_default_worker),
        )
        agent = await Agent.create(
            user_id=user_id,
            secret_hash=hash_token(secret),
            hostname=data.hostname,
            os=data.os,
            arch=data.arch,
            network_ips=list(data.network_ips),
            created_at=now,
            updated_at=now,
        )
        await Gpu.bulk_create(
            [
                Gpu(
                    agent_id=agent.id,
                    gpu_id=gpu.gpu_id,
                    gpu_index=gpu.gpu_index,
                    vendor=gpu.vendor,
                    model=gpu.model,
                    vram_mb=gpu.vram_mb,
                    driver_version=gpu.driver_version,
                    cuda_version=gpu.cuda_version,
                )
                for gpu in data.gpus
            ]
        )
        if with_default_worker:
            await Worker.create(
                agent_id=agent.id,
                name=DEFAULT_WORKER_NAME,
                gpu_ids=[gpu.gpu_id for gpu in data.gpus],
                listen_port=DEFAULT_WORKER_PORT,
                enabled=True,
                is_default=True,
                created_at=now,
                updated_at=now,
            )
        await InstallToken.filter(id=token["id"]).update(
            agent_id=agent.id, agent_hostname=data.hostname
        )
        queued = await alerts.agent_registered(user_id=user_id, agent_id=agent.id, now=now)
        queued += await alerts.plan_filled(
            ctx=ctx,
            user_id=user_id,
            plan=plan,
            more_gpus=len(data.gpus),
            more_workers=int(with_default_worker),
            now=now,
        )
    webhooks.wake_sender(ctx, queued)
    audit.record(
        audit.Kind.INSTALL_TOKEN_USED,
        user_id=user_id,
        actor=audit.Actor.INSTALL_TOKEN,
        actor_id=token["id"],
        subject_kind="install_token",
        subject_id=token["id"],
    )
    audit.record(
        audit.Kind.AGENT_REGISTERED,
        user_id=user_id,
        actor=audit.Actor.INSTALL_TOKEN,
        actor_id=token["id"],
        subject_kind="agent",
        subject_id=agent.id,
        detail=data.hostname,
    )
    # After the commit; the token's event names the new agent (live onboarding).
    await ctx.events.publish(
        Event(kind=EventKind.AGENT_REGISTERED, user_id=user_id, agent_id=agent.id)
    )
    await ctx.events.publish(
        Event(
            kind=EventKind.INSTALL_TOKEN_USED,
            user_id=user_id,
            agent_id=agent.id,
            resource_id=token["id"],
            data={"hostname": data.hostname},
        )
    )
    gpu_ids = license_gpu_ids((gpu.gpu_index, gpu.gpu_id) for gpu in data.gpus)
    return Registered(
        agent_id=agent.id,
        agent_secret=secret,
        license=licenses.issue(ctx=ctx, gpu_ids=gpu_ids, plan=plan),
    )


async def refuse_body(
    *, ctx: ServerContext, install_token_hash: str, hostname: str, error: GpugoError
) -> NoReturn:
    """Refuse a registration whose body was rejected (``error``) before ``register`` ran.

    The token is checked first, as ``register`` checks it, so a bad credential is refused
    before a bad body: an unknown token is a 401 that tells nobody; a spent one is
    refused as spent. Only then does the owner of the token hear, live, why the machine
    was refused (``hostname``: the one the body claims, if any). Never on the path of a
    registration that succeeds."""
    rows = await InstallToken.filter(token_hash=install_token_hash).values(
        "id", "user_id", "expires_at", "used_at"
    )
    if not rows:
        raise Unauthorized("Unknown install token.")
    token = rows[0]
    try:
        _check_unspent(token, clock.now())
    except GpugoError as spent:
        error = spent
    await install_tokens.tell_refused(
        ctx=ctx,
        token_id=token["id"],
        user_id=token["user_id"],
        hostname=hostname,
        code=error.code,
        message=_refusal_message(error),
    )
    raise error


def _refusal_message(error: GpugoError) -> str:
    """What the owner reads of a refused registration: a rejected body's fields in words."""
    if not isinstance(error, ValidationFailed) or not error.details:
        return error.message
    reasons = "; ".join(f"{d.field}: {d.message}" for d in error.details[:5])
    more = f" (and {len(error.details) - 5} more)" if len(error.details) > 5 else ""
    return f"The agent sent an invalid registration: {reasons}{more}"


def _check_unspent(token: dict[str, Any], now: datetime) -> None:
    """Refuse (and log) a token already used or past its expiry."""
    if token["used_at"] is not None:
        _refused_token(token, "used")
        raise TokenUsed()
    if now >= token["expires_at"]:
        _refused_token(token, "expired")
        raise TokenExpired()


def _refused_token(token: dict[str, Any], why: str) -> None:
    """A registration with a spent install token: someone holds it who should not."""
    audit.record(
        audit.Kind.INSTALL_TOKEN_USED,
        user_id=token["user_id"],
        actor=audit.Actor.INSTALL_TOKEN,
        actor_id=token["id"],
        subject_kind="install_token",
        subject_id=token["id"],
        outcome=audit.FAILURE,
        detail=why,
    )


# What a list shows of an agent (the agent list, a page of agents): table alias "a".
SUMMARY_COLUMNS = (
    "a.id, a.hostname, a.os, a.arch, a.last_seen_at, a.shut_down_at, a.created_at,"
    " a.network_ips, a.config_version, a.fetched_config_version, a.config_fetched_at,"
    " (SELECT COUNT(*) FROM gpus g WHERE g.agent_id = a.id) AS gpu_count"
)


def summary(ctx: ServerContext, row: dict[str, Any], now: datetime) -> AgentSummary:
    """An AgentSummary from a row of SUMMARY_COLUMNS."""
    last_seen_at = parse_stored(row["last_seen_at"])
    return AgentSummary(
        agent_id=row["id"],
        hostname=row["hostname"],
        state=agent_state(
            ctx=ctx,
            last_seen_at=last_seen_at,
            shut_down_at=parse_stored(row["shut_down_at"]),
            now=now,
        ),
        os=row["os"],
        arch=row["arch"],
        gpu_count=row["gpu_count"],
        last_seen_at=last_seen_at,
        created_at=parse_stored(row["created_at"]),  # type: ignore[arg-type]
        network_ips=sql.json_value(row["network_ips"]) or [],
        config_version=row["config_version"],
        fetched_config_version=row["fetched_config_version"],
        config_fetched_at=parse_stored(row["config_fetched_at"]),
    )


async def get_agent(*, ctx: ServerContext, principal: Principal, agent_id: str) -> AgentDetail:
    """One of the caller's agents with its GPUs, workers and their connections."""
    rows = await Agent.filter(scope.agents(principal), id=agent_id).values(
        "id",
        "hostname",
        "os",
        "arch",
        "network_ips",
        "config_version",
        "fetched_config_version",
        "config_fetched_at",
        "last_seen_at",
        "shut_down_at",
        "created_at",
    )
    if not rows:
        raise NotFound("No such agent.")
    agent = rows[0]
    state = agent_state(
        ctx=ctx, last_seen_at=agent["last_seen_at"], shut_down_at=agent["shut_down_at"]
    )
    heard = presence_of(status=state.status, last_seen_at=agent["last_seen_at"])
    # The agent is the caller's (checked above), so its children need no further join.
    gpus = await Gpu.filter(agent_id=agent_id).values(*GPU_COLUMNS)
    workers = (
        await Worker.filter(agent_id=agent_id).order_by("created_at", "id").values(*WORKER_COLUMNS)
    )
    connections = await connections_by_worker([w["id"] for w in workers])
    return AgentDetail(
        agent_id=agent["id"],
        hostname=agent["hostname"],
        state=state,
        os=agent["os"],
        arch=agent["arch"],
        network_ips=tuple(agent["network_ips"] or ()),
        gpus=gpu_views(gpus, heard),
        workers=tuple(worker_view(w, heard, connections.get(w["id"], ())) for w in workers),
        config_version=agent["config_version"],
        fetched_config_version=agent["fetched_config_version"],
        config_fetched_at=agent["config_fetched_at"],
        last_seen_at=agent["last_seen_at"],
        created_at=agent["created_at"],
    )


async def connections_by_worker(worker_ids: list[str]) -> dict[str, list[ConnectionView]]:
    """Each worker's client connections, oldest first."""
    if not worker_ids:
        return {}
    rows: list[dict[str, Any]] = (
        await WorkerConnection.filter(worker_id__in=worker_ids)
        .order_by("connected_at", "id")
        .values("worker_id", *CONNECTION_COLUMNS)
    )
    found: dict[str, list[ConnectionView]] = {}
    for row in rows:
        found.setdefault(row["worker_id"], []).append(connection_view(row))
    return found


async def delete(*, ctx: ServerContext, principal: Principal, agent_id: str) -> None:
    """Delete the agent; the database cascades to GPUs, workers, connections, shares, metrics.

    The caller is its owner, or the agent itself (its secret was already matched to
    ``agent_id``). The secret dies with the row.
    """
    async with in_transaction():
        # Read for the webhook body before the row goes (a stranger's id rolls it back).
        queued = await alerts.agent_deleted(
            ctx=ctx, user_id=principal.user_id, agent_id=agent_id, now=clock.now()
        )
        deleted = await Agent.filter(scope.agents(principal), id=agent_id).delete()
        if not deleted:
            raise NotFound("No such agent.")
    webhooks.wake_sender(ctx, queued)
    if ctx.timeseries is not None:
        # The agent's points in the time-series engine go with it, as SQL rows cascade
        # (the SQL sink leaves a deleted agent's waiting points out by itself).
        ctx.metrics.buffer.discard(lambda point: point.agent_id == agent_id)
        await ctx.timeseries.forget_agent(agent_id)
    itself = principal.agent_id == agent_id
    audit.record(
        audit.Kind.AGENT_UNREGISTERED if itself else audit.Kind.AGENT_DELETED,
        user_id=principal.user_id,
        actor=principal,
        subject_kind="agent",
        subject_id=agent_id,
    )
    await ctx.events.publish(
        Event(kind=EventKind.AGENT_DELETED, user_id=principal.user_id, agent_id=agent_id)
    )
