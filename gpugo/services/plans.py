"""Plan limits and what a user currently uses of them."""

from __future__ import annotations

from dataclasses import dataclass

from gpugo.context import ServerContext
from gpugo.errors import PlanFeatureUnavailable, PlanLimitExceeded
from gpugo.models import Gpu, User, Worker
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


async def lock_usage(user_id: str) -> None:
    """Inside a transaction: serialise changes to one user's GPU and worker counts, so two
    concurrent additions cannot both take the last slot (PostgreSQL row lock; SQLite
    runs one transaction at a time anyway).

    A model query on purpose: Tortoise drops FOR UPDATE from values()/values_list().
    """
    await User.filter(id=user_id).select_for_update().only("id")


async def check_room(
    *, ctx: ServerContext, user_id: str, plan: str, more_gpus: int = 0, more_workers: int = 0
) -> None:
    """Refuse with plan_limit_exceeded unless the additions fit the plan (call lock_usage
    first in the same transaction). Counts only what is being added."""
    limits = limits_for(ctx, plan)
    if more_gpus:
        gpus_used = await Gpu.filter(agent__user_id=user_id).count()
        if gpus_used + more_gpus > limits.max_gpus:
            raise PlanLimitExceeded(
                f"The {plan} plan allows {limits.max_gpus} GPUs; {gpus_used} are in use "
                f"and this adds {more_gpus}."
            )
    if more_workers:
        workers_used = await Worker.filter(agent__user_id=user_id).count()
        if workers_used + more_workers > limits.max_workers:
            raise PlanLimitExceeded(
                f"The {plan} plan allows {limits.max_workers} workers; {workers_used} exist."
            )


def require_metrics(ctx: ServerContext, plan: str) -> None:
    if not limits_for(ctx, plan).metrics:
        raise PlanFeatureUnavailable(
            f"Metrics are part of the Team and Pro plans; this account is on {plan}."
        )
