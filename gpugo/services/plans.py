"""Plan limits and what a user currently uses of them."""

from __future__ import annotations

from dataclasses import dataclass

from gpugo.context import ServerContext
from gpugo.errors import PlanFeatureUnavailable, PlanLimitExceeded
from gpugo.models import Gpu, Worker
from gpugo.plans import PlanLimits


@dataclass(frozen=True, slots=True)
class Usage:
    plan: str
    limits: PlanLimits
    gpus_used: int
    workers_used: int


def limits_for(ctx: ServerContext, plan: str) -> PlanLimits:
    return ctx.settings.plan_limits[plan]


async def usage(*, ctx: ServerContext, user_id: str, plan: str) -> Usage:
    gpus = await Gpu.filter(agent__user_id=user_id).count()
    workers = await Worker.filter(agent__user_id=user_id).count()
    return Usage(plan=plan, limits=limits_for(ctx, plan), gpus_used=gpus, workers_used=workers)


async def check_room(
    *, ctx: ServerContext, user_id: str, plan: str, more_gpus: int = 0, more_workers: int = 0
) -> None:
    """Refuse with plan_limit_exceeded unless the additions fit the plan."""
    current = await usage(ctx=ctx, user_id=user_id, plan=plan)
    limits = current.limits
    if more_gpus and current.gpus_used + more_gpus > limits.max_gpus:
        raise PlanLimitExceeded(
            f"The {plan} plan allows {limits.max_gpus} GPUs; {current.gpus_used} are in use "
            f"and this adds {more_gpus}."
        )
    if more_workers and current.workers_used + more_workers > limits.max_workers:
        raise PlanLimitExceeded(
            f"The {plan} plan allows {limits.max_workers} workers; {current.workers_used} exist."
        )


def require_metrics(ctx: ServerContext, plan: str) -> None:
    if not limits_for(ctx, plan).metrics:
        raise PlanFeatureUnavailable(
            f"Metrics are part of the Team and Pro plans; this account is on {plan}."
        )
