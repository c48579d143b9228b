"""``agentMetrics`` and the users' export read through the engine's PromQL API.

The rows have the shape of ``gpugo.schema.metrics``' SQL reads, so the GraphQL types
serialise either. A bucket ``[start + i*b, start + (i+1)*b)`` is the rollup window
ending 1 ms before its end (PromQL windows are open on the left and closed on the
right), evaluated by one ``query_range`` with the bucket width as its step. The last
bucket of a range that is not a whole number of buckets runs to its full width.
"""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from datetime import timedelta
from typing import Any

from gpugo import clock
from gpugo.schema.metrics import Window
from gpugo.timeseries.victoria import (
    GPU_FIELDS,
    SYSTEM_FIELDS,
    WORKER_FIELDS,
    Series,
    VictoriaMetrics,
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


async def latest(
    engine: VictoriaMetrics, *, user_id: str, within_seconds: int
) -> dict[str, list[dict[str, Any]]]:
    """The newest value of each series of the user within the window, as rows per
    measurement: ``{"gpu_metrics": [{"agent_id", "gpu_id", "utilization", ...}], ...}``."""
    now = clock.now()
    out: dict[str, list[dict[str, Any]]] = {}
    measurements = {
        "gpu_metrics": (GPU_FIELDS, ("agent_id", "gpu_id")),
        "system_metrics": (SYSTEM_FIELDS, ("agent_id",)),
        "worker_metrics": (WORKER_FIELDS, ("agent_id", "worker_id")),
    }
    queries = [
        engine.query(
            f'last_over_time({{__name__=~"{measurement}_.*",user_id={_quote(user_id)}}}'
            f"[{within_seconds}s])",
            at=now,
        )
        for measurement in measurements
    ]
    results: list[list[Series]] = await asyncio.gather(*queries)
    for (measurement, (fields, keys)), found in zip(measurements.items(), results, strict=True):
        rows: dict[tuple[str, ...], dict[str, Any]] = {}
        for series in found:
            field = series.labels.get("__name__", "").removeprefix(f"{measurement}_")
            if field not in fields or not series.values:
                continue
            identity = tuple(series.labels.get(k, "") for k in keys)
            row = rows.setdefault(identity, dict(zip(keys, identity, strict=True)))
            row[field] = series.values[-1][1]
        out[measurement] = list(rows.values())
    return out


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
