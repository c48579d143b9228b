"""A piece of work run every few seconds in a task of its own (the offline sweeper, the
``last_seen_at`` writer, the audit log's buffer), until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Generic, TypeVar

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
    ) -> None:
        self.name = name
        self.capacity = capacity
        self.dropped = 0
        self._rows: deque[T] = deque()
        self._write = write
        self._flushing = asyncio.Lock()
        self._periodic = Periodic(f"{name} flush", interval, self.flush)

    def add(self, row: T) -> None:
        self._rows.append(row)
        self._trim()
        # Started by the app's lifespan; this covers a buffer used without one.
        self._periodic.start()

    def extend(self, rows: Iterable[T]) -> None:
        """``add`` for several rows at once."""
        self._rows.extend(rows)
        self._trim()
        self._periodic.start()

    @property
    def pending(self) -> int:
        return len(self._rows)

    def _trim(self) -> None:
        excess = len(self._rows) - self.capacity
        if excess > 0:
            for _ in range(excess):
                self._rows.popleft()
            self.dropped += excess

    def start(self) -> None:
        self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()
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
        try:
            await self._write(batch)
        except Exception:
            log.warning("%s: could not write %d rows", self.name, len(batch), exc_info=True)
            self._rows.extendleft(reversed(batch))
            self._trim()
            return 0
        return len(batch)
