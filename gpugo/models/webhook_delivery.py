from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

from gpugo.ids import new_id

if TYPE_CHECKING:
    from gpugo.models.webhook_endpoint import WebhookEndpoint


def _delivery_id() -> str:
    return new_id("whd")


class WebhookDelivery(Model):
    # One event for one endpoint (the outbox row): written in the transaction of the change
    # that causes it, sent until a 2xx or until the retry window closes.

    id = fields.CharField(max_length=32, primary_key=True, default=_delivery_id)
    endpoint: fields.ForeignKeyRelation[WebhookEndpoint] = fields.ForeignKeyField(
        "models.WebhookEndpoint", related_name="deliveries", on_delete=fields.CASCADE
    )
    event_type = fields.CharField(max_length=40)
    # The body's "data" object, fixed when the event happened (retries send the same).
    payload = fields.JSONField()
    # When the event happened (the body's created_at).
    created_at = fields.DatetimeField()
    # When this delivery was queued (a redelivery is queued again): the order per endpoint
    # and the start of its retry window.
    queued_at = fields.DatetimeField()
    # pending, delivered or failed.
    status = fields.CharField(max_length=16, default="pending")
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField()
    last_attempt_at = fields.DatetimeField(null=True)
    response_status = fields.IntField(null=True)
    duration_ms = fields.IntField(null=True)
    error = fields.CharField(max_length=300, null=True)
    delivered_at = fields.DatetimeField(null=True)

    class Meta:
        table = "webhook_deliveries"
        # (endpoint_id, status, queued_at): an endpoint's pending deliveries in order;
        # (endpoint_id, queued_at): its recent ones; (status, next_attempt_at): what is due.
        indexes = (
            ("endpoint_id", "status", "queued_at"),
            ("endpoint_id", "queued_at"),
            ("status", "next_attempt_at"),
        )
