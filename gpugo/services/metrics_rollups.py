"""The long history of metrics: 5-minute and hourly rollups, and retention per tier.

Three tiers, each kept for its own window:

- raw samples, ``GPUGO_METRICS_RAW_HOURS`` (24 h);
- 5-minute rollups, ``GPUGO_METRICS_5M_DAYS`` (7 days);
- hourly rollups, ``GPUGO_METRICS_RETENTION_DAYS`` (30 days).

A rollup row holds, per GPU (host, worker) and bucket, the sample count, the sums
(an average over any span of buckets is sum / count) and the maxima. The sweeper
maintains them with set-based statements: every ``GPUGO_METRICS_ROLLUP_SECONDS`` it
rolls up the 5-minute buckets that have closed since its last pass (ended at least
``LATE_TOLERANCE`` ago, for points that arrive late; and back to the oldest point its
own process wrote meanwhile), then the hours that closed, from their 5-minute rows.
Each bucket is written once, when it is complete: a fleet of 100,000 agents has about
700,000 series, and rewriting each one's open buckets on every pass was more work for
PostgreSQL than storing the points (docs/decisions.md, "Metrics rollups"). Reads
take what is newer than a tier's last bucket from the finer tier or the samples
(``gpugo/schema/metrics.py``), so a chart is as fresh as the samples whichever tier
answers. A recomputed bucket replaces its row (``ON CONFLICT ... DO UPDATE``), so
passes may overlap and instances may run it alike. The same statements fill the
rollups of existing samples when the migration adds them, and of the benchmark's
seeded history (``roll_up``).

Retention (``apply_retention``): on PostgreSQL whole day partitions are dropped once
past their tier's window (``gpugo.partitions``), no DELETE; on SQLite a DELETE by
time through an index.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from gpugo import clock, partitions
from gpugo.services.metrics_store import MetricsIngest
from gpugo.settings import Settings

log = logging.getLogger("gpugo.metrics")

FIVE_MINUTES = 300
HOUR = 3600
_FIVE = timedelta(seconds=FIVE_MINUTES)
_HOUR = timedelta(seconds=HOUR)
# A point another instance stored this long after its bucket's last pass still reaches
# the rollups (an agent's points arrive within its report period, 30 s, of their time).
LATE_TOLERANCE = timedelta(minutes=1)
# Where a process's first pass starts (rollups of earlier samples were made before it).
FIRST_PASS_LOOKBACK = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class Rollup:
    table: str
    source: str
    keys: tuple[str, ...]
    # (rollup column, SUM or MAX, the column's value for one raw sample): a bucket's
    # value is the aggregate over its samples' values, or over its finer rows' values.
    columns: tuple[tuple[str, str, str], ...]

    def sample_as_row(self) -> str:
        """A raw sample's columns as a rollup row of one sample (for reads that join the
        samples newer than a tier's last bucket to its rows)."""
        return ", ".join(f"{value} AS {name}" for name, _, value in self.columns)


def _measure(column: str, whole: bool = False) -> tuple[tuple[str, str, str], ...]:
    if whole:
        return ((column, "MAX", column),)
    return ((f"{column}_sum", "SUM", column), (f"{column}_max", "MAX", column))


_SAMPLES = (("samples", "SUM", "1"),)
ROLLUPS = (
    Rollup(
        "gpu_metric_rollups",
        "gpu_metric_samples",
        ("gpu_id",),
        _SAMPLES
        + _measure("utilization")
        + _measure("vram_used_mb")
        + _measure("vram_total_mb", whole=True)
        + _measure("temperature")
        + _measure("power_usage_w"),
    ),
    Rollup(
        "system_metric_rollups",
        "system_metric_samples",
        (),
        _SAMPLES
        + _measure("cpu_usage")
        + _measure("memory_used_mb")
        + _measure("memory_total_mb", whole=True),
    ),
    Rollup(
        "worker_metric_rollups",
        "worker_metric_samples",
        ("worker_id",),
        (
            *_SAMPLES,
            # The agent's code for running is 1.
            ("running_samples", "SUM", "CASE WHEN status = 1 THEN 1 ELSE 0 END"),
            ("connections_sum", "SUM", "connections"),
            ("connections_max", "MAX", "connections"),
            ("restarts_max", "MAX", "restarts"),
        ),
    ),
)


ROLLUP_BY_TABLE = {rollup.table: rollup for rollup in ROLLUPS}


def _dialect(client: BaseDBAsyncClient) -> str:
    return client.capabilities.dialect


def bucket_sql(dialect: str, column: str, width: int) -> str:
    """The start of the ``width``-second bucket holding ``column``, as the column stores it."""
    if dialect == "postgres":
        return f"to_timestamp(floor(extract(epoch from {column}) / {width}) * {width})"
    # SQLite keeps times as Python writes them: 'YYYY-MM-DD HH:MM:SS+00:00' for whole seconds.
    seconds = f"CAST(strftime('%s', {column}) AS INTEGER)"
    return (
        f"strftime('%Y-%m-%d %H:%M:%S', ({seconds} / {width}) * {width}, 'unixepoch') || '+00:00'"
    )


def upsert_sql(dialect: str, rollup: Rollup, width: int) -> str:
    """Recompute ``width`` buckets over [$1, $2) of the source and replace their rows."""
    from_raw = width == FIVE_MINUTES
    source = rollup.source if from_raw else rollup.table
    time_column = "recorded_at" if from_raw else "bucket_start"
    bucket = bucket_sql(dialect, time_column, width)
    keys = ", ".join(("agent_id", *rollup.keys))
    names = ", ".join(name for name, _, _ in rollup.columns)
    aggregates = ", ".join(
        f"{function}({value if from_raw else name})" for name, function, value in rollup.columns
    )
    first, second = ("$1", "$2") if dialect == "postgres" else ("?", "?")
    where = f"{time_column} >= {first} AND {time_column} < {second}"
    if not from_raw:
        where += f" AND width = {FIVE_MINUTES}"
    conflict = ", ".join(("agent_id", "width", "bucket_start", *rollup.keys))
    updates = ", ".join(f"{name} = excluded.{name}" for name, _, _ in rollup.columns)
    return (
        f"INSERT INTO {rollup.table} ({keys}, width, bucket_start, {names}) "  # noqa: S608
        f"SELECT {keys}, {width}, {bucket}, {aggregates} FROM {source} WHERE {where} "
        f"GROUP BY {keys}, {bucket} "
        f"ON CONFLICT ({conflict}) DO UPDATE SET {updates}"
    )


def _floor(at: datetime, width: int) -> datetime:
    seconds = int(at.timestamp()) // width * width
    return datetime.fromtimestamp(seconds, UTC)


def _days(start: datetime, end: datetime) -> set[date]:
    days = set()
    day = partitions.day_of(start)
    while day <= partitions.day_of(end):
        days.add(day)
        day += timedelta(days=1)
    return days


async def roll_up(start: datetime, end: datetime) -> None:
    """Recompute every 5-minute and hourly bucket that holds a moment of [start, end),
    complete or not (filling the rollups of samples already stored)."""
    await _roll_up_buckets(
        FIVE_MINUTES, _floor(start, FIVE_MINUTES), _floor(end, FIVE_MINUTES) + _FIVE
    )
    await _roll_up_buckets(HOUR, _floor(start, HOUR), _floor(end, HOUR) + _HOUR)


async def _roll_up_buckets(width: int, start: datetime, end: datetime) -> None:
    """Recompute the ``width`` buckets starting in [start, end), both whole buckets."""
    if start >= end:
        return
    client = connections.get("default")
    dialect = _dialect(client)
    if dialect == "postgres":
        for spec in partitions.ROLLUPS:
            await partitions.ensure_days(client, f"{spec.table}_{width}", _days(start, end))
    for rollup in ROLLUPS:
        await client.execute_query(upsert_sql(dialect, rollup, width), [start, end])


def windows(settings: Settings) -> dict[str, timedelta]:
    """How long each tier is kept."""
    return {
        "raw": timedelta(hours=settings.metrics_raw_hours),
        "5m": timedelta(days=settings.metrics_5m_days),
        "1h": timedelta(days=settings.metrics_retention_days),
    }


async def prepare_partitions(now: datetime | None = None) -> None:
    """On PostgreSQL, yesterday's, today's and tomorrow's partitions of every metrics table
    (at start, before the sweeper's first pass); nothing on SQLite."""
    client = connections.get("default")
    if _dialect(client) != "postgres":
        return
    now = now or clock.now()
    ahead = {partitions.day_of(now + timedelta(days=d)) for d in (-1, 0, 1)}
    for spec in (*partitions.RAW, *partitions.ROLLUPS):
        for parent in spec.parents():
            await partitions.ensure_days(client, parent, ahead)


async def apply_retention(settings: Settings, now: datetime | None = None) -> None:
    """Remove what is past each tier's window; on PostgreSQL also prepare the next days."""
    now = now or clock.now()
    client = connections.get("default")
    tiers = windows(settings)
    if _dialect(client) == "postgres":
        await prepare_partitions(now)
        for spec in partitions.RAW:
            await partitions.drop_before(client, spec.table, now - tiers["raw"])
        for spec in partitions.ROLLUPS:
            for width, tier in ((FIVE_MINUTES, "5m"), (HOUR, "1h")):
                parent = f"{spec.table}_{width}"
                await partitions.drop_before(client, parent, now - tiers[tier])
        return
    for spec in partitions.RAW:
        await client.execute_query(
            f"DELETE FROM {spec.table} WHERE recorded_at < ?",  # noqa: S608
            [now - tiers["raw"]],
        )
    for spec in partitions.ROLLUPS:
        for width, tier in ((FIVE_MINUTES, "5m"), (HOUR, "1h")):
            await client.execute_query(
                f"DELETE FROM {spec.table} WHERE width = ? AND bucket_start < ?",  # noqa: S608
                [width, now - tiers[tier]],
            )


class MetricsUpkeep:
    """The sweeper's pass: rollups of the buckets closed since the last one, then retention.

    A 5-minute bucket is closed once it ended ``LATE_TOLERANCE`` ago (points other
    instances write late are in by then), an hour once its last 5-minute bucket is. A
    pass rolls up the buckets closed since the previous pass, and back to the oldest
    point this instance wrote meanwhile (a late report's buckets are recomputed, within
    the raw window); a pass with nothing closed writes nothing."""

    def __init__(self, settings: Settings, ingest: MetricsIngest) -> None:
        self.settings = settings
        self.ingest = ingest
        # Every 5-minute bucket before this one was rolled up by this instance.
        self._closed: datetime | None = None

    async def run(self) -> None:
        now = clock.now()
        closed = _floor(now - LATE_TOLERANCE, FIVE_MINUTES)
        since = self._closed or now - FIRST_PASS_LOOKBACK
        oldest = self.ingest.take_oldest_written()
        if oldest is not None:
            since = min(since, max(oldest, now - timedelta(hours=self.settings.metrics_raw_hours)))
        try:
            await _roll_up_buckets(FIVE_MINUTES, _floor(since, FIVE_MINUTES), closed)
            await _roll_up_buckets(HOUR, _floor(since, HOUR), _floor(closed, HOUR))
        except Exception:
            # The next pass covers these buckets again.
            if oldest is not None:
                self.ingest.note_written(oldest)
            raise
        self._closed = max(closed, self._closed or closed)
        await apply_retention(self.settings, now)
