"""The sweeper: tasks of the app's lifespan that look for what time alone changes.

Every few seconds (``GPUGO_OFFLINE_SWEEP_SECONDS``): agents fallen silent
(``presence.sweep``, announced as offline) and share links expired
(``shares.withdraw_expired``, withdrawn from their agents' configs). Every instance
runs one; each service makes sure each moment is acted on once across all of them.
A failed sweep (the database away) is retried at the next tick; presence's floor
stays where it was, so the next tick covers the same window again.
"""

from __future__ import annotations

from gpugo.context import ServerContext
from gpugo.periodic import Periodic
from gpugo.services import presence, shares


class Sweeper:
    def __init__(self, ctx: ServerContext) -> None:
        state = presence.SweepState()
        interval = ctx.settings.offline_sweep_seconds
        self._tasks = (
            Periodic("offline sweep", interval, lambda: presence.sweep(ctx=ctx, state=state)),
            Periodic("share expiry sweep", interval, lambda: shares.withdraw_expired(ctx=ctx)),
        )

    async def start(self) -> None:
        for task in self._tasks:
            task.start()

    async def stop(self) -> None:
        for task in self._tasks:
            await task.stop()
