"""/api/v1/webhooks: users' webhook endpoints and their deliveries (docs/webhooks.md)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from gpugo.inputs.webhooks import CreateWebhookInput, UpdateWebhookInput
from gpugo.rest import requests
from gpugo.rest.outputs.common import Success
from gpugo.rest.outputs.webhooks import (
    Webhook,
    WebhookDelivery,
    WebhookDeliveryList,
    WebhookList,
    WebhookWithSecret,
)
from gpugo.rest.paths import API
from gpugo.rest.responses import SUCCESS, Created, Ok
from gpugo.services import webhooks
from gpugo.timefmt import iso


def webhook_json(webhook: webhooks.WebhookView) -> Webhook:
    return {
        "webhook_id": webhook.webhook_id,
        "url": webhook.url,
        "description": webhook.description,
        "events": list(webhook.events),
        "enabled": webhook.enabled,
        "disabled_reason": webhook.disabled_reason,
        "created_at": iso(webhook.created_at),
        "updated_at": iso(webhook.updated_at),
    }


def with_secret_json(created: webhooks.WebhookWithSecret) -> WebhookWithSecret:
    return {**webhook_json(created.webhook), "secret": created.secret}


def delivery_json(delivery: webhooks.DeliveryView) -> WebhookDelivery:
    return {
        "delivery_id": delivery.delivery_id,
        "webhook_id": delivery.webhook_id,
        "event_type": delivery.event_type,
        "status": delivery.status,  # type: ignore[typeddict-item]
        "attempts": delivery.attempts,
        "response_status": delivery.response_status,
        "duration_ms": delivery.duration_ms,
        "error": delivery.error,
        "created_at": iso(delivery.created_at),
        "queued_at": iso(delivery.queued_at),
        "last_attempt_at": iso(delivery.last_attempt_at),
        "next_attempt_at": iso(delivery.next_attempt_at),
        "delivered_at": iso(delivery.delivered_at),
    }


def _id(request: Request) -> str:
    return request.path_params["webhook_id"]


async def list_webhooks(request: Request) -> Ok[WebhookList]:
    principal = await requests.user(request)
    found = await webhooks.list_webhooks(principal=principal)
    return Ok({"webhooks": [webhook_json(w) for w in found]})


async def create(request: Request) -> Created[WebhookWithSecret]:
    ctx = requests.server(request)
    principal = await requests.user(request)
    data = await requests.read_json(request, CreateWebhookInput)
    created = await webhooks.create(ctx=ctx, principal=principal, data=data)
    return Created(with_secret_json(created))


async def get(request: Request) -> Ok[Webhook]:
    principal = await requests.user(request)
    return Ok(webhook_json(await webhooks.get(principal=principal, webhook_id=_id(request))))


async def update(request: Request) -> Ok[Webhook]:
    ctx = requests.server(request)
    principal = await requests.user(request)
    data = await requests.read_json(request, UpdateWebhookInput)
    webhook = await webhooks.update(
        ctx=ctx, principal=principal, webhook_id=_id(request), data=data
    )
    return Ok(webhook_json(webhook))


async def delete(request: Request) -> Ok[Success]:
    principal = await requests.user(request)
    await webhooks.delete(principal=principal, webhook_id=_id(request))
    return Ok(SUCCESS)


async def test(request: Request) -> Ok[WebhookDelivery]:
    ctx = requests.server(request)
    principal = await requests.user(request)
    delivery = await webhooks.test(ctx=ctx, principal=principal, webhook_id=_id(request))
    return Ok(delivery_json(delivery))


async def rotate_secret(request: Request) -> Ok[WebhookWithSecret]:
    ctx = requests.server(request)
    principal = await requests.user(request)
    rotated = await webhooks.rotate_secret(ctx=ctx, principal=principal, webhook_id=_id(request))
    return Ok(with_secret_json(rotated))


async def list_deliveries(request: Request) -> Ok[WebhookDeliveryList]:
    principal = await requests.user(request)
    found = await webhooks.list_deliveries(principal=principal, webhook_id=_id(request))
    return Ok({"deliveries": [delivery_json(d) for d in found]})


async def redeliver(request: Request) -> Ok[WebhookDelivery]:
    ctx = requests.server(request)
    principal = await requests.user(request)
    delivery = await webhooks.redeliver(
        ctx=ctx,
        principal=principal,
        webhook_id=_id(request),
        delivery_id=request.path_params["delivery_id"],
    )
    return Ok(delivery_json(delivery))


_ONE = f"{API}/webhooks/{{webhook_id:id}}"

routes: list[BaseRoute] = [
    Route(f"{API}/webhooks", list_webhooks, methods=["GET"]),
    Route(f"{API}/webhooks", create, methods=["POST"]),
    Route(_ONE, get, methods=["GET"]),
    Route(_ONE, update, methods=["PATCH"]),
    Route(_ONE, delete, methods=["DELETE"]),
    Route(f"{_ONE}/test", test, methods=["POST"]),
    Route(f"{_ONE}/rotate-secret", rotate_secret, methods=["POST"]),
    Route(f"{_ONE}/deliveries", list_deliveries, methods=["GET"]),
    Route(f"{_ONE}/deliveries/{{delivery_id:id}}/redeliver", redeliver, methods=["POST"]),
]
