"""A piece of work run every few seconds in a task of its own (the offline sweeper, the
``last_seen_at`` writer, the audit log's buffer), until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Generic, TypeVar

from gpugo.observability import metrics as telemetry

log = logging.getLogger("gpugo.periodic")

T = TypeVar("T")


class Periodic:
    def __init__(self, name: str, interval: float, work: Callable[[], Awaitable[object]]) -> None:
        self.name = name
        self.interval = interval
        self._work = work
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Idempotent: a second start while running does nothing."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self._work()
            except Exception:
                # A database outage must not end the work for good: the next tick retries.
                log.warning(
                    "%s failed; retrying in %.1f s", self.name, self.interval, exc_info=True
                )


class BoundedBuffer(Generic[T]):
    """Rows that may wait in memory and be lost within a bound (audit rows, metric points),
    written in batches every ``interval`` seconds by a Periodic, and at ``stop``.

    Adding never waits and never fails: past ``capacity`` the oldest rows are dropped
    (and counted). A failed write puts its batch back in front, within the same bound,
    so a database outage loses at most what overflows the buffer meanwhile.
    """

    def __init__(
        self,
        name: str,
        interval: float,
        capacity: int,
        write: Callable[[list[T]], Awaitable[object]],
        *,
        backoff_max: float | None = None,
    ) -> None:
        self.name = name
        self.capacity = capacity
        self.dropped = 0
        self._rows: deque[T] = deque()
        self._in_flight = 0  # rows taken by a write that has not returned yet
        self._write = write
        self._flushing = asyncio.Lock()
        self._periodic = Periodic(f"{name} flush", interval, self._tick)
        # With backoff_max, failed writes are retried after 1, 2, 4... intervals (capped):
        # an engine that is down is not hammered every interval.
        self._interval = interval
        self._backoff_max = backoff_max
        self._failures = 0
        self._retry_at = 0.0
        # Counted in /metrics under the writer's name (gpugo.observability.metrics).
        self._depth = telemetry.writer_queue_depth.labels(name)
        self._flush_seconds = telemetry.writer_flush_seconds.labels(name)
        self._written = telemetry.writer_rows_written.labels(name)
        self._failed = telemetry.writer_flush_failures.labels(name)
        self._dropped = telemetry.writer_rows_dropped.labels(name)

    def add(self, row: T) -> None:
        self._rows.append(row)
        self._trim()
        self._depth.set(self.pending)
        # Started by the app's lifespan; this covers a buffer used without one.
        self._periodic.start()

    def extend(self, rows: Iterable[T]) -> None:
        """``add`` for several rows at once."""
        self._rows.extend(rows)
        self._trim()
        self._depth.set(self.pending)
        self._periodic.start()

    @property
    def pending(self) -> int:
        """Rows not written yet, those of a write under way included."""
        return len(self._rows) + self._in_flight

    def discard(self, unwanted: Callable[[T], bool]) -> int:
        """Drop the waiting rows ``unwanted`` picks (their subject was deleted)."""
        kept = deque(row for row in self._rows if not unwanted(row))
        gone = len(self._rows) - len(kept)
        self._rows = kept
        self._depth.set(self.pending)
        return gone

    def _trim(self) -> None:
        overflow = len(self._rows) - self.capacity
        if overflow <= 0:
            return
        for _ in range(overflow):
            self._rows.popleft()
        self.dropped += overflow
        self._dropped.inc(overflow)

    def start(self) -> None:
        self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()
        await self.flush()

    async def _tick(self) -> None:
        if self._failures and time.monotonic() < self._retry_at:
            return  # backing off after failed writes
        await self.flush()

    async def flush(self) -> int:
        """Write what waits; on an error keep it (within the bound) for the next flush."""
        async with self._flushing:
            return await self._flush()

    async def _flush(self) -> int:
        if not self._rows:
            return 0
        batch = list(self._rows)
        self._rows.clear()
        self._in_flight = len(batch)
        started = time.perf_counter()
        try:
            await self._write(batch)
        except BaseException as error:
            # Failed, or stopped mid-write (shutdown): the batch goes back in front, for
            # the next flush or the final one.
            self._in_flight = 0
            self._rows.extendleft(reversed(batch))
            if not isinstance(error, Exception):
                raise
            self._flush_seconds.observe(time.perf_counter() - started)
            self._failed.inc()
            self._failures += 1
            log.warning("%s: could not write %d rows", self.name, len(batch), exc_info=True)
            self._trim()
            self._depth.set(self.pending)
            if self._backoff_max is not None:
                delay = min(self._interval * 2 ** min(self._failures - 1, 30), self._backoff_max)
                self._retry_at = time.monotonic() + delay
            return 0
        self._in_flight = 0
        self._flush_seconds.observe(time.perf_counter() - started)
        self._written.inc(len(batch))
        self._failures = 0
        self._depth.set(self.pending)
        return len(batch)
