"""Where accepted metric points wait and how they reach the database.

A report's points are validated on the request (``services.metrics``), then handed
to ``MetricsIngest.accept``: they wait in a ``BoundedBuffer`` and are written in
batches every ``GPUGO_METRICS_FLUSH_SECONDS`` (default 1 s) and at shutdown, so a
report costs no metrics write of its own. The batch goes to a sink: ``SqlSink``
writes the sample tables (binary COPY on PostgreSQL, one multi-row INSERT per table
on SQLite); another sink (a time-series engine) only has to take the same points.

Past ``GPUGO_METRICS_BUFFER_POINTS`` waiting points (a database outage, a flood),
the oldest unwritten ones are dropped and counted (``BoundedBuffer.dropped``); adding
never waits, so a heartbeat is answered whatever happens here. Points of an agent
deleted meanwhile are left out of the batch (never a foreign-key failure losing the
others). Live subscribers are told after the write: ``agentMetrics`` subscriptions
read the stored report back when told, from the tables or the engine
(docs/decisions.md, "Metrics ingest").
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Protocol

from tortoise import connections
from tortoise.transactions import in_transaction

from gpugo import partitions
from gpugo.events import Event, EventBus, EventKind
from gpugo.periodic import BoundedBuffer

log = logging.getLogger("gpugo.metrics")


class Table(StrEnum):
    GPU = "gpu_metric_samples"
    SYSTEM = "system_metric_samples"
    WORKER = "worker_metric_samples"


# Each table's columns after (agent_id, recorded_at), in the order of Point.values.
VALUE_COLUMNS: dict[Table, tuple[str, ...]] = {
    Table.GPU: (
        "gpu_id",
        "utilization",
        "vram_used_mb",
        "vram_total_mb",
        "temperature",
        "power_usage_w",
        "pcie_rx_kb",
        "pcie_tx_kb",
    ),
    Table.SYSTEM: ("cpu_usage", "memory_used_mb", "memory_total_mb"),
    Table.WORKER: ("worker_id", "status", "connections", "restarts"),
}
# SQLite binds at most 32766 parameters per statement; a GPU row takes 10.
_SQLITE_ROWS_PER_INSERT = 1000


@dataclass(frozen=True, slots=True)
class Point:
    """One validated reading waiting to be written: a row of ``table``."""

    table: Table
    user_id: str
    agent_id: str
    # Aware, in UTC.
    recorded_at: datetime
    values: tuple[Any, ...]


class MetricsSink(Protocol):
    async def write(self, points: list[Point]) -> None:
        """Store every point of a live agent, or raise (the batch is then kept and retried)."""


class SqlSink:
    """The sample tables of the application's database."""

    def __init__(self) -> None:
        # PostgreSQL day partitions this process knows exist (gpugo.partitions).
        self._days: set[tuple[str, date]] = set()

    async def write(self, points: list[Point]) -> None:
        client = connections.get("default")
        if client.capabilities.dialect == "postgres":
            await self._ensure_partitions(client, points)
            await _write_postgres(client, points)
        else:
            await _write_sqlite(points)

    async def _ensure_partitions(self, client: Any, points: list[Point]) -> None:
        """Each point's day partition exists (the sweeper makes them ahead; a batch after
        a long stop or a moved clock may need one now)."""
        needed = {(p.table.value, partitions.day_of(p.recorded_at)) for p in points}
        for table, day in sorted(needed - self._days):
            await partitions.ensure_days(client, table, {day})
            self._days.add((table, day))


def _by_table(points: Iterable[Point]) -> dict[Table, list[Point]]:
    tables: dict[Table, list[Point]] = {}
    for point in points:
        tables.setdefault(point.table, []).append(point)
    return tables


async def _write_postgres(client: Any, points: list[Point]) -> None:
    """One transaction: lock the batch's agents against deletion, then COPY each table.

    ``FOR KEY SHARE`` is the lock the foreign key check would take: an agent found
    here cannot be deleted before the commit, and one not found is left out.
    """
    async with client.acquire_connection() as conn, conn.transaction():
        agent_ids = sorted({p.agent_id for p in points})
        rows = await conn.fetch(
            "SELECT id FROM agents WHERE id = ANY($1::text[]) ORDER BY id FOR KEY SHARE",
            agent_ids,
        )
        alive = {row["id"] for row in rows}
        for table, table_points in _by_table(points).items():
            records = [
                (p.agent_id, p.recorded_at, *p.values) for p in table_points if p.agent_id in alive
            ]
            if records:
                await conn.copy_records_to_table(
                    table.value,
                    records=records,
                    columns=["agent_id", "recorded_at", *VALUE_COLUMNS[table]],
                )


async def _write_sqlite(points: list[Point]) -> None:
    """One INSERT ... SELECT per table (and chunk), keeping only rows of existing agents.

    The existence test is in the statement itself: SQLite's single connection may run
    another coroutine's DELETE between two statements of ours.
    """
    async with in_transaction() as conn:
        for table, table_points in _by_table(points).items():
            columns = ["agent_id", "recorded_at", *VALUE_COLUMNS[table]]
            width = len(columns)
            for start in range(0, len(table_points), _SQLITE_ROWS_PER_INSERT):
                chunk = table_points[start : start + _SQLITE_ROWS_PER_INSERT]
                placeholders = ", ".join(["(" + ", ".join(["?"] * width) + ")"] * len(chunk))
                names = ", ".join(f'"{c}"' for c in columns)
                values: list[Any] = []
                for p in chunk:
                    values.extend((p.agent_id, p.recorded_at, *p.values))
                await conn.execute_query(
                    f'INSERT INTO "{table.value}" ({names}) '  # noqa: S608 (names are ours)
                    f"SELECT * FROM (VALUES {placeholders}) AS v "
                    "WHERE v.column1 IN (SELECT id FROM agents)",
                    values,
                )


class MetricsIngest:
    """The process's buffer of accepted points and the sink they go to."""

    def __init__(
        self,
        *,
        flush_seconds: float,
        capacity: int,
        events: EventBus,
        sink: MetricsSink | None = None,
        name: str = "metrics",
        backoff_max: float | None = None,
    ) -> None:
        self.sink: MetricsSink = sink or SqlSink()
        # ``name`` labels the writer in /metrics; ``backoff_max`` spaces the retries of a
        # sink that is away (a time-series engine), doubling up to it.
        self.buffer: BoundedBuffer[Point] = BoundedBuffer(
            name, flush_seconds, capacity, self._write, backoff_max=backoff_max
        )
        self._events = events
        # The oldest point written since the rollup pass last asked (late points included).
        self._oldest_written: datetime | None = None

    def take_oldest_written(self) -> datetime | None:
        """The oldest point time written since the last call (for the rollup pass)."""
        oldest, self._oldest_written = self._oldest_written, None
        return oldest

    def accept(self, points: Iterable[Point]) -> None:
        """Never waits, never fails: past the bound the oldest waiting points go."""
        self.buffer.extend(points)

    def start(self) -> None:
        self.buffer.start()

    async def stop(self) -> None:
        await self.buffer.stop()

    async def flush(self) -> int:
        """Write every point accepted before this call (waits for a flush under way)."""
        return await self.buffer.flush()

    async def _write(self, points: list[Point]) -> None:
        await self.sink.write(points)
        self.note_written(min(p.recorded_at for p in points))
        self._announce(points)

    def note_written(self, oldest: datetime) -> None:
        if self._oldest_written is None or oldest < self._oldest_written:
            self._oldest_written = oldest

    def _announce(self, points: list[Point]) -> None:
        """One event per report (agent and time) of GPU or host points, in time order."""
        reports: dict[tuple[str, str], set[datetime]] = {}
        for p in points:
            if p.table is not Table.WORKER:
                reports.setdefault((p.user_id, p.agent_id), set()).add(p.recorded_at)
        for (user_id, agent_id), times in reports.items():
            for at in sorted(times):
                # The report's own time (full precision) lets a live view read it back.
                self._events.emit(
                    Event(
                        kind=EventKind.METRICS_REPORTED,
                        user_id=user_id,
                        agent_id=agent_id,
                        data={"recorded_at": at.isoformat()},
                    )
                )
