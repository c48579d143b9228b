"""Status reports' workers-only changes, written together: one statement (one round trip,
one commit) for the reports of one turn of the event loop (PostgreSQL).

Agents on synchronised timers report together, and a change of theirs (a worker started
or stopped) is written by one statement each (services/status_reports.py). Fifty of them
arriving at once made fifty round trips and fifty commits, each waiting for its own WAL
flush: most of a burst's time. Here a report hands over its change and waits; the
reports handed over in the same loop turn go out as one statement, which locks their
agents' rows in id order (as every multi-agent writer does), then compares and writes
each worker as the single statement did. What each report gets back is which of its
workers were written, as before. A failed batch (a deadlock, a lost connection) is
retried one report at a time, so one report's trouble stays its own.

Two reports of the same agent never share a statement (a worker written twice in one
UPDATE would be written once, and both would think it theirs): the second waits for
the next turn.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime

from tortoise import connections

log = logging.getLogger("gpugo.status")

# The agents' rows first (in id order: no deadlock with another writer of several
# agents), each seen now; then each worker only while it is as its report found it,
# compared under the worker's row lock.
_WRITE = """
WITH locked AS (
    SELECT id FROM agents WHERE id = ANY($1::text[]) ORDER BY id FOR NO KEY UPDATE
), seen AS (
    UPDATE agents a SET last_seen_at = v.at, shut_down_at = NULL, offline_notified = false
    FROM unnest($1::text[], $2::timestamptz[]) AS v(id, at)
    WHERE a.id = v.id AND a.id IN (SELECT id FROM locked)
    RETURNING a.id
)
UPDATE workers w SET status = v.status, pid = v.pid, restarts = v.restarts
FROM unnest($3::text[], $4::text[], $5::text[], $6::int[], $7::int[], $8::text[], $9::int[],
        $10::int[])
    AS v(agent_id, id, status, pid, restarts, was_status, was_pid, was_restarts)
WHERE w.id = v.id AND w.agent_id = v.agent_id AND v.agent_id IN (SELECT id FROM seen)
    AND w.status = v.was_status AND w.pid IS NOT DISTINCT FROM v.was_pid
    AND w.restarts IS NOT DISTINCT FROM v.was_restarts
RETURNING w.id
"""


@dataclass(frozen=True, slots=True)
class WorkerWrite:
    """A worker's new status, pid and restarts, and what they were when read."""

    id: str
    status: str
    pid: int | None
    restarts: int | None
    was_status: str
    was_pid: int | None
    was_restarts: int | None


@dataclass(slots=True)
class _Handed:
    agent_id: str
    seen_at: datetime
    writes: list[WorkerWrite]
    written: asyncio.Future[set[str]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class WorkerWrites:
    def __init__(self) -> None:
        # This turn's reports, one per agent; an agent's further ones wait their turn.
        self._turn: dict[str, _Handed] = {}
        self._later: list[_Handed] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def write(self, agent_id: str, seen_at: datetime, writes: list[WorkerWrite]) -> set[str]:
        """Mark the agent seen at ``seen_at`` and write ``writes``; the ids written (a
        worker changed since it was read is not; none if the agent is gone)."""
        handed = _Handed(agent_id, seen_at, writes)
        if not self._turn and not self._later:
            asyncio.get_running_loop().call_soon(self._send_turn)
        if agent_id in self._turn:
            self._later.append(handed)
        else:
            self._turn[agent_id] = handed
        return await handed.written

    def _send_turn(self) -> None:
        batch = list(self._turn.values())
        self._turn, later, self._later = {}, self._later, []
        for handed in later:
            if handed.agent_id in self._turn:
                self._later.append(handed)
            else:
                self._turn[handed.agent_id] = handed
        if self._turn:
            asyncio.get_running_loop().call_soon(self._send_turn)
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[_Handed]) -> None:
        try:
            written = await _statement(batch)
        except Exception as error:
            if len(batch) > 1:
                log.warning("%d worker changes written together failed; one by one", len(batch))
                await asyncio.gather(*(self._send([handed]) for handed in batch))
            elif not batch[0].written.done():
                batch[0].written.set_exception(error)
            return
        for handed in batch:
            if not handed.written.done():  # a report cancelled meanwhile
                handed.written.set_result({w.id for w in handed.writes if w.id in written})


async def _statement(batch: list[_Handed]) -> set[str]:
    pairs = [(handed.agent_id, w) for handed in batch for w in handed.writes]
    rows = await connections.get("default").execute_query_dict(
        _WRITE,
        [
            [handed.agent_id for handed in batch],
            [handed.seen_at for handed in batch],
            [agent_id for agent_id, _ in pairs],
            [w.id for _, w in pairs],
            [w.status for _, w in pairs],
            [w.pid for _, w in pairs],
            [w.restarts for _, w in pairs],
            [w.was_status for _, w in pairs],
            [w.was_pid for _, w in pairs],
            [w.was_restarts for _, w in pairs],
        ],
    )
    return {row["id"] for row in rows}
