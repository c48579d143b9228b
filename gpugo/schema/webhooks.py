"""Webhook endpoints and their deliveries in GraphQL: the same services as
/api/v1/webhooks (docs/webhooks.md), joined to the Query and Mutation roots."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types.unset import UNSET

from gpugo.inputs.common import lookup_id
from gpugo.inputs.webhooks import CreateWebhookInput as CreateWebhookModel
from gpugo.inputs.webhooks import UpdateWebhookInput as UpdateWebhookModel
from gpugo.schema.context import GraphQLInfo
from gpugo.schema.permissions import IsUser, user
from gpugo.schema.types.inputs import parse
from gpugo.services import webhooks

_USER = [IsUser]


@strawberry.type(description="An endpoint with its signing secret, shown only here.")
class WebhookWithSecret:
    webhook: Webhook
    secret: str


@strawberry.type(description="One event for one endpoint, sent until accepted or failed.")
class WebhookDelivery:
    id: strawberry.ID
    webhook_id: strawberry.ID
    event_type: str
    status: str = strawberry.field(description="pending, delivered or failed.")
    attempts: int
    response_status: int | None
    duration_ms: int | None
    error: str | None
    created_at: datetime
    queued_at: datetime
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None


@strawberry.type(description="A URL told about chosen events with signed POSTs.")
class Webhook:
    id: strawberry.ID
    url: str
    description: str
    events: list[str]
    enabled: bool
    disabled_reason: str | None = strawberry.field(
        description="Why the server disabled it (it answered 410 Gone); null otherwise."
    )
    created_at: datetime
    updated_at: datetime

    @strawberry.field(description="Its 50 latest deliveries, newest first.")
    async def deliveries(self, info: GraphQLInfo) -> list[WebhookDelivery]:
        found = await webhooks.list_deliveries(principal=await user(info), webhook_id=self.id)
        return [delivery_node(view) for view in found]


@strawberry.input
class CreateWebhookInput:
    url: str = strawberry.field(description="http(s); must resolve to public addresses.")
    events: list[str] = strawberry.field(description="Event types (docs/webhooks.md).")
    description: str = ""


@strawberry.input(description="Leave a field out to keep its value.")
class UpdateWebhookInput:
    url: str | None = UNSET
    events: list[str] | None = UNSET
    enabled: bool | None = UNSET
    description: str | None = UNSET


def webhook_node(view: webhooks.WebhookView) -> Webhook:
    return Webhook(
        id=strawberry.ID(view.webhook_id),
        url=view.url,
        description=view.description,
        events=list(view.events),
        enabled=view.enabled,
        disabled_reason=view.disabled_reason,
        created_at=view.created_at,
        updated_at=view.updated_at,
    )


def with_secret_node(created: webhooks.WebhookWithSecret) -> WebhookWithSecret:
    return WebhookWithSecret(webhook=webhook_node(created.webhook), secret=created.secret)


def delivery_node(view: webhooks.DeliveryView) -> WebhookDelivery:
    return WebhookDelivery(
        id=strawberry.ID(view.delivery_id),
        webhook_id=strawberry.ID(view.webhook_id),
        event_type=view.event_type,
        status=view.status,
        attempts=view.attempts,
        response_status=view.response_status,
        duration_ms=view.duration_ms,
        error=view.error,
        created_at=view.created_at,
        queued_at=view.queued_at,
        last_attempt_at=view.last_attempt_at,
        next_attempt_at=view.next_attempt_at,
        delivered_at=view.delivered_at,
    )


@strawberry.type
class WebhookQueries:
    @strawberry.field(permission_classes=_USER, description="Webhook endpoints, oldest first.")
    async def webhooks(self, info: GraphQLInfo) -> list[Webhook]:
        found = await webhooks.list_webhooks(principal=await user(info))
        return [webhook_node(view) for view in found]

    @strawberry.field(
        permission_classes=_USER,
        description="How many endpoints an account may have on this server "
        "(GPUGO_WEBHOOKS_MAX_ENDPOINTS); createWebhook beyond it is a conflict.",
    )
    def webhook_endpoints_allowed(self, info: GraphQLInfo) -> int:
        return webhooks.endpoints_allowed(info.context.server)

    @strawberry.field(permission_classes=_USER)
    async def webhook(self, info: GraphQLInfo, id: strawberry.ID) -> Webhook | None:
        webhook_id = lookup_id(id, "webhook")
        return webhook_node(await webhooks.get(principal=await user(info), webhook_id=webhook_id))


@strawberry.type
class WebhookMutations:
    @strawberry.mutation(permission_classes=_USER)
    async def create_webhook(
        self, info: GraphQLInfo, input: CreateWebhookInput
    ) -> WebhookWithSecret | None:
        principal = await user(info)
        data = parse(CreateWebhookModel, input)
        created = await webhooks.create(ctx=info.context.server, principal=principal, data=data)
        return with_secret_node(created)

    @strawberry.mutation(permission_classes=_USER)
    async def update_webhook(
        self, info: GraphQLInfo, id: strawberry.ID, input: UpdateWebhookInput
    ) -> Webhook | None:
        webhook_id = lookup_id(id, "webhook")
        principal = await user(info)
        data = parse(UpdateWebhookModel, input)
        view = await webhooks.update(
            ctx=info.context.server, principal=principal, webhook_id=webhook_id, data=data
        )
        return webhook_node(view)

    @strawberry.mutation(permission_classes=_USER, description="Deletes its deliveries too.")
    async def delete_webhook(self, info: GraphQLInfo, id: strawberry.ID) -> bool | None:
        webhook_id = lookup_id(id, "webhook")
        await webhooks.delete(principal=await user(info), webhook_id=webhook_id)
        return True

    @strawberry.mutation(permission_classes=_USER, description="Queue a ping for the endpoint.")
    async def test_webhook(self, info: GraphQLInfo, id: strawberry.ID) -> WebhookDelivery | None:
        webhook_id = lookup_id(id, "webhook")
        view = await webhooks.test(
            ctx=info.context.server, principal=await user(info), webhook_id=webhook_id
        )
        return delivery_node(view)

    @strawberry.mutation(
        permission_classes=_USER, description="A new signing secret; the old one stops signing."
    )
    async def rotate_webhook_secret(
        self, info: GraphQLInfo, id: strawberry.ID
    ) -> WebhookWithSecret | None:
        webhook_id = lookup_id(id, "webhook")
        rotated = await webhooks.rotate_secret(
            ctx=info.context.server, principal=await user(info), webhook_id=webhook_id
        )
        return with_secret_node(rotated)

    @strawberry.mutation(
        permission_classes=_USER,
        description="Queue a delivery's event again: a new delivery id, the same body data.",
    )
    async def redeliver_webhook_delivery(
        self, info: GraphQLInfo, id: strawberry.ID
    ) -> WebhookDelivery | None:
        delivery_id = lookup_id(id, "delivery")
        view = await webhooks.redeliver(
            ctx=info.context.server, principal=await user(info), delivery_id=delivery_id
        )
        return delivery_node(view)
