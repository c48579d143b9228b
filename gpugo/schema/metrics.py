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

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import RawSQL
from tortoise.functions import Avg, Count, Max, Sum
from tortoise.queryset import QuerySet

from gpugo.errors import FieldError, ValidationFailed
from gpugo.models import Agent, GpuMetricSample, SystemMetricSample, WorkerMetricSample

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
FIVE_MINUTES = 300
HOUR = 3600


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
    return f'FLOOR((EXTRACT(EPOCH FROM "{column}") * 1000 - {start_ms}) / {width_ms})'


def _bucket_expression(w: Window) -> RawSQL:
    return RawSQL(_bucket_sql(w))


async def _rollup_rows(
    *,
    table: str,
    keys: tuple[str, ...],
    columns: str,
    agent_id: str,
    w: Window,
    db: BaseDBAsyncClient,
) -> list[dict[str, Any]]:
    """Rows of a rollup table grouped into the window's buckets, like the raw reads'."""
    bucket = _bucket_sql(w, "bucket_start")
    marks = ["$1", "$2", "$3", "$4"] if db.capabilities.dialect == "postgres" else ["?"] * 4
    group = ", ".join((*keys, "bucket"))
    select_keys = "".join(f"{key}, " for key in keys)
    sql = (
        f"SELECT {select_keys}{bucket} AS bucket, SUM(samples) AS samples, {columns} "  # noqa: S608
        f"FROM {table} WHERE agent_id = {marks[0]} AND width = {marks[1]} "
        f"AND bucket_start >= {marks[2]} AND bucket_start < {marks[3]} "
        f"GROUP BY {group} ORDER BY {group}"
    )
    return await db.execute_query_dict(sql, [agent_id, tier(w.bucket_seconds), w.start, w.end])


def _avg(column: str) -> str:
    return f"SUM({column}_sum) * 1.0 / SUM(samples) AS {column}_avg"


def _max(column: str) -> str:
    return f"MAX({column}_max) AS {column}_max"


_GPU_ROLLUP_COLUMNS = ", ".join(
    [
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
        _avg("cpu_usage"),
        _max("cpu_usage"),
        _avg("memory_used_mb"),
        _max("memory_used_mb"),
        "MAX(memory_total_mb) AS memory_total_mb",
    ]
)
_WORKER_ROLLUP_COLUMNS = ", ".join(
    [
        "SUM(running_samples) AS running_samples",
        _avg("connections"),
        _max("connections"),
        "MAX(restarts_max) AS restarts_max",
    ]
)


def _in_window(query: QuerySet[Any], w: Window, db: BaseDBAsyncClient) -> QuerySet[Any]:
    return query.filter(recorded_at__gte=w.start, recorded_at__lt=w.end).using_db(db)


async def gpu_buckets(*, agent_id: str, w: Window, db: BaseDBAsyncClient) -> list[dict[str, Any]]:
    """Per GPU and bucket: count, averages and maxima; ordered by GPU then time.

    ``db`` is the metrics connection (``gpugo.db.metrics_client``): a long read there
    holds no other request."""
    if tier(w.bucket_seconds) != RAW:
        return await _rollup_rows(
            table="gpu_metric_rollups",
            keys=("gpu_id",),
            columns=_GPU_ROLLUP_COLUMNS,
            agent_id=agent_id,
            w=w,
            db=db,
        )
    query = _in_window(GpuMetricSample.filter(agent_id=agent_id), w, db)
    return (
        await query.annotate(
            bucket=_bucket_expression(w),
            samples=Count("id"),
            utilization_avg=Avg("utilization"),
            utilization_max=Max("utilization"),
            vram_used_mb_avg=Avg("vram_used_mb"),
            vram_used_mb_max=Max("vram_used_mb"),
            vram_total_mb=Max("vram_total_mb"),
            temperature_avg=Avg("temperature"),
            temperature_max=Max("temperature"),
            power_usage_w_avg=Avg("power_usage_w"),
            power_usage_w_max=Max("power_usage_w"),
        )
        .group_by("gpu_id", "bucket")
        .order_by("gpu_id", "bucket")
        .values(
            "gpu_id",
            "bucket",
            "samples",
            "utilization_avg",
            "utilization_max",
            "vram_used_mb_avg",
            "vram_used_mb_max",
            "vram_total_mb",
            "temperature_avg",
            "temperature_max",
            "power_usage_w_avg",
            "power_usage_w_max",
        )
    )


async def system_buckets(
    *, agent_id: str, w: Window, db: BaseDBAsyncClient
) -> list[dict[str, Any]]:
    if tier(w.bucket_seconds) != RAW:
        return await _rollup_rows(
            table="system_metric_rollups",
            keys=(),
            columns=_SYSTEM_ROLLUP_COLUMNS,
            agent_id=agent_id,
            w=w,
            db=db,
        )
    query = _in_window(SystemMetricSample.filter(agent_id=agent_id), w, db)
    return (
        await query.annotate(
            bucket=_bucket_expression(w),
            samples=Count("id"),
            cpu_usage_avg=Avg("cpu_usage"),
            cpu_usage_max=Max("cpu_usage"),
            memory_used_mb_avg=Avg("memory_used_mb"),
            memory_used_mb_max=Max("memory_used_mb"),
            memory_total_mb=Max("memory_total_mb"),
        )
        .group_by("bucket")
        .order_by("bucket")
        .values(
            "bucket",
            "samples",
            "cpu_usage_avg",
            "cpu_usage_max",
            "memory_used_mb_avg",
            "memory_used_mb_max",
            "memory_total_mb",
        )
    )


async def worker_buckets(
    *, agent_id: str, w: Window, db: BaseDBAsyncClient
) -> list[dict[str, Any]]:
    """Per worker and bucket: samples, how many found it running, clients and restarts."""
    if tier(w.bucket_seconds) != RAW:
        return await _rollup_rows(
            table="worker_metric_rollups",
            keys=("worker_id",),
            columns=_WORKER_ROLLUP_COLUMNS,
            agent_id=agent_id,
            w=w,
            db=db,
        )
    query = _in_window(WorkerMetricSample.filter(agent_id=agent_id), w, db)
    return (
        await query.annotate(
            bucket=_bucket_expression(w),
            samples=Count("id"),
            # The agent's code for running is 1.
            running_samples=Sum(RawSQL("CASE WHEN status = 1 THEN 1 ELSE 0 END")),
            connections_avg=Avg("connections"),
            connections_max=Max("connections"),
            restarts_max=Max("restarts"),
        )
        .group_by("worker_id", "bucket")
        .order_by("worker_id", "bucket")
        .values(
            "worker_id",
            "bucket",
            "samples",
            "running_samples",
            "connections_avg",
            "connections_max",
            "restarts_max",
        )
    )
