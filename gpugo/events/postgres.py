"""Events across instances through PostgreSQL LISTEN/NOTIFY.

Publishing is a NOTIFY on the shared channel; every instance (this one included)
LISTENs on a dedicated connection and dispatches what arrives to its local
subscribers, so all instances see every event exactly once each.

A publish joins an outbox that one task sends, as many events as are waiting in one
statement (one round trip, in order), and returns once its batch went out (or after
``PUBLISH_WAIT_SECONDS``, the database being away): concurrent requests share a
NOTIFY round trip instead of queueing for a connection one by one. An emit joins the
same outbox and returns at once; as nobody waits for it, the sender lets it gather
company for ``EMIT_LINGER_SECONDS`` first. Each event's line starts with this
process's tag and a sequence number, because PostgreSQL folds identical payloads sent
in one transaction into one.

A batch's events travel as few notifications as their size allows: one line each,
joined by newlines, up to ``PAYLOAD_BYTES`` per notification. Every notification costs
PostgreSQL a queue entry and a message to each listening connection, and each listener
a callback: one per event made the busiest event (a share link's use) cost about as
much as its statement.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from tortoise import connections

from gpugo.events.bus import EventBus, count_published, log
from gpugo.events.event import Event, UnknownKind

CHANNEL = "gpugo_events"
RECONNECT_DELAY_SECONDS = 1.0
# Events waiting to be sent; past this (the database unreachable for long) new ones are
# dropped: live events are at most once, the changes themselves are committed.
OUTBOX_SIZE = 10_000
# Events per NOTIFY statement.
BATCH = 500
# How long stop() waits for the outbox to drain.
STOP_FLUSH_SECONDS = 2.0
# How long a publish waits for its NOTIFY to be sent (never fails: at most once).
PUBLISH_WAIT_SECONDS = 1.0
# How long an emitted event (nobody waits for it) lets others gather behind it: under
# load one NOTIFY carries many events instead of costing a round trip each.
EMIT_LINGER_SECONDS = 0.005
_NOTIFY_ALL = "SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload"
# PostgreSQL refuses a payload of 8,000 bytes or more.
PAYLOAD_BYTES = 7_900


async def notify_in_transaction(events: Sequence[Event]) -> None:
    """Send events from the caller's transaction, delivered when (and if) it commits.

    For writers with no bus of their own (the command line). Bare payloads: no sender
    sequence to follow. SQLite has no channel between processes: nothing is sent there
    (services/agent_states.py watches ``PRAGMA data_version`` instead).
    """
    client = connections.get("default")
    if not events or client.capabilities.dialect != "postgres":
        return
    await client.execute_query(_NOTIFY_ALL, [CHANNEL, [event.encode() for event in events]])


def asyncpg_dsn(database_url: str) -> str:
    parts = urlsplit(database_url)
    # Tortoise pool options are not libpq parameters.
    return urlunsplit(parts._replace(scheme="postgresql", query=""))


def packed(lines: Sequence[str]) -> list[str]:
    """Event lines joined by newlines into as few payloads of at most ``PAYLOAD_BYTES``
    as their order allows (an encoded event holds no raw newline). A longer line gets
    a payload of its own, which PostgreSQL refuses (with its batch, as it always did)."""
    payloads: list[str] = []
    pack: list[str] = []
    size = 0
    for line in lines:
        length = len(line) if line.isascii() else len(line.encode())
        if pack and size + 1 + length > PAYLOAD_BYTES:
            payloads.append("\n".join(pack))
            pack = []
        size = size + 1 + length if pack else length
        pack.append(line)
    if pack:
        payloads.append("\n".join(pack))
    return payloads


class PostgresEventBus(EventBus):
    def __init__(self, database_url: str) -> None:
        super().__init__()
        self._dsn = asyncpg_dsn(database_url)
        self._listener: asyncpg.Connection | None = None
        self._publisher: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._sender: asyncio.Task[None] | None = None
        # Each payload with the future its publisher waits on (None: emitted, nobody waits).
        self._outbox: asyncio.Queue[tuple[str, asyncio.Future[None] | None]] = asyncio.Queue(
            OUTBOX_SIZE
        )
        self._tag = secrets.token_hex(4)
        self._sequence = itertools.count()
        self._dropped = 0
        self._connected = asyncio.Event()
        self._lost = asyncio.Event()
        # Bumped whenever events may have been missed (see EventBus.epoch).
        self._epoch = 0
        # The last sequence number heard from each sender tag: a gap means lost events.
        self._heard: dict[str, int] = {}

    @property
    def delivering(self) -> bool:
        return self._connected.is_set()

    @property
    def epoch(self) -> int:
        return self._epoch

    def _missed(self) -> None:
        self._epoch += 1

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen_forever(), name="gpugo-event-listener")
        self._start_sender()
        # Wait briefly so events published right after start are not missed.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connected.wait(), timeout=5)

    async def stop(self) -> None:
        # What was published before the stop still goes out, if the database answers.
        if self._sender is not None and not self._sender.done():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STOP_FLUSH_SECONDS):
                    await self._outbox.join()
        for task in (self._sender, self._task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._sender = self._task = None
        for connection in (self._listener, self._publisher):
            if connection is not None and not connection.is_closed():
                await connection.close()

    async def publish_all(
        self, events: Sequence[Event], *, told: Callable[[], None] | None = None
    ) -> None:
        loop = asyncio.get_running_loop()
        waits: set[asyncio.Future[None]] = set()
        for event in events:
            count_published(event.kind)
            # This process's watchers at once (the change is committed); the others when
            # the NOTIFY arrives.
            self._tell_watchers(event)
            sent: asyncio.Future[None] = loop.create_future()
            if self._enqueue(event, sent):
                waits.add(sent)
        if told is not None:
            told()
        if waits:
            # Once sent, this process's own subscribers hear them a moment later, like the
            # others.
            await asyncio.wait(waits, timeout=PUBLISH_WAIT_SECONDS)

    def emit(self, event: Event) -> None:
        count_published(event.kind)
        self._tell_watchers(event)
        self._enqueue(event, None)

    def _enqueue(self, event: Event, sent: asyncio.Future[None] | None) -> bool:
        payload = f"{self._tag}.{next(self._sequence)} {event.encode()}"
        try:
            self._outbox.put_nowait((payload, sent))
        except asyncio.QueueFull:
            self._dropped += 1
            if self._dropped % 1000 == 1:
                log.warning("event outbox full: %d events dropped so far", self._dropped)
            return False
        self._start_sender()
        return True

    def _start_sender(self) -> None:
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_forever(), name="gpugo-event-sender")

    async def _send_forever(self) -> None:
        while True:
            batch = [await self._outbox.get()]
            if batch[0][1] is None:
                await asyncio.sleep(EMIT_LINGER_SECONDS)
            while len(batch) < BATCH and not self._outbox.empty():
                batch.append(self._outbox.get_nowait())
            try:
                await self._send([payload for payload, _ in batch])
            finally:
                for _, sent in batch:
                    if sent is not None and not sent.done():
                        sent.set_result(None)
                    self._outbox.task_done()

    async def _send(self, batch: list[str]) -> None:
        try:
            if self._publisher is None or self._publisher.is_closed():
                self._publisher = await asyncpg.connect(self._dsn)
            # unnest yields in array order; one transaction delivers in that order.
            await self._publisher.execute(_NOTIFY_ALL, CHANNEL, packed(batch))
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            # The changes are committed; lost notifications only delay live views until
            # their next read or reconnect. Pause so an outage is not a busy loop.
            log.warning("could not publish %d events", len(batch), exc_info=True)
            self._publisher = None
            await asyncio.sleep(RECONNECT_DELAY_SECONDS)

    async def _listen_forever(self) -> None:
        while True:
            try:
                self._listener = await asyncpg.connect(self._dsn)
                self._lost.clear()
                self._listener.add_termination_listener(self._on_terminated)
                await self._listener.add_listener(CHANNEL, self._on_notify)
                # Whatever was committed while nobody listened is unknown here.
                self._heard.clear()
                self._missed()
                self._connected.set()
                await self._lost.wait()
            except asyncio.CancelledError:
                raise
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                log.warning("event listener lost its connection; reconnecting", exc_info=True)
            self._on_terminated(None)
            await asyncio.sleep(RECONNECT_DELAY_SECONDS)

    def _on_terminated(self, _conn: object) -> None:
        if self._connected.is_set():
            self._connected.clear()
            self._missed()
        self._lost.set()

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        for line in payload.split("\n"):
            self._receive(line)

    def _receive(self, line: str) -> None:
        # "<tag>.<sequence> <event>"; a bare event (an older instance, or a statement's
        # own NOTIFY: notify_sql) is read as well.
        own = False
        if line.startswith("{"):
            body = line
        else:
            head, _, body = line.partition(" ")
            own = self._count_heard(head) == self._tag
            if own and not self._subscriptions:
                return  # its watchers heard it when published, and nobody here listens
        try:
            event = Event.decode(body)
        except UnknownKind:
            return  # nothing here subscribes to it or watches it
        except (ValueError, KeyError):
            log.warning("ignoring a malformed event on %s", CHANNEL)
            return
        # This process's watchers heard its own events when they were published; told
        # again here, a late echo would drop what a cache read after the change.
        self.dispatch(event, tell_watchers=not own)

    def _count_heard(self, head: str) -> str:
        """A sender's events arrive in its order; a skipped number was dropped or lost.
        Returns the sender's tag."""
        tag, _, number = head.partition(".")
        try:
            sequence = int(number)
        except ValueError:
            return tag
        last = self._heard.get(tag)
        if last is not None and sequence != last + 1:
            log.warning("events of %s were lost (%d to %d)", tag, last + 1, sequence - 1)
            self._missed()
        self._heard[tag] = sequence
        return tag
