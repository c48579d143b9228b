"""The offline sweeper: a task of the app's lifespan that runs ``presence.sweep`` every few seconds.

Every instance runs one; ``presence.sweep`` makes sure each silence is announced
once across all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from gpugo.context import ServerContext
from gpugo.services import presence

log = logging.getLogger("gpugo.sweeper")


class OfflineSweeper:
    def __init__(self, ctx: ServerContext) -> None:
        self._ctx = ctx
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="gpugo-offline-sweeper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        state = presence.SweepState()
        interval = self._ctx.settings.offline_sweep_seconds
        while True:
            await asyncio.sleep(interval)
            try:
                await presence.sweep(ctx=self._ctx, state=state)
            except Exception:
                # A database outage must not end presence for good: the next tick retries
                # the same window (the state keeps its floor).
                log.warning("offline sweep failed; retrying in %.1f s", interval, exc_info=True)
