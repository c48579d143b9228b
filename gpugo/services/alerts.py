"""What each change tells webhooks: the outbox writes of the services, one function per
cause, each called inside the transaction of its change (see services/webhooks.py).

They return how many deliveries they queued; the caller wakes the sender after its
commit (``webhooks.wake_sender``). Who listens is one SELECT; nothing else is read
unless someone does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from gpugo.context import ServerContext
from gpugo.models import Agent, Gpu, Worker
from gpugo.services import webhook_payloads as payloads
from gpugo.services import webhooks
from gpugo.webhook_events import WebhookEvent

SILENT = "silent"
SHUTDOWN = "shutdown"


async def agent_registered(*, user_id: str, agent_id: str, now: datetime) -> int:
    async def build(keys: list[str]) -> dict[str, dict[str, Any]]:
        found = await payloads.agents(keys, status="pending")
        return {key: {"agent": agent} for key, agent in found.items()}

    return await webhooks.announce(
        event=WebhookEvent.AGENT_REGISTERED, subjects={agent_id: user_id}, build=build, now=now
    )


async def agent_deleted(*, ctx: ServerContext, user_id: str, agent_id: str, now: datetime) -> int:
    """Before the agent's row goes: its body is read first, with the status it had."""
    # services.agents imports this module: its status rule is imported when needed.
    from gpugo.services.agents import agent_state

    async def build(keys: list[str]) -> dict[str, dict[str, Any]]:
        # Its owner's only: another user's id finds nothing (and the deletion 404s).
        rows = await Agent.filter(id__in=keys, user_id=user_id).values(
            "id", "last_seen_at", "shut_down_at"
        )
        found = {}
        for row in rows:
            state = agent_state(
                ctx=ctx, last_seen_at=row["last_seen_at"], shut_down_at=row["shut_down_at"], now=now
            )
            agent = await payloads.agent(row["id"], status=state.status)
            if agent is not None:
                found[row["id"]] = {"agent": agent}
        return found

    return await webhooks.announce(
        event=WebhookEvent.AGENT_DELETED, subjects={agent_id: user_id}, build=build, now=now
    )


async def agents_offline(*, owners: Mapping[str, str], reason: str, now: datetime) -> int:
    """``owners``: agent id -> user id of agents that just went offline."""

    async def build(keys: list[str]) -> dict[str, dict[str, Any]]:
        found = await payloads.agents(keys, status="offline")
        return {key: {"agent": agent, "reason": reason} for key, agent in found.items()}

    return await webhooks.announce(
        event=WebhookEvent.AGENT_OFFLINE, subjects=dict(owners), build=build, now=now
    )


async def agent_online(*, user_id: str, agent_id: str, now: datetime) -> int:
    async def build(keys: list[str]) -> dict[str, dict[str, Any]]:
        found = await payloads.agents(keys, status="online")
        return {key: {"agent": agent} for key, agent in found.items()}

    return await webhooks.announce(
        event=WebhookEvent.AGENT_ONLINE, subjects={agent_id: user_id}, build=build, now=now
    )


def failed(
    status_before: str, restarts_before: int | None, status: str, restarts: int
) -> str | None:
    """Why a worker's report may be a failure (``worker.failed``), or None.

    Workers have no "failed" status: the agent restarts a crashed worker (its restart
    count rises) or reports it stopped. A running worker reported stopped failed unless
    it was disabled (asked to stop): ``workers_failed`` checks that.
    """
    if restarts > (restarts_before or 0):
        return "restarted"
    if status_before == "running" and status == "stopped":
        return "stopped"
    return None


async def workers_failed(*, user_id: str, reasons: Mapping[str, str], now: datetime) -> int:
    """``reasons``: worker id -> "restarted" or "stopped" (see ``failed``)."""

    async def build(keys: list[str]) -> dict[str, dict[str, Any]]:
        found = await payloads.workers(keys)
        return {
            key: {"worker": w, "reason": reasons[key]}
            for key, w in found.items()
            # A disabled worker was asked to stop.
            if reasons[key] != "stopped" or w["enabled"]
        }

    return await webhooks.announce(
        event=WebhookEvent.WORKER_FAILED,
        subjects={worker_id: user_id for worker_id in reasons},
        build=build,
        now=now,
    )


async def shares_withdrawn(*, event: WebhookEvent, owners: Mapping[str, str], now: datetime) -> int:
    """``share.used_up`` or ``share.expired``; ``owners``: share id -> user id."""

    async def build(keys: list[str]) -> dict[str, dict[str, Any]]:
        found = await payloads.shares(keys)
        return {key: {"share": share} for key, share in found.items()}

    return await webhooks.announce(event=event, subjects=dict(owners), build=build, now=now)


async def plan_filled(
    *,
    ctx: ServerContext,
    user_id: str,
    plan: str,
    more_gpus: int = 0,
    more_workers: int = 0,
    now: datetime,
) -> int:
    """After an addition in the same transaction: ``plan.limit_reached`` for each limit
    (GPUs, workers) that the addition filled exactly. The next addition is refused."""
    if not (more_gpus or more_workers):
        return 0
    if user_id not in await webhooks.subscribed([user_id], WebhookEvent.PLAN_LIMIT_REACHED):
        return 0
    limits = ctx.settings.plan_limits[plan]
    occurrences = []
    counted: Iterable[tuple[str, int, int, Any]] = (
        ("gpus", more_gpus, limits.max_gpus, Gpu.filter(agent__user_id=user_id)),
        ("workers", more_workers, limits.max_workers, Worker.filter(agent__user_id=user_id)),
    )
    for limit, added, maximum, query in counted:
        if not added:
            continue
        used = await query.count()
        if used - added < maximum <= used:
            data = {"limit": limit, "plan": plan, "max": maximum, "used": used}
            occurrences.append(webhooks.Occurrence(user_id, WebhookEvent.PLAN_LIMIT_REACHED, data))
    return await webhooks.record(occurrences=occurrences, now=now)
