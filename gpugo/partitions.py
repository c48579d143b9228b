"""Daily range partitions of the metrics tables on PostgreSQL.

Retention drops a whole day's partition once it is past its window: no DELETE, no
scan, no dead rows for vacuum. Partitions are created ahead (the sweeper keeps today
and tomorrow ready) and on demand for the days of a batch. SQLite keeps plain tables
(its retention deletes through indexes).

The raw sample tables are partitioned by ``recorded_at``; the rollup tables first by
``width`` (one sub-table per tier, each with its own window), then by ``bucket_start``.
Names: ``<parent>_<YYYYMMDD>``; only this module creates or drops them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

ROLLUP_WIDTHS = (300, 3600)


@dataclass(frozen=True, slots=True)
class Partitioned:
    table: str
    column: str
    # The unique constraint the table keeps (it must hold the partition keys).
    unique: tuple[str, ...] = ()
    # Rollups: one sub-table per width, each partitioned by day.
    widths: tuple[int, ...] = ()

    def parents(self) -> list[str]:
        """The tables whose children are the daily partitions."""
        if self.widths:
            return [f"{self.table}_{width}" for width in self.widths]
        return [self.table]


RAW = (
    Partitioned("gpu_metric_samples", "recorded_at"),
    Partitioned("system_metric_samples", "recorded_at"),
    Partitioned("worker_metric_samples", "recorded_at"),
)
ROLLUPS = (
    Partitioned(
        "gpu_metric_rollups",
        "bucket_start",
        ("agent_id", "width", "bucket_start", "gpu_id"),
        ROLLUP_WIDTHS,
    ),
    Partitioned(
        "system_metric_rollups",
        "bucket_start",
        ("agent_id", "width", "bucket_start"),
        ROLLUP_WIDTHS,
    ),
    Partitioned(
        "worker_metric_rollups",
        "bucket_start",
        ("agent_id", "width", "bucket_start", "worker_id"),
        ROLLUP_WIDTHS,
    ),
)
_DAY = re.compile(r"_(\d{8})$")


def day_of(at: datetime) -> date:
    return at.astimezone(UTC).date()


def _bound(day: date) -> str:
    return datetime.combine(day, time(), UTC).isoformat()


def partition_name(parent: str, day: date) -> str:
    return f"{parent}_{day:%Y%m%d}"


def create_day_sql(parent: str, day: date) -> str:
    return (
        f'CREATE TABLE IF NOT EXISTS "{partition_name(parent, day)}" PARTITION OF "{parent}" '
        f"FOR VALUES FROM ('{_bound(day)}') TO ('{_bound(day + timedelta(days=1))}')"
    )


async def ensure_days(client: BaseDBAsyncClient, parent: str, days: set[date]) -> None:
    for day in sorted(days):
        try:
            await client.execute_script(create_day_sql(parent, day))
        except Exception:
            # Processes starting together (serve --workers) race to create the same day:
            # IF NOT EXISTS does not cover two concurrent creations; the loser finds it made.
            if day not in await days_of(client, parent):
                raise


async def days_of(client: BaseDBAsyncClient, parent: str) -> dict[date, str]:
    rows = await client.execute_query_dict(
        "SELECT c.relname AS name FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
        "WHERE p.relname = $1",
        [parent],
    )
    days = {}
    for row in rows:
        match = _DAY.search(row["name"])
        if match:
            days[datetime.strptime(match.group(1), "%Y%m%d").date()] = row["name"]
    return days


async def drop_before(client: BaseDBAsyncClient, parent: str, cutoff: datetime) -> list[str]:
    """Drop the day partitions that end at or before ``cutoff``; their names."""
    dropped = []
    for day, name in sorted((await days_of(client, parent)).items()):
        if datetime.combine(day + timedelta(days=1), time(), UTC) <= cutoff:
            await client.execute_script(f'DROP TABLE IF EXISTS "{name}"')
            dropped.append(name)
    return dropped


async def convert(client: BaseDBAsyncClient, spec: Partitioned) -> None:
    """Turn a plain table into its partitioned form, rows kept (a migration step)."""
    old = f"{spec.table}_unpartitioned"
    t = spec.table
    by = f"LIST (width)" if spec.widths else f"RANGE ({spec.column})"  # noqa: F541
    primary = ", ".join(["id", "width", spec.column] if spec.widths else ["id", spec.column])
    statements = [
        f'ALTER TABLE "{t}" RENAME TO "{old}"',
        f'CREATE TABLE "{t}" (LIKE "{old}" INCLUDING DEFAULTS) PARTITION BY {by}',
        f'ALTER TABLE "{t}" ADD CONSTRAINT "{t}_part_pkey" PRIMARY KEY ({primary})',
        f'ALTER TABLE "{t}" ADD CONSTRAINT "{t}_part_agent_fkey" FOREIGN KEY (agent_id) '
        "REFERENCES agents (id) ON DELETE CASCADE",
        f'ALTER SEQUENCE "{t}_id_seq" OWNED BY "{t}".id',
    ]
    if spec.unique:
        statements.append(
            f'ALTER TABLE "{t}" ADD CONSTRAINT "{t}_part_key" UNIQUE ({", ".join(spec.unique)})'
        )
    else:
        # Reads of one agent over time; BRIN on time for the rollups' range scans.
        statements.append(f'CREATE INDEX "{t}_part_agent_time" ON "{t}" (agent_id, {spec.column})')
        statements.append(f'CREATE INDEX "{t}_part_time" ON "{t}" USING brin ({spec.column})')
    for width in spec.widths:
        statements.append(
            f'CREATE TABLE "{t}_{width}" PARTITION OF "{t}" FOR VALUES IN ({width}) '
            f"PARTITION BY RANGE ({spec.column})"
        )
    for statement in statements:
        await client.execute_script(statement)
    # Names are this module's constants, never input.
    rows: list[dict[str, Any]] = await client.execute_query_dict(
        f"SELECT DISTINCT {'width, ' if spec.widths else ''}"  # noqa: S608
        f"date_trunc('day', {spec.column} AT TIME ZONE 'UTC') AS day FROM \"{old}\""
    )
    for row in rows:
        parent = f"{t}_{row['width']}" if spec.widths else t
        await ensure_days(client, parent, {row["day"].date()})
    await client.execute_script(f'INSERT INTO "{t}" SELECT * FROM "{old}"')  # noqa: S608
    await client.execute_script(f'DROP TABLE "{old}"')
