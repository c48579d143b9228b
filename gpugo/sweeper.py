"""The offline sweeper: a task of the app's lifespan that runs ``presence.sweep`` every few seconds.

Every instance runs one; ``presence.sweep`` makes sure each silence is announced
once across all of them. A failed sweep (the database away) leaves the state's floor
where it was, so the next tick covers the same window again.
"""

from __future__ import annotations

from gpugo.context import ServerContext
from gpugo.periodic import Periodic
from gpugo.services import presence


class OfflineSweeper:
    def __init__(self, ctx: ServerContext) -> None:
        state = presence.SweepState()
        self._periodic = Periodic(
            "offline sweep",
            ctx.settings.offline_sweep_seconds,
            lambda: presence.sweep(ctx=ctx, state=state),
        )

    async def start(self) -> None:
        self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()
