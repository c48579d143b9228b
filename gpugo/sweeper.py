"""The sweeper: tasks of the app's lifespan that look for what time alone changes.

Every few seconds (``GPUGO_OFFLINE_SWEEP_SECONDS``): agents fallen silent
(``presence.sweep``, announced as offline), share links expired
(``shares.withdraw_expired``, withdrawn from their agents' configs), install tokens
expired unused (recorded once in the audit log) and audit events past their retention
(``GPUGO_AUDIT_RETENTION_DAYS``). One process of the installation runs it (the
holder of a PostgreSQL advisory lock, gpugo/leader.py); each service still makes
sure each moment is acted on once, should two overlap while the lead changes hands
(the rollups replace a bucket's row, so a second pass changes nothing). Every
``GPUGO_METRICS_ROLLUP_SECONDS``: the metrics rollups and each tier's retention
(``services/metrics_rollups.py``).
A failed sweep (the database away) is retried at the next tick; presence's floor
stays where it was, so the next tick covers the same window again.
"""

from __future__ import annotations

from gpugo.context import ServerContext
from gpugo.periodic import Periodic
from gpugo.services import audit, presence, shares
from gpugo.services.metrics_rollups import MetricsUpkeep


async def _audit_sweep(ctx: ServerContext) -> None:
    await audit.note_expired_install_tokens(audit_log=ctx.audit)
    await audit.prune(retention_days=ctx.settings.audit_retention_days)


class Sweeper:
    def __init__(self, ctx: ServerContext) -> None:
        state = presence.SweepState()
        interval = ctx.settings.offline_sweep_seconds
        self._tasks = (
            Periodic("offline sweep", interval, lambda: presence.sweep(ctx=ctx, state=state)),
            Periodic("share expiry sweep", interval, lambda: shares.withdraw_expired(ctx=ctx)),
            Periodic("audit sweep", interval, lambda: _audit_sweep(ctx)),
            Periodic(
                "metrics rollups and retention",
                ctx.settings.metrics_rollup_seconds,
                MetricsUpkeep(ctx.settings, ctx.metrics).run,
            ),
        )

    async def start(self) -> None:
        for task in self._tasks:
            task.start()

    async def stop(self) -> None:
        for task in self._tasks:
            await task.stop()
