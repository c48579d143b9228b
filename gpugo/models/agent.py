from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

from gpugo.ids import new_id

if TYPE_CHECKING:
    from gpugo.models.user import User


def _agent_id() -> str:
    return new_id("agt")


class Agent(Model):
    id = fields.CharField(max_length=32, primary_key=True, default=_agent_id)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="agents", on_delete=fields.CASCADE
    )
    secret_hash = fields.CharField(max_length=64, unique=True)
    hostname = fields.CharField(max_length=255)
    # The owner's own name and labels for the machine; the agent's hostname stays as it is.
    # Nullable (null: no tags) so that the column can be added to a table with rows.
    display_name = fields.CharField(max_length=100, null=True)
    tags = fields.JSONField(null=True)
    os = fields.CharField(max_length=20)
    arch = fields.CharField(max_length=20)
    network_ips = fields.JSONField(default=list)
    # Starts at 1; every change the agent must act on increments it.
    config_version = fields.IntField(default=1)
    # What the agent last pulled from /config, and when: desired vs. fetched.
    fetched_config_version = fields.IntField(null=True)
    config_fetched_at = fields.DatetimeField(null=True)
    last_seen_at = fields.DatetimeField(null=True)
    # Set by a status report carrying event "shutdown"; cleared by the next report.
    shut_down_at = fields.DatetimeField(null=True)
    # Whether the offline event for the current silence has been emitted.
    offline_notified = fields.BooleanField(default=False)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "agents"
        indexes = (("user_id", "created_at"), ("last_seen_at",))
