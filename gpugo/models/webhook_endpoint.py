from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

from gpugo.ids import new_id

if TYPE_CHECKING:
    from gpugo.models.user import User


def _webhook_id() -> str:
    return new_id("whk")


class WebhookEndpoint(Model):
    # A user's URL that is told about chosen events (signed POSTs).

    id = fields.CharField(max_length=32, primary_key=True, default=_webhook_id)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="webhook_endpoints", on_delete=fields.CASCADE
    )
    url = fields.CharField(max_length=2048)
    description = fields.CharField(max_length=200, default="")
    # Event type names, e.g. ["agent.offline", "share.used_up"].
    events = fields.JSONField()
    enabled = fields.BooleanField(default=True)
    # Why the server disabled it (an endpoint that answered 410), else null.
    disabled_reason = fields.CharField(max_length=200, null=True)
    # The signing secret, encrypted with the server's webhook key (gpugo.webhooks.secrets):
    # HMAC needs the secret itself, so a hash would not do.
    secret_encrypted = fields.TextField()
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()
    # The sender that sends this endpoint's deliveries, until when (one at a time, in order).
    lease_owner = fields.CharField(max_length=64, null=True)
    lease_until = fields.DatetimeField(null=True)

    class Meta:
        table = "webhook_endpoints"
        indexes = (("user_id", "created_at"),)
