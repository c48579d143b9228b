"""Workers: what users create, change and delete on their agents.

Every change an agent must act on increments the agent's ``config_version`` in
the same transaction as the change; after the commit it publishes the worker's
event and ``agent.config_changed`` (what agent push and live views listen for).
Locks are taken in one order everywhere (user row, then agent row, then worker
rows) so concurrent changes and status reports cannot deadlock on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from gpugo import clock
from gpugo.auth.principal import Principal
from gpugo.context import ServerContext
from gpugo.errors import Conflict, FieldError, NotFound, ValidationFailed
from gpugo.events import Event, EventKind
from gpugo.inputs.workers import CreateWorkerInput, UpdateWorkerInput, WorkerFilterInput
from gpugo.models import Agent, Gpu, Share, Worker, WorkerConnection
from gpugo.services import alerts, plans, scope, webhooks
from gpugo.services.agents import agent_presence
from gpugo.services.shares import vendor_of
from gpugo.services.views import (
    CONNECTION_COLUMNS,
    WORKER_COLUMNS,
    Presence,
    WorkerView,
    connection_view,
    worker_view,
)

# Read with a worker: what its agent's presence is decided from (``_presence``).
_AGENT_COLUMNS = ("agent__last_seen_at", "agent__shut_down_at")
_AGENT_COLUMNS_OWN = ("last_seen_at", "shut_down_at")


def _presence(ctx: ServerContext, row: dict[str, Any]) -> Presence:
    return agent_presence(
        ctx=ctx, last_seen_at=row["agent__last_seen_at"], shut_down_at=row["agent__shut_down_at"]
    )


async def _owned_row(*, principal: Principal, worker_id: str) -> dict[str, Any]:
    rows = await Worker.filter(scope.workers(principal), id=worker_id).values(
        *WORKER_COLUMNS, *_AGENT_COLUMNS
    )
    if not rows:
        raise NotFound("No such worker.")
    return rows[0]


async def list_workers(
    *, ctx: ServerContext, principal: Principal, filters: WorkerFilterInput
) -> list[WorkerView]:
    """The caller's workers, oldest first; one statement whatever the filters."""
    query = Worker.filter(scope.workers(principal))
    if filters.agent_id is not None:
        query = query.filter(agent_id=filters.agent_id)
    if filters.hostname is not None:
        query = query.filter(agent__hostname=filters.hostname)
    rows = await query.order_by("created_at", "id").values(*WORKER_COLUMNS, *_AGENT_COLUMNS)
    return [worker_view(row, _presence(ctx, row)) for row in rows]


async def get(*, ctx: ServerContext, principal: Principal, worker_id: str) -> WorkerView:
    """One of the caller's workers with its client connections."""
    row = await _owned_row(principal=principal, worker_id=worker_id)
    connections = await (
        WorkerConnection.filter(worker_id=row["id"])
        .order_by("connected_at", "id")
        .values(*CONNECTION_COLUMNS)
    )
    return worker_view(row, _presence(ctx, row), [connection_view(c) for c in connections])


async def _bump_config_version(*, principal: Principal, agent_id: str) -> None:
    """One conditional UPDATE: ownership check, row lock and increment at once."""
    bumped = await Agent.filter(scope.agents(principal), id=agent_id).update(
        config_version=F("config_version") + 1, updated_at=clock.now()
    )
    if not bumped:
        raise NotFound("No such agent.")


async def _check_gpu_ids(*, agent_id: str, gpu_ids: Sequence[str]) -> list[str]:
    """400 naming every id that is not one of the agent's GPUs; else the GPUs' vendors."""
    rows = await Gpu.filter(agent_id=agent_id, gpu_id__in=list(gpu_ids)).values_list(
        "gpu_id", "vendor"
    )
    known = {gpu_id for gpu_id, _ in rows}
    unknown = [gpu_id for gpu_id in gpu_ids if gpu_id not in known]
    if unknown:
        names = ", ".join(unknown)
        raise ValidationFailed(
            f"gpu_ids: {names} {'is' if len(unknown) == 1 else 'are'} not a GPU of this agent.",
            details=[
                FieldError("gpu_ids", f"{gpu_id} is not a GPU of this agent.") for gpu_id in unknown
            ],
        )
    return [vendor for _, vendor in rows]


async def _check_port_free(*, agent_id: str, listen_port: int, worker_id: str | None) -> None:
    # Up front for a clear message; the unique (agent_id, listen_port) index still decides races.
    query = Worker.filter(agent_id=agent_id, listen_port=listen_port)
    if worker_id is not None:
        query = query.exclude(id=worker_id)
    taken = await query.values_list("name", flat=True)
    if taken:
        raise Conflict(f"Port {listen_port} is already used by worker '{taken[0]}' on this agent.")


def _port_conflict(listen_port: int) -> Conflict:
    return Conflict(f"Port {listen_port} is already used by another worker on this agent.")


async def _published(
    *, ctx: ServerContext, principal: Principal, kind: EventKind, agent_id: str, worker_id: str
) -> None:
    """After the commit: the worker's event, then the config change the agent must pull."""
    await ctx.events.publish(
        Event(kind=kind, user_id=principal.user_id, agent_id=agent_id, resource_id=worker_id)
    )
    await ctx.events.publish(
        Event(kind=EventKind.CONFIG_CHANGED, user_id=principal.user_id, agent_id=agent_id)
    )


async def create(
    *, ctx: ServerContext, principal: Principal, data: CreateWorkerInput
) -> WorkerView:
    """A new worker (status ``pending``) on one of the caller's agents.

    404 for an agent that is not the caller's, 400 for GPU ids the agent does not
    have, 403 over the plan's worker limit, 409 for a port another worker of the
    agent uses. All or nothing, config_version included.
    """
    now = clock.now()
    async with in_transaction():
        await plans.lock_usage(principal.user_id)
        await _bump_config_version(principal=principal, agent_id=data.agent_id)
        await _check_gpu_ids(agent_id=data.agent_id, gpu_ids=data.gpu_ids)
        await plans.check_room(
            ctx=ctx, user_id=principal.user_id, plan=principal.plan, more_workers=1
        )
        await _check_port_free(agent_id=data.agent_id, listen_port=data.listen_port, worker_id=None)
        heard = await Agent.filter(id=data.agent_id).values(*_AGENT_COLUMNS_OWN)
        row: dict[str, Any] = {
            "agent_id": data.agent_id,
            "name": data.name,
            "gpu_ids": list(data.gpu_ids),
            "listen_port": data.listen_port,
            "enabled": data.enabled,
            "status": "pending",
            "is_default": False,
            "pid": None,
            "restarts": None,
            "vram_mb": data.vram_mb,
            "compute_percent": data.compute_percent,
            "isolation_mode": data.isolation_mode,
            "created_at": now,
        }
        try:
            worker = await Worker.create(**row, updated_at=now)
        except IntegrityError:
            raise _port_conflict(data.listen_port) from None
        queued = await alerts.plan_filled(
            ctx=ctx, user_id=principal.user_id, plan=principal.plan, more_workers=1, now=now
        )
    webhooks.wake_sender(ctx, queued)
    await _published(
        ctx=ctx,
        principal=principal,
        kind=EventKind.WORKER_CREATED,
        agent_id=data.agent_id,
        worker_id=worker.id,
    )
    presence = agent_presence(
        ctx=ctx, last_seen_at=heard[0]["last_seen_at"], shut_down_at=heard[0]["shut_down_at"]
    )
    return worker_view({**row, "id": worker.id}, presence)


def _changes(row: dict[str, Any], data: UpdateWorkerInput) -> dict[str, Any]:
    """The fields the patch really changes (a value equal to the current one is no change).

    A null limit removes it; the other fields cannot be null (refused on input)."""
    wanted = data.model_dump(include=data.model_fields_set)
    return {name: value for name, value in wanted.items() if value != row[name]}


async def update(
    *, ctx: ServerContext, principal: Principal, worker_id: str, data: UpdateWorkerInput
) -> WorkerView:
    """Apply a partial update; a patch that changes nothing writes nothing.

    Disabling a ``running`` worker makes it ``stopping`` (the agent stops it and
    reports ``stopped``). Changing the GPUs also re-derives the hardware vendor of
    the worker's shares.
    """
    async with in_transaction():
        row = await _owned_row(principal=principal, worker_id=worker_id)
        changes = _changes(row, data)
        if not changes:
            return worker_view(row, _presence(ctx, row))
        agent_id = row["agent_id"]
        await _bump_config_version(principal=principal, agent_id=agent_id)
        vendors = None
        if "gpu_ids" in changes:
            vendors = await _check_gpu_ids(agent_id=agent_id, gpu_ids=changes["gpu_ids"])
        if "listen_port" in changes:
            await _check_port_free(
                agent_id=agent_id, listen_port=changes["listen_port"], worker_id=worker_id
            )
        try:
            await Worker.filter(id=worker_id).update(**changes, updated_at=clock.now())
        except IntegrityError:
            raise _port_conflict(changes.get("listen_port", row["listen_port"])) from None
        status = row["status"]
        # Conditional, so a status the agent reported meanwhile is not overwritten blindly.
        disabling = changes.get("enabled") is False
        if disabling and await Worker.filter(id=worker_id, status="running").update(
            status="stopping"
        ):
            status = "stopping"
        if vendors is not None:
            await _refresh_share_vendor(worker_id=worker_id, vendor=vendor_of(vendors))
    await _published(
        ctx=ctx,
        principal=principal,
        kind=EventKind.WORKER_UPDATED,
        agent_id=agent_id,
        worker_id=worker_id,
    )
    return worker_view({**row, **changes, "status": status}, _presence(ctx, row))


async def _refresh_share_vendor(*, worker_id: str, vendor: str) -> None:
    await (
        Share.filter(worker_id=worker_id)
        .exclude(hardware_vendor=vendor)
        .update(hardware_vendor=vendor)
    )


async def delete(*, ctx: ServerContext, principal: Principal, worker_id: str) -> None:
    """Delete a worker with its shares and connections (FK cascades).

    The default worker may be deleted too: it is an ordinary worker that
    registration happens to create, and a user short of worker slots may want
    its port or GPUs for another one. Nothing recreates it.
    """
    async with in_transaction():
        row = await _owned_row(principal=principal, worker_id=worker_id)
        await _bump_config_version(principal=principal, agent_id=row["agent_id"])
        await Worker.filter(id=worker_id).delete()
    await _published(
        ctx=ctx,
        principal=principal,
        kind=EventKind.WORKER_DELETED,
        agent_id=row["agent_id"],
        worker_id=worker_id,
    )
