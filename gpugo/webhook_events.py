"""The events a webhook endpoint can subscribe to (docs/webhooks.md has their bodies)."""

from __future__ import annotations

from enum import StrEnum


class WebhookEvent(StrEnum):
    AGENT_OFFLINE = "agent.offline"
    AGENT_ONLINE = "agent.online"
    AGENT_REGISTERED = "agent.registered"
    AGENT_DELETED = "agent.deleted"
    WORKER_FAILED = "worker.failed"
    SHARE_USED_UP = "share.used_up"
    SHARE_EXPIRED = "share.expired"
    PLAN_LIMIT_REACHED = "plan.limit_reached"
    # Sent by POST /api/v1/webhooks/{id}/test to that endpoint only, subscribed or not.
    PING = "ping"


SUBSCRIBABLE = tuple(e.value for e in WebhookEvent if e is not WebhookEvent.PING)
