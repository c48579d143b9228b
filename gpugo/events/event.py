"""A domain event: what happened to which resource of which user. Ids, never secrets."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson


class EventKind(StrEnum):
    AGENT_REGISTERED = "agent.registered"
    AGENT_ONLINE = "agent.online"
    AGENT_OFFLINE = "agent.offline"
    AGENT_UPDATED = "agent.updated"
    AGENT_DELETED = "agent.deleted"
    WORKER_CREATED = "worker.created"
    WORKER_UPDATED = "worker.updated"
    WORKER_DELETED = "worker.deleted"
    WORKER_STATUS_CHANGED = "worker.status_changed"
    CONNECTIONS_CHANGED = "worker.connections_changed"
    CONFIG_CHANGED = "agent.config_changed"
    INSTALL_TOKEN_USED = "install_token.used"  # noqa: S105 (an event name)
    # A registration with the token was refused (data: code, message, hostname).
    INSTALL_TOKEN_REFUSED = "install_token.refused"  # noqa: S105 (an event name)
    METRICS_REPORTED = "agent.metrics_reported"
    # A user asked the agent to restart one of its workers (resource_id: the worker).
    WORKER_RESTART_REQUESTED = "worker.restart_requested"
    # What the user's webhook endpoints listen to may have grown (created, events changed,
    # enabled): every instance drops the status-report states it holds for the user
    # (they carry what is listened to). Not an agent event: no subscription shows it.
    WEBHOOKS_CHANGED = "webhooks.changed"


class UnknownKind(ValueError):
    """An event kind this version does not know: sent by an instance of another version
    during a rolling upgrade (a kind added since, or one retired)."""


@dataclass(frozen=True, slots=True)
class Event:
    kind: EventKind
    user_id: str
    agent_id: str | None = None
    # The resource the event is about when it is not the agent (worker, token, share).
    resource_id: str | None = None
    # Small, non-secret facts (a config_version, a status).
    data: dict[str, Any] = field(default_factory=dict)

    def encode(self) -> str:
        # orjson writes a dataclass (and its enum) field by field, as asdict() would.
        return orjson.dumps(self).decode()

    @classmethod
    def decode(cls, payload: str | bytes) -> Event:
        raw = orjson.loads(payload)
        try:
            kind = EventKind(raw["kind"])
        except ValueError:
            raise UnknownKind(raw["kind"]) from None
        return cls(
            kind=kind,
            user_id=raw["user_id"],
            agent_id=raw.get("agent_id"),
            resource_id=raw.get("resource_id"),
            data=raw.get("data") or {},
        )
