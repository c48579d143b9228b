from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

from gpugo.ids import new_id

if TYPE_CHECKING:
    from gpugo.models.agent import Agent
    from gpugo.models.user import User


def _install_token_id() -> str:
    return new_id("tok")


class InstallToken(Model):
    # A single-use, 30-minute credential with which an agent registers.

    id = fields.CharField(max_length=32, primary_key=True, default=_install_token_id)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="install_tokens", on_delete=fields.CASCADE
    )
    token_hash = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)
    agent: fields.ForeignKeyNullableRelation[Agent] = fields.ForeignKeyField(
        "models.Agent", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    # Kept when the agent is deleted, so the token's history still names the host.
    agent_hostname = fields.CharField(max_length=255, null=True)
    # Set once the sweeper has recorded that it expired unused (one audit event each).
    expiry_noted = fields.BooleanField(default=False)

    class Meta:
        table = "install_tokens"
