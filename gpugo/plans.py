"""Plan names and their default limits (settings may override the numbers)."""

from __future__ import annotations

from dataclasses import dataclass

PLANS = ("free", "personal", "team", "pro")


@dataclass(frozen=True, slots=True)
class PlanLimits:
    max_gpus: int
    max_workers: int
    metrics: bool


DEFAULT_PLAN_LIMITS: dict[str, PlanLimits] = {
    "free": PlanLimits(max_gpus=2, max_workers=2, metrics=False),
    "personal": PlanLimits(max_gpus=8, max_workers=10, metrics=False),
    "team": PlanLimits(max_gpus=64, max_workers=100, metrics=True),
    "pro": PlanLimits(max_gpus=64, max_workers=100, metrics=True),
}
