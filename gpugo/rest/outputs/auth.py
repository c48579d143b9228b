"""/api/v1/auth bodies."""

from __future__ import annotations

from typing_extensions import TypedDict

from gpugo.rest.outputs.common import Timestamp


class UserBody(TypedDict):
    user_id: str
    email: str
    plan: str
    created_at: Timestamp


class PlanLimitsBody(TypedDict):
    max_gpus: int
    max_workers: int
    metrics: bool


class UsageBody(TypedDict):
    gpus: int
    workers: int


class MeBody(UserBody):
    limits: PlanLimitsBody
    usage: UsageBody


class PasswordChanged(TypedDict):
    success: bool
    # The account's other sessions, ended by the change (the asking one stays).
    sessions_ended: int
