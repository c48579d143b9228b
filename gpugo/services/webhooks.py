"""Webhook endpoints of users, and the outbox their deliveries wait in.

An endpoint is a URL a user wants told about chosen events, with a signing secret
shown once. Deliveries are rows (``WebhookDelivery``) written by ``record`` inside
the transaction of the change that causes them, so a change that commits is
delivered (at least once) and a change rolled back is never announced; the sender
(``services/webhook_sender.py``) sends them. An outbox, not a buffer: nothing of it
lives only in memory.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.transactions import in_transaction

from gpugo import addresses, clock
from gpugo.auth.principal import Principal
from gpugo.context import ServerContext
from gpugo.errors import Conflict, NotFound, ValidationFailed
from gpugo.events import Event, EventKind
from gpugo.inputs.webhooks import CreateWebhookInput, UpdateWebhookInput
from gpugo.models import WebhookDelivery, WebhookEndpoint
from gpugo.services import plans
from gpugo.webhook_events import WebhookEvent
from gpugo.webhook_signing import new_secret

RECENT_DELIVERIES = 50
DISABLED_ERROR = "The endpoint was disabled before this was delivered."


@dataclass(frozen=True, slots=True)
class WebhookView:
    webhook_id: str
    url: str
    description: str
    events: tuple[str, ...]
    enabled: bool
    # Why the server disabled it (it answered 410 Gone), else None.
    disabled_reason: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class WebhookWithSecret:
    webhook: WebhookView
    # Shown once, at creation and rotation.
    secret: str


@dataclass(frozen=True, slots=True)
class DeliveryView:
    delivery_id: str
    webhook_id: str
    event_type: str
    # pending, delivered or failed.
    status: str
    attempts: int
    response_status: int | None
    duration_ms: int | None
    error: str | None
    created_at: datetime
    queued_at: datetime
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None


_ENDPOINT_COLUMNS = (
    "id",
    "url",
    "description",
    "events",
    "enabled",
    "disabled_reason",
    "created_at",
    "updated_at",
)
_DELIVERY_COLUMNS = (
    "id",
    "endpoint_id",
    "event_type",
    "status",
    "attempts",
    "response_status",
    "duration_ms",
    "error",
    "created_at",
    "queued_at",
    "last_attempt_at",
    "next_attempt_at",
    "delivered_at",
)


def _view(row: Mapping[str, Any]) -> WebhookView:
    return WebhookView(
        webhook_id=row["id"],
        url=row["url"],
        description=row["description"],
        events=tuple(row["events"] or ()),
        enabled=row["enabled"],
        disabled_reason=row["disabled_reason"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _delivery_view(row: Mapping[str, Any]) -> DeliveryView:
    return DeliveryView(
        delivery_id=row["id"],
        webhook_id=row["endpoint_id"],
        event_type=row["event_type"],
        status=row["status"],
        attempts=row["attempts"],
        response_status=row["response_status"],
        duration_ms=row["duration_ms"],
        error=row["error"],
        created_at=row["created_at"],
        queued_at=row["queued_at"],
        last_attempt_at=row["last_attempt_at"],
        next_attempt_at=row["next_attempt_at"] if row["status"] == "pending" else None,
        delivered_at=row["delivered_at"],
    )


async def _check_url(ctx: ServerContext, url: str) -> None:
    try:
        await addresses.check(
            url,
            resolver=ctx.webhooks.resolver,
            allow_private=ctx.settings.webhooks_allow_private,
        )
    except addresses.AddressRefused as exc:
        raise ValidationFailed.field("url", f"The URL {exc}.") from None


async def _owned(principal: Principal, webhook_id: str) -> dict[str, Any]:
    rows = await WebhookEndpoint.filter(user_id=principal.user_id, id=webhook_id).values(
        *_ENDPOINT_COLUMNS
    )
    if not rows:
        raise NotFound("No such webhook.")
    return rows[0]


def endpoints_allowed(ctx: ServerContext) -> int:
    """How many endpoints an account may have on this installation (said before the
    form, so that the 409 beyond it is no surprise)."""
    return ctx.settings.webhooks_max_endpoints


async def create(
    *, ctx: ServerContext, principal: Principal, data: CreateWebhookInput
) -> WebhookWithSecret:
    """A new endpoint and its signing secret (shown once); at most the configured number
    per user (409 beyond), its URL refused unless it resolves to allowed addresses."""
    await _check_url(ctx, data.url)
    secret = new_secret()
    now = clock.now()
    limit = endpoints_allowed(ctx)
    async with in_transaction():
        # Serialises the count with a concurrent creation of the same user.
        await plans.lock_usage(principal.user_id)
        if await WebhookEndpoint.filter(user_id=principal.user_id).count() >= limit:
            raise Conflict(f"An account may have at most {limit} webhook endpoints.")
        endpoint = await WebhookEndpoint.create(
            user_id=principal.user_id,
            url=data.url,
            description=data.description,
            events=sorted(set(data.events)),
            secret_encrypted=ctx.webhooks.box.seal(secret),
            created_at=now,
            updated_at=now,
        )
    await _listening_changed(ctx, principal)
    return WebhookWithSecret(await get(principal=principal, webhook_id=endpoint.id), secret)


async def list_webhooks(*, principal: Principal) -> list[WebhookView]:
    rows = (
        await WebhookEndpoint.filter(user_id=principal.user_id)
        .order_by("created_at", "id")
        .values(*_ENDPOINT_COLUMNS)
    )
    return [_view(row) for row in rows]


async def get(*, principal: Principal, webhook_id: str) -> WebhookView:
    return _view(await _owned(principal, webhook_id))


async def update(
    *, ctx: ServerContext, principal: Principal, webhook_id: str, data: UpdateWebhookInput
) -> WebhookView:
    """Change the URL, events, description or enabled; disabling fails what still waits."""
    await _owned(principal, webhook_id)
    if data.url is not None:
        await _check_url(ctx, data.url)
    changes: dict[str, Any] = {"updated_at": clock.now()}
    if data.url is not None:
        changes["url"] = data.url
    if data.events is not None:
        changes["events"] = sorted(set(data.events))
    if data.description is not None:
        changes["description"] = data.description
    if data.enabled is not None:
        changes["enabled"] = data.enabled
        if data.enabled:
            changes["disabled_reason"] = None
    async with in_transaction():
        updated = await WebhookEndpoint.filter(user_id=principal.user_id, id=webhook_id).update(
            **changes
        )
        if not updated:
            raise NotFound("No such webhook.")
        if data.enabled is False:
            await fail_pending(webhook_id, DISABLED_ERROR)
    if data.events is not None or data.enabled:
        await _listening_changed(ctx, principal)
    return await get(principal=principal, webhook_id=webhook_id)


async def _listening_changed(ctx: ServerContext, principal: Principal) -> None:
    """After the commit. Only growth needs telling: a report that finds a listener gone
    looks the endpoints up again (services/alerts.py) and sends nothing."""
    await ctx.events.publish(Event(EventKind.WEBHOOKS_CHANGED, principal.user_id))


async def fail_pending(webhook_id: str, error: str) -> int:
    """Mark what still waits for this endpoint failed (it will not be sent)."""
    return await WebhookDelivery.filter(endpoint_id=webhook_id, status="pending").update(
        status="failed", error=error
    )


async def delete(*, principal: Principal, webhook_id: str) -> None:
    """Delete the endpoint and its deliveries (cascade)."""
    if not await WebhookEndpoint.filter(user_id=principal.user_id, id=webhook_id).delete():
        raise NotFound("No such webhook.")


async def rotate_secret(
    *, ctx: ServerContext, principal: Principal, webhook_id: str
) -> WebhookWithSecret:
    """A new signing secret (shown once); the old one signs nothing from now on."""
    secret = new_secret()
    updated = await WebhookEndpoint.filter(user_id=principal.user_id, id=webhook_id).update(
        secret_encrypted=ctx.webhooks.box.seal(secret), updated_at=clock.now()
    )
    if not updated:
        raise NotFound("No such webhook.")
    return WebhookWithSecret(await get(principal=principal, webhook_id=webhook_id), secret)


async def test(*, ctx: ServerContext, principal: Principal, webhook_id: str) -> DeliveryView:
    """Queue a ``ping`` for this endpoint (409 while it is disabled)."""
    endpoint = await _owned(principal, webhook_id)
    if not endpoint["enabled"]:
        raise Conflict("The webhook is disabled; enable it first.")
    now = clock.now()
    delivery = await WebhookDelivery.create(
        endpoint_id=webhook_id,
        event_type=WebhookEvent.PING.value,
        payload={"webhook": {"webhook_id": webhook_id, "url": endpoint["url"]}},
        created_at=now,
        queued_at=now,
        next_attempt_at=now,
    )
    ctx.webhooks.wake()
    return await _delivery(webhook_id, delivery.id)


async def _delivery(webhook_id: str, delivery_id: str) -> DeliveryView:
    rows = await WebhookDelivery.filter(endpoint_id=webhook_id, id=delivery_id).values(
        *_DELIVERY_COLUMNS
    )
    if not rows:
        raise NotFound("No such delivery.")
    return _delivery_view(rows[0])


async def list_deliveries(*, principal: Principal, webhook_id: str) -> list[DeliveryView]:
    """The endpoint's most recent deliveries, newest first."""
    await _owned(principal, webhook_id)
    rows = (
        await WebhookDelivery.filter(endpoint_id=webhook_id)
        .order_by("-queued_at", "-id")
        .limit(RECENT_DELIVERIES)
        .values(*_DELIVERY_COLUMNS)
    )
    return [_delivery_view(row) for row in rows]


async def redeliver(
    *,
    ctx: ServerContext,
    principal: Principal,
    delivery_id: str,
    webhook_id: str | None = None,
) -> DeliveryView:
    """Queue the same event again for its endpoint: a new delivery (a new id), same body.
    ``webhook_id``, when given (REST's path), must be the delivery's endpoint."""
    query = WebhookDelivery.filter(endpoint__user_id=principal.user_id, id=delivery_id)
    if webhook_id is not None:
        query = query.filter(endpoint_id=webhook_id)
    rows = await query.values(
        "endpoint_id", "endpoint__enabled", "event_type", "payload", "created_at"
    )
    if not rows:
        raise NotFound("No such delivery.")
    if not rows[0]["endpoint__enabled"]:
        raise Conflict("The webhook is disabled; enable it first.")
    webhook_id = rows[0]["endpoint_id"]
    now = clock.now()
    again = await WebhookDelivery.create(
        endpoint_id=webhook_id,
        event_type=rows[0]["event_type"],
        payload=rows[0]["payload"],
        created_at=rows[0]["created_at"],
        queued_at=now,
        next_attempt_at=now,
    )
    ctx.webhooks.wake()
    return await _delivery(webhook_id, again.id)


# --- the outbox -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One event of one user, for every endpoint of theirs that subscribed to it."""

    user_id: str
    event: WebhookEvent
    data: dict[str, Any]


async def record(*, occurrences: Iterable[Occurrence], now: datetime) -> int:
    """Inside the caller's transaction: a delivery per subscribed, enabled endpoint.

    One SELECT for all the users named, and one INSERT when anyone listens; nothing more
    when no one does (the common case on the hot paths). Returns how many were queued.
    """
    occurrences = list(occurrences)
    if not occurrences:
        return 0
    user_ids = sorted({o.user_id for o in occurrences})
    endpoints = await WebhookEndpoint.filter(user_id__in=user_ids, enabled=True).values_list(
        "id", "user_id", "events"
    )
    if not endpoints:
        return 0
    rows = [
        WebhookDelivery(
            endpoint_id=endpoint_id,
            event_type=o.event.value,
            payload=o.data,
            created_at=now,
            queued_at=now,
            next_attempt_at=now,
        )
        for o in occurrences
        for endpoint_id, user_id, events in endpoints
        if user_id == o.user_id and o.event.value in (events or ())
    ]
    if rows:
        await WebhookDelivery.bulk_create(rows)
    return len(rows)


def wake_sender(ctx: ServerContext, queued: int) -> None:
    """After the commit: this instance's sender looks at once (the others within a poll)."""
    if queued:
        ctx.webhooks.wake()


async def subscribed(user_ids: Iterable[str], event: WebhookEvent) -> set[str]:
    """The users (of those named) with an enabled endpoint that listens to ``event``."""
    user_ids = sorted(set(user_ids))
    if not user_ids:
        return set()
    endpoints = await WebhookEndpoint.filter(user_id__in=user_ids, enabled=True).values_list(
        "user_id", "events"
    )
    return {user_id for user_id, events in endpoints if event.value in (events or ())}


Build = Callable[[list[str]], Awaitable[Mapping[str, dict[str, Any]]]]


async def announce(
    *, event: WebhookEvent, subjects: Mapping[str, str], build: Build, now: datetime
) -> int:
    """Inside the caller's transaction: ``event`` about each subject (its id -> its owner's
    user id), for the owners that listen. ``build`` reads the bodies' data (subject id ->
    data) only for those: nothing but one SELECT when no one listens."""
    listening = await subscribed(subjects.values(), event)
    keys = [key for key, user_id in subjects.items() if user_id in listening]
    if not keys:
        return 0
    data = await build(keys)
    return await record(
        occurrences=[Occurrence(subjects[key], event, data[key]) for key in keys if key in data],
        now=now,
    )
