from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

from gpugo.ids import new_id

if TYPE_CHECKING:
    from gpugo.models.user import User


def _session_id() -> str:
    return new_id("ses")


class Session(Model):
    # A dashboard login. The cookie carries a random secret; only its hash is here.

    id = fields.CharField(max_length=32, primary_key=True, default=_session_id)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="sessions", on_delete=fields.CASCADE
    )
    token_hash = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField()
    # Refreshed at most once a minute; idle expiry counts from here.
    last_seen_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    # Where the login came from, for the user's list of sessions.
    address = fields.CharField(max_length=64, null=True)
    user_agent = fields.CharField(max_length=256, null=True)

    class Meta:
        table = "sessions"
