"""Reads for ``agentMetrics``: samples of one agent, aggregated into time buckets by the database.

Pure reads (the plan rule is ``services.plans.require_metrics``, called by the
resolver). The database groups the samples, so a week of 10-second reports
comes back as at most ``MAX_BUCKETS`` rows per GPU, never as the raw samples.
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

MAX_BUCKETS = 1000


class Mean(Avg):
    """AVG as the database computes it. Tortoise's Avg converts the result through the
    column's field, so the mean of an integer column came back truncated (57.5 -> 57)."""

    populate_field_object = False


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


def _bucket_expression(w: Window) -> RawSQL:
    """Whole buckets since ``w.start``, in integer milliseconds so boundaries are exact.

    Only integers computed here enter the SQL text.
    """
    start_ms = (w.start - _EPOCH) // timedelta(milliseconds=1)
    width_ms = int(w.bucket_seconds) * 1000
    if connections.get("default").capabilities.dialect == "sqlite":
        # SQLite keeps timestamps as ISO text and julianday() at millisecond precision;
        # rounding the float back to whole milliseconds makes the division exact.
        days = f'julianday("recorded_at") - {_UNIX_EPOCH_JULIAN_DAY}'
        unix_ms = f"CAST(ROUND(({days}) * 86400000.0) AS INTEGER)"
        return RawSQL(f"({unix_ms} - {start_ms}) / {width_ms}")
    return RawSQL(f'FLOOR((EXTRACT(EPOCH FROM "recorded_at") * 1000 - {start_ms}) / {width_ms})')


def _in_window(query: QuerySet[Any], w: Window, db: BaseDBAsyncClient) -> QuerySet[Any]:
    return query.filter(recorded_at__gte=w.start, recorded_at__lt=w.end).using_db(db)


async def gpu_buckets(*, agent_id: str, w: Window, db: BaseDBAsyncClient) -> list[dict[str, Any]]:
    """Per GPU and bucket: count, averages and maxima; ordered by GPU then time.

    ``db`` is the metrics connection (``gpugo.db.metrics_client``): a long read there
    holds no other request."""
    query = _in_window(GpuMetricSample.filter(agent_id=agent_id), w, db)
    return (
        await query.annotate(
            bucket=_bucket_expression(w),
            samples=Count("id"),
            utilization_avg=Mean("utilization"),
            utilization_max=Max("utilization"),
            vram_used_mb_avg=Mean("vram_used_mb"),
            vram_used_mb_max=Max("vram_used_mb"),
            vram_total_mb=Max("vram_total_mb"),
            temperature_avg=Mean("temperature"),
            temperature_max=Max("temperature"),
            power_usage_w_avg=Mean("power_usage_w"),
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
    query = _in_window(SystemMetricSample.filter(agent_id=agent_id), w, db)
    return (
        await query.annotate(
            bucket=_bucket_expression(w),
            samples=Count("id"),
            cpu_usage_avg=Mean("cpu_usage"),
            cpu_usage_max=Max("cpu_usage"),
            memory_used_mb_avg=Mean("memory_used_mb"),
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
    query = _in_window(WorkerMetricSample.filter(agent_id=agent_id), w, db)
    return (
        await query.annotate(
            bucket=_bucket_expression(w),
            samples=Count("id"),
            # The agent's code for running is 1.
            running_samples=Sum(RawSQL("CASE WHEN status = 1 THEN 1 ELSE 0 END")),
            connections_avg=Mean("connections"),
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
