"""Reads for ``agentMetrics``: samples of one agent, aggregated into time buckets by the database.

Pure reads (the plan rule is ``services.plans.require_metrics``, called by the
resolver). The database groups the samples, so a week of 10-second reports
comes back as at most ``MAX_BUCKETS`` rows per GPU, never as the raw samples.

The tier read follows the bucket asked (``tier``): raw samples for buckets under
5 minutes, the 5-minute rollups under an hour, the hourly rollups above
(``services/metrics_rollups.py``). The answer has the same shape whichever tier:
averages are the rollups' sums over their counts. A rollup row counts in the bucket
where it starts, so with a range not aligned to the tier the first partial tier
bucket is left out.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from gpugo.errors import FieldError, ValidationFailed
from gpugo.models import Agent
from gpugo.services.metrics_rollups import FIVE_MINUTES, HOUR, ROLLUP_BY_TABLE

# A grouped read's rows: asyncpg's records or sqlite3 rows, read by position (the
# time-series engine's reads give dicts, read by name: ``types.metrics``).
Rows = Sequence[Sequence[Any]]

# A day in one-minute buckets.
MAX_BUCKETS = 1440
MIN_BUCKET_SECONDS = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UNIX_EPOCH_JULIAN_DAY = 2440587.5


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime
    bucket_seconds: int

    def bucket_start(self, index: int) -> datetime:
        return self.start + timedelta(seconds=index * self.bucket_seconds)


def window(*, start: datetime, end: datetime, bucket_seconds: int) -> Window:
    """The requested range, or validation_error naming each bad argument."""
    details = []
    if bucket_seconds < MIN_BUCKET_SECONDS:
        details.append(FieldError("bucket", f"Must be at least {MIN_BUCKET_SECONDS} second."))
    if end <= start:
        details.append(FieldError("to", "Must be after from."))
    elif bucket_seconds >= MIN_BUCKET_SECONDS:
        buckets = math.ceil((end - start).total_seconds() / bucket_seconds)
        if buckets > MAX_BUCKETS:
            details.append(
                FieldError(
                    "bucket",
                    f"The range holds {buckets} buckets of {bucket_seconds} s; at most "
                    f"{MAX_BUCKETS} are allowed: widen the bucket or narrow the range.",
                )
            )
    if details:
        raise ValidationFailed(
            "; ".join(f"{d.field}: {d.message}" for d in details), details=details
        )
    return Window(start=start, end=end, bucket_seconds=bucket_seconds)


async def owns_agent(*, user_id: str, agent_id: str) -> bool:
    return await Agent.filter(id=agent_id, user_id=user_id).exists()


RAW = 0


def tier(bucket_seconds: int) -> int:
    """The rollup width read for a bucket (``RAW``: the samples themselves)."""
    if bucket_seconds < FIVE_MINUTES:
        return RAW
    return FIVE_MINUTES if bucket_seconds < HOUR else HOUR


def _bucket_sql(w: Window, column: str = "recorded_at") -> str:
    """Whole buckets since ``w.start``, in integer milliseconds so boundaries are exact.

    Only integers computed here enter the SQL text.
    """
    start_ms = (w.start - _EPOCH) // timedelta(milliseconds=1)
    width_ms = int(w.bucket_seconds) * 1000
    if connections.get("default").capabilities.dialect == "sqlite":
        # SQLite keeps timestamps as ISO text and julianday() at millisecond precision;
        # rounding the float back to whole milliseconds makes the division exact.
        days = f'julianday("{column}") - {_UNIX_EPOCH_JULIAN_DAY}'
        unix_ms = f"CAST(ROUND(({days}) * 86400000.0) AS INTEGER)"
        return f"({unix_ms} - {start_ms}) / {width_ms}"
    # date_part is double precision (EXTRACT is numeric, several times slower over a day
    # of samples); rounded to whole milliseconds first, the division is exact.
    unix_ms = f"ROUND(date_part('epoch', \"{column}\") * 1000)"
    return f"CAST(FLOOR(({unix_ms} - {start_ms}) / {width_ms}) AS BIGINT)"


async def _grouped(
    *,
    table: str,
    keys: tuple[str, ...],
    columns: str,
    agent_id: str,
    w: Window,
    db: BaseDBAsyncClient,
    part: tuple[datetime, datetime] | None = None,
) -> Rows:
    """One tier's rows of the agent grouped into the window's buckets. Each row is the
    keys, the bucket's index (an integer from 0) and ``columns``, in that order. With
    ``part`` (whole buckets of the window), only the rows of that part.

    The raw tier groups the samples by ``recorded_at``. A rollup tier groups its rows by
    ``bucket_start``, and after its newest bucket (the buckets still open, or not yet
    rolled up) the finer tier's rows and then the samples themselves, each sample as a
    rollup row of one: ``columns`` aggregate all of them alike.

    In no order: sorting them would cost the database more than placing them costs the
    answer (``types.metrics``), which puts each row at its bucket's index. Plain SQL, read
    as the driver's records: the rows go straight to the answer, never through models."""
    width = tier(w.bucket_seconds)
    since, until = part or (w.start, w.end)
    postgres = db.capabilities.dialect == "postgres"
    params: list[Any] = []

    def mark(value: Any) -> str:
        params.append(value)
        return f"${len(params)}" if postgres else "?"

    select_keys = "".join(f"{key}, " for key in keys)
    group = ", ".join((*keys, "bucket"))
    if width == RAW:
        column = "recorded_at"
        source = (
            f"{table} WHERE agent_id = {mark(agent_id)} "
            f"AND recorded_at >= {mark(since)} AND recorded_at < {mark(until)}"
        )
    else:
        rollup = ROLLUP_BY_TABLE[table]
        ends = await _tier_ends(db, table, agent_id)
        names = ", ".join(name for name, _, _ in rollup.columns)
        parts = []
        lower = since
        for tier_width in (HOUR, FIVE_MINUTES) if width == HOUR else (FIVE_MINUTES,):
            parts.append(
                f"SELECT {select_keys}bucket_start AS at, {names} FROM {table} "  # noqa: S608
                f"WHERE agent_id = {mark(agent_id)} AND width = {tier_width} "
                f"AND bucket_start >= {mark(lower)} AND bucket_start < {mark(until)}"
            )
            end = ends[tier_width]
            if end is not None and end > lower:
                lower = end
        parts.append(
            f"SELECT {select_keys}recorded_at AS at, {rollup.sample_as_row()} "  # noqa: S608
            f"FROM {rollup.source} WHERE agent_id = {mark(agent_id)} "
            f"AND recorded_at >= {mark(lower)} AND recorded_at < {mark(until)}"
        )
        column, source = "at", f"({' UNION ALL '.join(parts)}) AS tiers"
    sql = (
        f"SELECT {select_keys}{_bucket_sql(w, column)} AS bucket, {columns} "  # noqa: S608
        f"FROM {source} GROUP BY {group}"
    )
    _, rows = await db.execute_query(sql, params)
    return rows


async def _tier_ends(
    db: BaseDBAsyncClient, table: str, agent_id: str
) -> dict[int, datetime | None]:
    """Where each rollup tier of the agent ends: the end of its newest bucket, or None.
    Two index look-ups (``agent_id, width, bucket_start`` leads the unique index)."""
    marks = ("$1", "$2") if db.capabilities.dialect == "postgres" else ("?", "?")
    newest = [
        f"(SELECT MAX(bucket_start) FROM {table} "  # noqa: S608
        f"WHERE agent_id = {mark} AND width = {width})"
        for mark, width in zip(marks, (FIVE_MINUTES, HOUR), strict=True)
    ]
    _, rows = await db.execute_query(f"SELECT {', '.join(newest)}", [agent_id, agent_id])
    ends: dict[int, datetime | None] = {}
    for value, width in zip(rows[0], (FIVE_MINUTES, HOUR), strict=True):
        if value is None:
            ends[width] = None
            continue
        # SQLite keeps times as text ('YYYY-MM-DD HH:MM:SS+00:00').
        start = value if isinstance(value, datetime) else datetime.fromisoformat(value)
        ends[width] = start.replace(tzinfo=start.tzinfo or UTC) + timedelta(seconds=width)
    return ends


def _raw_avg(column: str, dialect: str) -> str:
    """The average of an integer column, in double precision on both databases.

    PostgreSQL's AVG of integers is a numeric division (its sum over its count), then
    cast: the slowest part of a day's read (numeric arithmetic and a conversion through
    text per bucket). Over 1, 2, 4 or 8 samples (a bucket of a 30-s agent's minute holds
    2) the float division is the same figure: the sum is exact in double precision, a
    division by a power of two is exact, and so is the numeric quotient (at most 3
    decimals). Any other count takes the numeric path, as AVG itself computes it
    (``int8_avg``: the sum and the count as numeric, divided); a CASE evaluates only the
    branch it takes. SQLite's AVG is already a float division."""
    if dialect == "sqlite":
        return f"CAST(AVG({column}) AS DOUBLE PRECISION) AS {column}_avg"
    return (
        f"CASE WHEN COUNT({column}) IN (1, 2, 4, 8) "
        f"THEN CAST(SUM({column}) AS DOUBLE PRECISION) / COUNT({column}) "
        f"ELSE CAST(CAST(SUM({column}) AS NUMERIC) / COUNT({column}) AS DOUBLE PRECISION) "
        f"END AS {column}_avg"
    )


def _raw_float_avg(column: str) -> str:
    # AVG of a double precision column is its sum over its count, the same figure; AVG
    # also keeps a sum of squares on PostgreSQL, which nothing here reads.
    return f"SUM({column}) / COUNT({column}) AS {column}_avg"


def _raw_max(column: str) -> str:
    return f"MAX({column}) AS {column}_max"


_DIALECTS = ("postgres", "sqlite")
# Per database dialect.
_GPU_RAW_COLUMNS = {
    dialect: ", ".join(
        [
            "COUNT(*) AS samples",
            _raw_float_avg("utilization"),
            _raw_max("utilization"),
            _raw_avg("vram_used_mb", dialect),
            _raw_max("vram_used_mb"),
            "MAX(vram_total_mb) AS vram_total_mb",
            _raw_avg("temperature", dialect),
            _raw_max("temperature"),
            _raw_float_avg("power_usage_w"),
            _raw_max("power_usage_w"),
        ]
    )
    for dialect in _DIALECTS
}
_SYSTEM_RAW_COLUMNS = {
    dialect: ", ".join(
        [
            "COUNT(*) AS samples",
            _raw_float_avg("cpu_usage"),
            _raw_max("cpu_usage"),
            _raw_avg("memory_used_mb", dialect),
            _raw_max("memory_used_mb"),
            "MAX(memory_total_mb) AS memory_total_mb",
        ]
    )
    for dialect in _DIALECTS
}
_WORKER_RAW_COLUMNS = {
    dialect: ", ".join(
        [
            "COUNT(*) AS samples",
            # The agent's code for running is 1.
            "SUM(CASE WHEN status = 1 THEN 1 ELSE 0 END) AS running_samples",
            _raw_avg("connections", dialect),
            _raw_max("connections"),
            "MAX(restarts) AS restarts_max",
        ]
    )
    for dialect in _DIALECTS
}


def _avg(column: str) -> str:
    return f"CAST(SUM({column}_sum) AS DOUBLE PRECISION) / SUM(samples) AS {column}_avg"


def _max(column: str) -> str:
    return f"MAX({column}_max) AS {column}_max"


_GPU_ROLLUP_COLUMNS = ", ".join(
    [
        "SUM(samples) AS samples",
        _avg("utilization"),
        _max("utilization"),
        _avg("vram_used_mb"),
        _max("vram_used_mb"),
        "MAX(vram_total_mb) AS vram_total_mb",
        _avg("temperature"),
        _max("temperature"),
        _avg("power_usage_w"),
        _max("power_usage_w"),
    ]
)
_SYSTEM_ROLLUP_COLUMNS = ", ".join(
    [
        "SUM(samples) AS samples",
        _avg("cpu_usage"),
        _max("cpu_usage"),
        _avg("memory_used_mb"),
        _max("memory_used_mb"),
        "MAX(memory_total_mb) AS memory_total_mb",
    ]
)
_WORKER_ROLLUP_COLUMNS = ", ".join(
    [
        "SUM(samples) AS samples",
        "SUM(running_samples) AS running_samples",
        _avg("connections"),
        _max("connections"),
        "MAX(restarts_max) AS restarts_max",
    ]
)


async def gpu_buckets(
    *,
    agent_id: str,
    w: Window,
    db: BaseDBAsyncClient,
    part: tuple[datetime, datetime] | None = None,
) -> Rows:
    """Per GPU and bucket: the GPU, the bucket's index, then ``GPU_COLUMNS``.

    ``db`` is the metrics connection (``gpugo.db.metrics_client``): a long read there
    holds no other request."""
    raw = tier(w.bucket_seconds) == RAW
    return await _grouped(
        table="gpu_metric_samples" if raw else "gpu_metric_rollups",
        keys=("gpu_id",),
        columns=_GPU_RAW_COLUMNS[db.capabilities.dialect] if raw else _GPU_ROLLUP_COLUMNS,
        agent_id=agent_id,
        w=w,
        db=db,
        part=part,
    )


# From this many buckets on, PostgreSQL groups the GPUs' rows in two statements at once,
# each over half the window: the grouping is most of a long chart's read, and a
# statement runs on one core.
SPLIT_BUCKETS = 360


async def gpu_and_system_buckets(
    *, agent_id: str, w: Window, db: BaseDBAsyncClient
) -> tuple[Rows, Rows]:
    """``gpu_buckets`` and ``system_buckets``; on PostgreSQL read together (the metrics
    pool's connections), a long window's GPU rows in two halves."""
    if db.capabilities.dialect != "postgres":
        gpu = await gpu_buckets(agent_id=agent_id, w=w, db=db)
        return gpu, await system_buckets(agent_id=agent_id, w=w, db=db)
    buckets = math.ceil((w.end - w.start) / timedelta(seconds=w.bucket_seconds))
    parts: list[tuple[datetime, datetime] | None] = [None]
    if buckets >= SPLIT_BUCKETS:
        middle = w.bucket_start(buckets // 2)
        parts = [(w.start, middle), (middle, w.end)]
    reads = [
        asyncio.ensure_future(system_buckets(agent_id=agent_id, w=w, db=db)),
        *(
            asyncio.ensure_future(gpu_buckets(agent_id=agent_id, w=w, db=db, part=part))
            for part in parts
        ),
    ]
    try:
        system, *halves = await asyncio.gather(*reads)
    except BaseException:
        # The error as it came (not a group of them); nothing left running.
        for read in reads:
            read.cancel()
        raise
    return halves[0] if len(halves) == 1 else [*halves[0], *halves[1]], system


async def system_buckets(*, agent_id: str, w: Window, db: BaseDBAsyncClient) -> Rows:
    """Per bucket: the bucket's index, then ``SYSTEM_COLUMNS``."""
    raw = tier(w.bucket_seconds) == RAW
    return await _grouped(
        table="system_metric_samples" if raw else "system_metric_rollups",
        keys=(),
        columns=_SYSTEM_RAW_COLUMNS[db.capabilities.dialect] if raw else _SYSTEM_ROLLUP_COLUMNS,
        agent_id=agent_id,
        w=w,
        db=db,
    )


async def worker_buckets(*, agent_id: str, w: Window, db: BaseDBAsyncClient) -> Rows:
    """Per worker and bucket: the worker, the bucket's index, then samples, how many found
    it running, clients and restarts (``WORKER_COLUMNS``)."""
    raw = tier(w.bucket_seconds) == RAW
    return await _grouped(
        table="worker_metric_samples" if raw else "worker_metric_rollups",
        keys=("worker_id",),
        columns=_WORKER_RAW_COLUMNS[db.capabilities.dialect] if raw else _WORKER_ROLLUP_COLUMNS,
        agent_id=agent_id,
        w=w,
        db=db,
    )
