"""Domain events: services publish after commit; subscriptions and agent push listen."""

from __future__ import annotations

from gpugo.events.bus import EventBus, Subscription
from gpugo.events.event import Event, EventKind
from gpugo.events.postgres import PostgresEventBus, notify_in_transaction


def bus_for(database_url: str) -> EventBus:
    """PostgreSQL gets LISTEN/NOTIFY so every instance sees every event; SQLite is one process."""
    if database_url.startswith(("postgres://", "postgresql://")):
        return PostgresEventBus(database_url)
    return EventBus()


__all__ = [
    "Event",
    "EventBus",
    "EventKind",
    "PostgresEventBus",
    "Subscription",
    "bus_for",
    "notify_in_transaction",
]
