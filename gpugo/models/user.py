from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from gpugo.ids import new_id


def _user_id() -> str:
    return new_id("usr")


class User(Model):
    id = fields.CharField(max_length=32, primary_key=True, default=_user_id)
    # Stored lower-cased so the unique index is case-insensitive on both databases.
    email = fields.CharField(max_length=320, unique=True)
    password_hash = fields.CharField(max_length=255)
    plan = fields.CharField(max_length=16, default="free")
    created_at = fields.DatetimeField()

    class Meta:
        table = "users"
