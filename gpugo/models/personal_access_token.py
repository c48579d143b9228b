from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

from gpugo.ids import new_id

if TYPE_CHECKING:
    from gpugo.models.user import User


def _pat_id() -> str:
    return new_id("pat")


class PersonalAccessToken(Model):
    # At most one per user (unique user_id): regenerating replaces the row.

    id = fields.CharField(max_length=32, primary_key=True, default=_pat_id)
    user: fields.OneToOneRelation[User] = fields.OneToOneField(
        "models.User", related_name="personal_access_token", on_delete=fields.CASCADE
    )
    token_hash = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField(null=True)
    last_used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "personal_access_tokens"
