"""The configuration an agent pulls: every worker it must run (or stop), and a fresh license."""

from __future__ import annotations

from dataclasses import dataclass

from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from gpugo import clock
from gpugo.auth.principal import Principal
from gpugo.context import ServerContext
from gpugo.errors import Unauthorized
from gpugo.events import Event, EventKind
from gpugo.models import Agent, Worker
from gpugo.services import licenses, shares
from gpugo.services.agents import license_gpu_ids


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    worker_id: str
    gpu_ids: tuple[str, ...]
    vram_mb: int | None
    compute_percent: int | None
    isolation_mode: str | None
    listen_port: int
    enabled: bool
    # The short codes of its live share links: the worker lets their holders in.
    share_codes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AgentConfig:
    config_version: int
    workers: tuple[WorkerConfig, ...]
    license: licenses.License


async def pull(*, ctx: ServerContext, principal: Principal) -> AgentConfig:
    """The agent's desired state; records which version it fetched, and when.

    Disabled workers are included (``enabled: false``) so the agent knows to stop them.
    """
    agent_id = principal.agent_id
    if agent_id is None:
        raise Unauthorized("An agent secret is required.")
    now = clock.now()
    async with in_transaction():
        # First, so the row lock (PostgreSQL) holds config_version still while we read.
        # Conditional, so that only a pull of a version not fetched before is published.
        advanced = await Agent.filter(
            Q(fetched_config_version__isnull=True)
            | Q(fetched_config_version__lt=F("config_version")),
            id=agent_id,
        ).update(fetched_config_version=F("config_version"), config_fetched_at=now)
        if not advanced:
            fetched = await Agent.filter(id=agent_id).update(config_fetched_at=now)
            if not fetched:
                raise Unauthorized("Unknown agent secret.")  # deleted meanwhile
        rows = await Agent.filter(id=agent_id).values(
            "config_version", "gpus__gpu_id", "gpus__gpu_index"
        )
        workers = (
            await Worker.filter(agent_id=agent_id)
            .order_by("created_at", "id")
            .values(
                "id",
                "gpu_ids",
                "vram_mb",
                "compute_percent",
                "isolation_mode",
                "listen_port",
                "enabled",
            )
        )
        share_codes = await shares.live_codes(agent_id=agent_id, now=now)
    version = rows[0]["config_version"]
    if advanced:
        # Desired and fetched versions converge: live views show it.
        await ctx.events.publish(
            Event(
                EventKind.AGENT_UPDATED,
                principal.user_id,
                agent_id,
                data={"changed": ["config_fetched"], "fetched_config_version": version},
            )
        )
    gpu_ids = license_gpu_ids(
        (row["gpus__gpu_index"], row["gpus__gpu_id"])
        for row in rows
        if row["gpus__gpu_id"] is not None
    )
    return AgentConfig(
        config_version=version,
        workers=tuple(
            WorkerConfig(
                worker_id=w["id"],
                gpu_ids=tuple(w["gpu_ids"]),
                vram_mb=w["vram_mb"],
                compute_percent=w["compute_percent"],
                isolation_mode=w["isolation_mode"],
                listen_port=w["listen_port"],
                enabled=w["enabled"],
                share_codes=tuple(share_codes.get(w["id"], ())),
            )
            for w in workers
        ),
        license=licenses.issue(ctx=ctx, gpu_ids=gpu_ids, plan=principal.plan),
    )
