"""Work done once per installation (the sweeper), in whichever process holds a lock.

On PostgreSQL every process (the workers of ``gpugo serve --workers N``, other
instances) campaigns on a connection of its own for a session-level advisory lock;
the holder runs the jobs for as long as its connection lives. When that process dies
or loses its connection, PostgreSQL releases the lock and another process takes it
at its next try (within ``RETRY_SECONDS``). The jobs tolerate a moment of overlap
(the sweeps claim what they act on), so a leader cut off from the database may
finish a tick while its successor starts. On SQLite there is one process: it leads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable

import asyncpg

from gpugo.events.postgres import asyncpg_dsn

log = logging.getLogger("gpugo.leader")

# The advisory lock's key ("gpugo" + "lead" as bytes); locks are per database.
LOCK_KEY = 0x677075676F6C6561
RETRY_SECONDS = 1.0
# How long a check of the leader's connection may take before it counts as lost.
CHECK_TIMEOUT_SECONDS = 5.0


class Leadership:
    def __init__(
        self,
        database_url: str,
        *,
        name: str,
        lead: Callable[[], Awaitable[None]],
        step_down: Callable[[], Awaitable[None]],
    ) -> None:
        self._postgres = database_url.startswith(("postgres://", "postgresql://"))
        self._dsn = asyncpg_dsn(database_url) if self._postgres else ""
        self._name = name
        self._lead = lead
        self._step_down = step_down
        self._task: asyncio.Task[None] | None = None
        self.leading = False

    async def start(self) -> None:
        if not self._postgres:
            await self._take()
            return
        self._task = asyncio.create_task(self._campaign(), name=f"leadership of {self._name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._give_up()

    async def _take(self) -> None:
        self.leading = True
        log.info("process %d leads: it runs the %s", os.getpid(), self._name)
        await self._lead()

    async def _give_up(self) -> None:
        if self.leading:
            self.leading = False
            await self._step_down()

    async def _campaign(self) -> None:
        while True:
            connection: asyncpg.Connection | None = None
            try:
                connection = await asyncpg.connect(self._dsn)
                # Polled: a waiting pg_advisory_lock would hold a statement open for good.
                while True:
                    if await connection.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY):
                        break
                    await asyncio.sleep(RETRY_SECONDS)
                await self._take()
                # Held while the session lives: check it now and then, so a leader cut
                # off from the database stops (its successor is already running).
                while True:
                    await asyncio.sleep(RETRY_SECONDS)
                    await asyncio.wait_for(connection.fetchval("SELECT 1"), CHECK_TIMEOUT_SECONDS)
            except asyncio.CancelledError:
                raise
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                log.warning("leadership of the %s: connection lost", self._name, exc_info=True)
            finally:
                await self._give_up()
                if connection is not None and not connection.is_closed():
                    # Closing the session releases the lock.
                    with contextlib.suppress(Exception):
                        await asyncio.shield(connection.close(timeout=2))
            await asyncio.sleep(RETRY_SECONDS)
