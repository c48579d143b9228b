"""What reads SQL's sample tables reads the engine through its PromQL API instead:
``agentMetrics``, the users' export, the live ``agentMetrics`` subscription and the fleet
overview's latest readings.

The rows have the shape of the SQL reads' (``gpugo.schema.metrics``, ``services.live``,
``services.fleet``), so the same code serialises either.

``agentMetrics``: a bucket ``[start + i*b, start + (i+1)*b)`` is the rollup window ending
1 ms before its end (PromQL windows are open on the left and closed on the right),
evaluated by one ``query_range`` with the bucket width as its step. The last bucket of a
range that is not a whole number of buckets runs to its full width.

The latest points (export, fleet) and one report (live) are instant queries at a time
given (``VictoriaMetrics.query``). A point the engine acknowledged is served within
about a second, the first point of a new series within about ten (its index): readers
that are told of a point at once wait for it (``services.live``).
"""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.fields import IntField

from gpugo import clock
from gpugo.models import GpuMetricSample, SystemMetricSample, WorkerMetricSample
from gpugo.schema.metrics import Window
from gpugo.timeseries.victoria import (
    GPU_FIELDS,
    SYSTEM_FIELDS,
    WORKER_FIELDS,
    Series,
    VictoriaMetrics,
    millis,
    selector,
)

_EDGE = timedelta(milliseconds=1)

# Row key -> (rollup function, series field): what the SQL reads compute.
_GPU = {
    "samples": ("count_over_time", "utilization"),
    "utilization_avg": ("avg_over_time", "utilization"),
    "utilization_max": ("max_over_time", "utilization"),
    "vram_used_mb_avg": ("avg_over_time", "vram_used_mb"),
    "vram_used_mb_max": ("max_over_time", "vram_used_mb"),
    "vram_total_mb": ("max_over_time", "vram_total_mb"),
    "temperature_avg": ("avg_over_time", "temperature"),
    "temperature_max": ("max_over_time", "temperature"),
    "power_usage_w_avg": ("avg_over_time", "power_usage_w"),
    "power_usage_w_max": ("max_over_time", "power_usage_w"),
}
_SYSTEM = {
    "samples": ("count_over_time", "cpu_usage"),
    "cpu_usage_avg": ("avg_over_time", "cpu_usage"),
    "cpu_usage_max": ("max_over_time", "cpu_usage"),
    "memory_used_mb_avg": ("avg_over_time", "memory_used_mb"),
    "memory_used_mb_max": ("max_over_time", "memory_used_mb"),
    "memory_total_mb": ("max_over_time", "memory_total_mb"),
}
_WORKER = {
    "samples": ("count_over_time", "status"),
    # The agent's code for running is 1.
    "running_samples": ("count_eq_over_time", "status"),
    "connections_avg": ("avg_over_time", "connections"),
    "connections_max": ("max_over_time", "connections"),
    "restarts_max": ("max_over_time", "restarts"),
}
_INTEGERS = {"samples", "running_samples", "vram_total_mb", "memory_total_mb", "restarts_max"}


async def _buckets(
    engine: VictoriaMetrics,
    *,
    measurement: str,
    columns: dict[str, tuple[str, str]],
    key: str | None,
    agent_id: str,
    w: Window,
) -> list[dict[str, Any]]:
    width = w.bucket_seconds
    count = math.ceil((w.end - w.start).total_seconds() / width)
    first = w.start + timedelta(seconds=width) - _EDGE
    last = w.start + timedelta(seconds=count * width) - _EDGE
    labels = {"agent_id": agent_id}

    def query(function: str, field: str) -> str:
        series = f"{selector(f'{measurement}_{field}', labels)}[{width}s]"
        extra = ", 1" if function == "count_eq_over_time" else ""
        return f"{function}({series}{extra})"

    results = await asyncio.gather(
        *(
            engine.query_range(query(f, field), start=first, end=last, step_seconds=width)
            for f, field in columns.values()
        )
    )
    rows: dict[tuple[str, int], dict[str, Any]] = defaultdict(dict)
    origin = first.timestamp()
    for column, found in zip(columns, results, strict=True):
        for series in found:
            name = series.labels.get(key, "") if key else ""
            for at, value in series.values:
                bucket = round((at - origin) / width)
                rows[(name, bucket)][column] = int(value) if column in _INTEGERS else value
    out = []
    for (name, bucket), row in sorted(rows.items()):
        if not row.get("samples"):
            continue  # a bucket without samples is left out, as in SQL
        if key:
            row[key] = name
        row["bucket"] = bucket
        out.append(row)
    return out


async def gpu_buckets(engine: VictoriaMetrics, *, agent_id: str, w: Window) -> list[dict[str, Any]]:
    return await _buckets(
        engine, measurement="gpu_metrics", columns=_GPU, key="gpu_id", agent_id=agent_id, w=w
    )


async def system_buckets(
    engine: VictoriaMetrics, *, agent_id: str, w: Window
) -> list[dict[str, Any]]:
    return await _buckets(
        engine, measurement="system_metrics", columns=_SYSTEM, key=None, agent_id=agent_id, w=w
    )


async def worker_buckets(
    engine: VictoriaMetrics, *, agent_id: str, w: Window
) -> list[dict[str, Any]]:
    return await _buckets(
        engine,
        measurement="worker_metrics",
        columns=_WORKER,
        key="worker_id",
        agent_id=agent_id,
        w=w,
    )


# Measurement -> its value fields, and the labels that name one row (a GPU, host, worker).
_ROWS = {
    "gpu_metrics": (GPU_FIELDS, ("agent_id", "gpu_id")),
    "system_metrics": (SYSTEM_FIELDS, ("agent_id",)),
    "worker_metrics": (WORKER_FIELDS, ("agent_id", "worker_id")),
}
# The measurements of a report a live view shows.
_REPORTED = ("system_metrics", "gpu_metrics")
# What the fleet overview shows of a GPU's newest sample.
_READING_FIELDS = ("utilization", "temperature", "vram_used_mb", "vram_total_mb")
# Fields stored in integer columns in SQL (the sample models say which); the engine
# answers floats.
_INTEGER_FIELDS = frozenset(
    name
    for model in (GpuMetricSample, SystemMetricSample, WorkerMetricSample)
    for name, field in model._meta.fields_map.items()
    if isinstance(field, IntField) and not field.pk
)


def _rows(measurement: str, found: list[Series]) -> list[dict[str, Any]]:
    """An instant query's series of one measurement as rows: one per GPU, host or worker,
    with its naming labels and the newest value of each field."""
    fields, keys = _ROWS[measurement]
    prefix = f"{measurement}_"
    rows: dict[tuple[str, ...], dict[str, Any]] = {}
    for series in found:
        name = series.labels.get("__name__", "")
        field = name.removeprefix(prefix)
        if not name.startswith(prefix) or field not in fields or not series.values:
            continue
        identity = tuple(series.labels.get(k, "") for k in keys)
        row = rows.setdefault(identity, dict(zip(keys, identity, strict=True)))
        newest = series.values[-1][1]
        row[field] = int(newest) if field in _INTEGER_FIELDS else newest
    return list(rows.values())


async def latest(
    engine: VictoriaMetrics, *, user_id: str, within_seconds: int
) -> dict[str, list[dict[str, Any]]]:
    """The newest value of each series of the user within the window, as rows per
    measurement: ``{"gpu_metrics": [{"agent_id", "gpu_id", "utilization", ...}], ...}``."""
    now = clock.now()
    queries = [
        engine.query(
            f'last_over_time({{__name__=~"{measurement}_.*",user_id={_quote(user_id)}}}'
            f"[{within_seconds}s])",
            at=now,
        )
        for measurement in _ROWS
    ]
    results: list[list[Series]] = await asyncio.gather(*queries)
    return {
        measurement: _rows(measurement, found)
        for measurement, found in zip(_ROWS, results, strict=True)
    }


async def report_at(
    engine: VictoriaMetrics, *, agent_id: str, at: datetime
) -> dict[str, list[dict[str, Any]]]:
    """One report of the agent: its host's row and each GPU's row stored at exactly ``at``
    (the millisecond the point was written at), as ``{"system_metrics": [...],
    "gpu_metrics": [...]}``; both empty while the engine does not serve it (yet)."""
    instant = datetime.fromtimestamp(millis(at) / 1000, UTC)
    found = await engine.query(
        f'last_over_time({{__name__=~"(gpu|system)_metrics_.+",agent_id={_quote(agent_id)}}}[1ms])',
        at=instant,
    )
    return {measurement: _rows(measurement, found) for measurement in _REPORTED}


async def newest_gpu_samples(
    engine: VictoriaMetrics, *, user_id: str, since: datetime
) -> list[dict[str, Any]]:
    """Each GPU's newest sample since ``since``, of the user's agents: rows of ``agent_id``,
    ``gpu_id``, the reading's fields and ``recorded_at`` (the sample's time)."""
    now = clock.now()
    window = f"{max(math.ceil((now - since) / _EDGE), 1)}ms"
    user = _quote(user_id)
    values, times = await asyncio.gather(
        engine.query(
            f'last_over_time({{__name__=~"gpu_metrics_({"|".join(_READING_FIELDS)})",'
            f"user_id={user}}}[{window}])",
            at=now,
        ),
        # The time of the newest point (VictoriaMetrics' tlast_over_time).
        engine.query(
            f"tlast_over_time(gpu_metrics_utilization{{user_id={user}}}[{window}])", at=now
        ),
    )
    rows = {(row["agent_id"], row["gpu_id"]): row for row in _rows("gpu_metrics", values)}
    for series in times:
        row = rows.get((series.labels.get("agent_id", ""), series.labels.get("gpu_id", "")))
        if row is not None:
            row["recorded_at"] = datetime.fromtimestamp(series.values[-1][1], UTC)
    wanted = ("recorded_at", *_READING_FIELDS)
    return [row for row in rows.values() if all(field in row for field in wanted)]


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
