"""Coalesced ``last_seen_at`` writes for steady heartbeats.

A heartbeat that changes nothing else would otherwise cost a write and a commit per
report. Instead the report is remembered here, and every
``GPUGO_LAST_SEEN_FLUSH_SECONDS`` (default 1 s) one statement writes the newest time of
every agent seen since: on PostgreSQL a single ``UPDATE ... FROM unnest(...)``.

Only reports of agents that are online with a fresh ``last_seen_at`` come here (see
``status_reports``); anything that changes an agent's state is written at once. What a
crash (or a lost database connection) can lose is therefore the last interval's
``last_seen_at`` of steady agents: their stored value stays at most one interval plus
one report period old, far inside the offline threshold. A clean shutdown flushes.
"""

from __future__ import annotations

import logging
from datetime import datetime

from tortoise import connections
from tortoise.transactions import in_transaction

from gpugo.models import Agent
from gpugo.observability import metrics as telemetry
from gpugo.periodic import Periodic

log = logging.getLogger("gpugo.last_seen")

# No lock in id order first (worker_writes does one for its few agents): over the
# thousands of agents of a flush, a FOR NO KEY UPDATE CTE made the statement ten times
# slower (3,000 agents: 902 against 83 ms). A deadlock with a batch of worker changes
# is possible in principle: PostgreSQL aborts one after deadlock_timeout (1 s), this
# flush keeps its batch for the next, and the batch retries one report at a time.
_FLUSH_POSTGRES = """
UPDATE agents SET last_seen_at = seen.at
FROM unnest($1::text[], $2::timestamptz[]) AS seen(id, at)
WHERE agents.id = seen.id AND agents.last_seen_at < seen.at
"""


# Its name in /metrics' writer series.
WRITER = "last_seen_at"
_depth = telemetry.writer_queue_depth.labels(WRITER)
_flush_seconds = telemetry.writer_flush_seconds.labels(WRITER)


class LastSeenWriter:
    def __init__(self, interval_seconds: float) -> None:
        self.interval = interval_seconds
        self._pending: dict[str, datetime] = {}
        self._in_flight = 0  # agents of a write that has not returned yet
        self._periodic = Periodic("last_seen_at flush", interval_seconds, self.flush)

    def touch(self, agent_id: str, at: datetime) -> None:
        """Remember that the agent reported at ``at`` (written by the next flush)."""
        self._remember(agent_id, at)
        _depth.set(self.pending)
        # Started by the app's lifespan; this covers a writer used without one.
        self._periodic.start()

    def _remember(self, agent_id: str, at: datetime) -> None:
        previous = self._pending.get(agent_id)
        if previous is None or at > previous:
            self._pending[agent_id] = at

    def forget(self, agent_id: str, written: datetime) -> None:
        """A report wrote ``written`` itself: a pending older time has nothing to add."""
        pending = self._pending.get(agent_id)
        if pending is not None and pending <= written:
            del self._pending[agent_id]

    @property
    def pending(self) -> int:
        """Agents whose time is not written yet, those of a write under way included
        (an agent seen again meanwhile counts twice)."""
        return len(self._pending) + self._in_flight

    async def start(self) -> None:
        if self.interval > 0:
            self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()
        await self.flush()

    async def flush(self) -> int:
        """Write what is pending; on a database error keep it for the next flush."""
        if not self._pending:
            return 0
        batch, self._pending = self._pending, {}
        self._in_flight = len(batch)
        try:
            with _flush_seconds.time():
                await _write(batch)
        except BaseException as error:
            # Failed, or stopped mid-write (shutdown): the batch is pending again, for the
            # next flush or the final one.
            for agent_id, at in batch.items():
                self._remember(agent_id, at)
            if not isinstance(error, Exception):
                raise
            telemetry.writer_flush_failures.labels(WRITER).inc()
            log.warning("could not write last_seen_at of %d agents", len(batch), exc_info=True)
            return 0
        finally:
            self._in_flight = 0
            _depth.set(self.pending)
        telemetry.writer_rows_written.labels(WRITER).inc(len(batch))
        return len(batch)


async def _write(batch: dict[str, datetime]) -> None:
    client = connections.get("default")
    ids = sorted(batch)
    if client.capabilities.dialect == "postgres":
        await client.execute_query(_FLUSH_POSTGRES, [ids, [batch[i] for i in ids]])
        return
    # SQLite: one process, one connection; one transaction for the whole batch.
    async with in_transaction():
        for agent_id in ids:
            await Agent.filter(id=agent_id, last_seen_at__lt=batch[agent_id]).update(
                last_seen_at=batch[agent_id]
            )
