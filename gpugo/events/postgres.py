"""Events across instances through PostgreSQL LISTEN/NOTIFY.

Publishing is a NOTIFY on the shared channel; every instance (this one included)
LISTENs on a dedicated connection and dispatches what arrives to its local
subscribers, so all instances see every event exactly once each.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from gpugo.events.bus import EventBus, log
from gpugo.events.event import Event

CHANNEL = "gpugo_events"
RECONNECT_DELAY_SECONDS = 1.0


def asyncpg_dsn(database_url: str) -> str:
    parts = urlsplit(database_url)
    # Tortoise pool options are not libpq parameters.
    return urlunsplit(parts._replace(scheme="postgresql", query=""))


class PostgresEventBus(EventBus):
    def __init__(self, database_url: str) -> None:
        super().__init__()
        self._dsn = asyncpg_dsn(database_url)
        self._listener: asyncpg.Connection | None = None
        self._publisher: asyncpg.Connection | None = None
        self._publish_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._lost = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen_forever(), name="gpugo-event-listener")
        # Wait briefly so events published right after start are not missed.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connected.wait(), timeout=5)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for connection in (self._listener, self._publisher):
            if connection is not None and not connection.is_closed():
                await connection.close()

    async def publish(self, event: Event) -> None:
        payload = event.encode()
        async with self._publish_lock:
            try:
                if self._publisher is None or self._publisher.is_closed():
                    self._publisher = await asyncpg.connect(self._dsn)
                await self._publisher.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                # The change itself is committed; a lost notification only delays
                # live views until their next poll or reconnect.
                log.warning("could not publish %s event", event.kind, exc_info=True)
                self._publisher = None

    async def _listen_forever(self) -> None:
        while True:
            try:
                self._listener = await asyncpg.connect(self._dsn)
                self._lost.clear()
                self._listener.add_termination_listener(lambda _conn: self._lost.set())
                await self._listener.add_listener(CHANNEL, self._on_notify)
                self._connected.set()
                await self._lost.wait()
            except asyncio.CancelledError:
                raise
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                log.warning("event listener lost its connection; reconnecting", exc_info=True)
            self._connected.clear()
            await asyncio.sleep(RECONNECT_DELAY_SECONDS)

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            event = Event.decode(payload)
        except (ValueError, KeyError):
            log.warning("ignoring a malformed event on %s", CHANNEL)
            return
        self.dispatch(event)
