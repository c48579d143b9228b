from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

from gpugo.ids import new_id

if TYPE_CHECKING:
    from gpugo.models.user import User
    from gpugo.models.worker import Worker


def _share_id() -> str:
    return new_id("shr")


class Share(Model):
    # A short link through which others reach a worker.

    id = fields.CharField(max_length=32, primary_key=True, default=_share_id)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="shares", on_delete=fields.CASCADE
    )
    worker: fields.ForeignKeyRelation[Worker] = fields.ForeignKeyField(
        "models.Worker", related_name="shares", on_delete=fields.CASCADE
    )
    short_code = fields.CharField(max_length=32, unique=True)
    connection_ip = fields.CharField(max_length=255)
    hardware_vendor = fields.CharField(max_length=32)
    expires_at = fields.DatetimeField(null=True)
    max_uses = fields.IntField(null=True)
    used_count = fields.IntField(default=0)
    created_at = fields.DatetimeField()
    # When the link left its agent's config (used up or expired; the agent was told).
    withdrawn_at = fields.DatetimeField(null=True)

    class Meta:
        table = "shares"
        # worker_id: deleting a worker deletes its shares (cascade) without a scan.
        # (withdrawn_at, expires_at): the sweeper finds links newly expired without a scan.
        indexes = (("user_id", "created_at"), ("worker_id",), ("withdrawn_at", "expires_at"))
