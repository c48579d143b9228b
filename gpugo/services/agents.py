"""Agents: registration with an install token, and what users see of their agents."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.transactions import in_transaction

from gpugo import clock
from gpugo.auth.tokens import TokenKind, hash_token, new_token
from gpugo.context import ServerContext
from gpugo.errors import TokenExpired, TokenUsed, Unauthorized
from gpugo.inputs.agents import RegisterAgentInput
from gpugo.models import Agent, Gpu, InstallToken, User, Worker
from gpugo.services import licenses, plans

DEFAULT_WORKER_PORT = 9001
DEFAULT_WORKER_NAME = "default"


@dataclass(frozen=True, slots=True)
class Registered:
    agent_id: str
    agent_secret: str
    license: licenses.License


@dataclass(frozen=True, slots=True)
class AgentState:
    status: str  # pending | online | offline
    reason: str


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
    minutes = ctx.settings.agent_offline_seconds // 60
    return AgentState("offline", f"No report for more than {minutes} minutes.")


async def register(
    *, ctx: ServerContext, install_token_hash: str, data: RegisterAgentInput
) -> Registered:
    """Claim the install token and create the agent, its GPUs and its default worker.

    All or nothing: a refused registration (used or expired token, plan limits)
    leaves no row behind and the token unclaimed.
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
        if token["used_at"] is not None:
            raise TokenUsed()
        if now >= token["expires_at"]:
            raise TokenExpired()
        user_id, plan = token["user_id"], token["user__plan"]
        # Serialises registrations of one user so two cannot both fit the last slot.
        await User.filter(id=user_id).select_for_update().values_list("id", flat=True)
        # The single-use mark: one conditional UPDATE, so of racing registrations exactly
        # one sees a row to claim.
        claimed = await InstallToken.filter(id=token["id"], used_at=None).update(used_at=now)
        if not claimed:
            raise TokenUsed()
        await plans.check_room(
            ctx=ctx, user_id=user_id, plan=plan, more_gpus=len(data.gpus), more_workers=1
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
        gpu_ids = [gpu.gpu_id for gpu in data.gpus]
        await Worker.create(
            agent_id=agent.id,
            name=DEFAULT_WORKER_NAME,
            gpu_ids=gpu_ids,
            listen_port=DEFAULT_WORKER_PORT,
            enabled=True,
            is_default=True,
            created_at=now,
            updated_at=now,
        )
        await InstallToken.filter(id=token["id"]).update(
            agent_id=agent.id, agent_hostname=data.hostname
        )
    return Registered(
        agent_id=agent.id,
        agent_secret=secret,
        license=licenses.issue(ctx=ctx, gpu_ids=gpu_ids, plan=plan),
    )
