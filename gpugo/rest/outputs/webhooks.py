"""/api/v1/webhooks bodies."""

from __future__ import annotations

from typing import Literal

from typing_extensions import TypedDict

from gpugo.rest.outputs.common import NullableTimestamp, Timestamp

DeliveryStatus = Literal["pending", "delivered", "failed"]


class Webhook(TypedDict):
    webhook_id: str
    url: str
    description: str
    events: list[str]
    enabled: bool
    # Why the server disabled it (the endpoint answered 410 Gone), else null.
    disabled_reason: str | None
    created_at: Timestamp
    updated_at: Timestamp


class WebhookWithSecret(Webhook):
    # The signing secret: shown here only (creation and rotation).
    secret: str


class WebhookList(TypedDict):
    webhooks: list[Webhook]


class WebhookDelivery(TypedDict):
    delivery_id: str
    webhook_id: str
    event_type: str
    status: DeliveryStatus
    attempts: int
    # The last attempt's HTTP status, its duration and what went wrong (null when it
    # was delivered or not yet tried).
    response_status: int | None
    duration_ms: int | None
    error: str | None
    created_at: Timestamp
    queued_at: Timestamp
    last_attempt_at: NullableTimestamp
    next_attempt_at: NullableTimestamp
    delivered_at: NullableTimestamp


class WebhookDeliveryList(TypedDict):
    deliveries: list[WebhookDelivery]
