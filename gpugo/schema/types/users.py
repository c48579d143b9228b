from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from gpugo.schema.context import GraphQLInfo
from gpugo.services import plans, users


@strawberry.enum(description="The account's plan; it sets the limits below.")
class Plan(Enum):
    FREE = "free"
    PERSONAL = "personal"
    TEAM = "team"
    PRO = "pro"


@strawberry.type(description="What the plan allows and what is in use.")
class PlanUsage:
    gpus_used: int
    gpus_allowed: int
    workers_used: int
    workers_allowed: int
    metrics_included: bool


@strawberry.type(description="The signed-in user.")
class User:
    id: strawberry.ID
    email: str
    plan: Plan
    created_at: datetime

    @strawberry.field(description="Limits of the plan and current usage (GPUs over all agents).")
    async def usage(self, info: GraphQLInfo) -> PlanUsage:
        current = await plans.usage(ctx=info.context.server, user_id=self.id, plan=self.plan.value)
        return PlanUsage(
            gpus_used=current.gpus_used,
            gpus_allowed=current.limits.max_gpus,
            workers_used=current.workers_used,
            workers_allowed=current.limits.max_workers,
            metrics_included=current.limits.metrics,
        )


def user_node(view: users.UserView) -> User:
    return User(
        id=strawberry.ID(view.id),
        email=view.email,
        plan=Plan(view.plan),
        created_at=view.created_at,
    )
