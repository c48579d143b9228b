"""Publish/subscribe of domain events inside one process.

Backends decide how an event reaches every process (directly, or through
PostgreSQL NOTIFY); each process then fans it out to its local subscribers
here. A subscriber gets a bounded queue: a consumer that falls this far behind
loses the oldest events rather than growing memory without bound.

Subscriptions are kept by (user, agent), so an event reaches the few that may want
it without visiting every open stream of the process (one per connected agent).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from gpugo.events.event import Event
from gpugo.observability import metrics as telemetry

log = logging.getLogger("gpugo.events")

QUEUE_SIZE = 256


# The counter's child per kind, looked up once (labels() is a few microseconds a call).
_published: dict[str, Any] = {}


def count_published(kind: str) -> None:
    counter = _published.get(kind)
    if counter is None:
        counter = _published[kind] = telemetry.events_published.labels(kind)
    counter.inc()


class Subscription:
    def __init__(self, *, user_id: str | None, agent_id: str | None) -> None:
        self.user_id = user_id
        self.agent_id = agent_id
        # None, after the events, says the bus is closing: the consumer should end.
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue(QUEUE_SIZE)
        self.closed = False

    def wants(self, event: Event) -> bool:
        if self.user_id is not None and event.user_id != self.user_id:
            return False
        return self.agent_id is None or event.agent_id == self.agent_id

    def offer(self, event: Event | None) -> None:
        if self.closed:
            return
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(event)

    def close(self) -> None:
        self.offer(None)
        self.closed = True

    async def get(self) -> Event | None:
        """The next event; None once the bus is closing (then always None)."""
        if self.closed and self.queue.empty():
            return None
        return await self.queue.get()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while (event := await self.get()) is not None:
            yield event


Key = tuple[str | None, str | None]
# Called with every event, synchronously: by the writer's process when it publishes
# (right after its commit) and by every process when the event arrives.
Watcher = Callable[[Event], None]


class EventBus:
    """The in-process bus (SQLite, one process). Subclasses carry events across processes."""

    def __init__(self) -> None:
        self._subscriptions: dict[Key, set[Subscription]] = {}
        self._count = 0
        self._closing = False
        self._watchers: list[Watcher] = []

    def watch(self, watcher: Watcher) -> None:
        """Call ``watcher`` with every event (a cache keeping itself exact)."""
        self._watchers.append(watcher)

    @property
    def delivering(self) -> bool:
        """Whether every event committed from now on reaches this process's watchers.

        Always, in one process; across processes only while the listener is connected.
        """
        return True

    @property
    def epoch(self) -> int:
        """Changes whenever events may have been missed (a listener reconnected, a gap
        in a sender's sequence): what was derived from earlier reads must be dropped."""
        return 0

    def _tell_watchers(self, event: Event) -> None:
        for watcher in self._watchers:
            try:
                watcher(event)
            except Exception:
                log.exception("an event watcher failed")

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def publish(self, event: Event) -> None:
        """Call after the change is committed, so no subscriber sees a rolled-back event."""
        await self.publish_all((event,))

    async def publish_all(
        self, events: Sequence[Event], *, told: Callable[[], None] | None = None
    ) -> None:
        """``publish`` of several events, sent together, in order. ``told`` is called once
        this process's watchers have heard them all, before waiting for them to go out,
        with nothing else run in between: a writer may keep, there, what its own events
        just dropped from a cache."""
        for event in events:
            count_published(event.kind)
            self.dispatch(event)
        if told is not None:
            told()

    def emit(self, event: Event) -> None:
        """``publish`` without waiting for the event to go out (after commit as well).

        For hot paths whose answer need not wait: events are at most once either way,
        and emitted and published events go out in the order they were handed over.
        """
        count_published(event.kind)
        self.dispatch(event)

    def close_streams(self) -> None:
        """End every subscription, now and opened from now on (the server is draining).

        Live streams never finish by themselves; a graceful shutdown would otherwise wait
        for them until its timeout. Their clients reconnect to another instance.
        """
        self._closing = True
        for subscribers in list(self._subscriptions.values()):
            for subscription in list(subscribers):
                subscription.close()

    def dispatch(self, event: Event, *, tell_watchers: bool = True) -> None:
        if tell_watchers:
            self._tell_watchers(event)
        keys: tuple[Key, ...] = ((event.user_id, None), (None, None))
        if event.agent_id is not None:
            keys = ((event.user_id, event.agent_id), (None, event.agent_id), *keys)
        for key in keys:
            for subscription in list(self._subscriptions.get(key, ())):
                if subscription.wants(event):
                    subscription.offer(event)

    @asynccontextmanager
    async def subscribe(
        self, *, user_id: str | None = None, agent_id: str | None = None
    ) -> AsyncIterator[Subscription]:
        """Events of one user (and optionally one agent) until the block exits."""
        subscription = Subscription(user_id=user_id, agent_id=agent_id)
        if self._closing:
            subscription.close()
        key = (user_id, agent_id)
        self._subscriptions.setdefault(key, set()).add(subscription)
        self._count += 1
        telemetry.event_subscribers.inc()
        try:
            yield subscription
        finally:
            subscribers = self._subscriptions[key]
            subscribers.discard(subscription)
            if not subscribers:
                del self._subscriptions[key]
            self._count -= 1
            telemetry.event_subscribers.dec()

    @property
    def subscriber_count(self) -> int:
        return self._count
