from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any, NamedTuple

import strawberry

from gpugo.schema.context import GraphQLInfo
from gpugo.schema.metrics import Rows, Window, worker_buckets
from gpugo.timeseries import reads as tsdb


@strawberry.type(description="One GPU over one bucket: averages and maxima of its samples.")
class GpuMetricPoint:
    at: datetime = strawberry.field(description="Start of the bucket.")
    samples: int
    utilization_avg: float
    utilization_max: float
    vram_used_mb_avg: float
    vram_used_mb_max: int
    vram_total_mb: int
    temperature_avg: float
    temperature_max: int
    power_usage_w_avg: float
    power_usage_w_max: float


@strawberry.type
class GpuMetricSeries:
    gpu_id: str
    points: list[GpuMetricPoint] = strawberry.field(
        description="Oldest first; buckets without samples are left out."
    )


@strawberry.type(description="The host over one bucket.")
class SystemMetricPoint:
    at: datetime = strawberry.field(description="Start of the bucket.")
    samples: int
    cpu_usage_avg: float
    cpu_usage_max: float
    memory_used_mb_avg: float
    memory_used_mb_max: int
    memory_total_mb: int


@strawberry.type(description="A worker over one bucket, as its agent reported it.")
class WorkerMetricPoint:
    at: datetime = strawberry.field(description="Start of the bucket.")
    samples: int
    running_samples: int = strawberry.field(description="Samples that found it running.")
    connections_avg: float
    connections_max: int
    restarts_max: int


@strawberry.type
class WorkerMetricSeries:
    worker_id: strawberry.ID
    points: list[WorkerMetricPoint] = strawberry.field(
        description="Oldest first; buckets without samples are left out."
    )


@strawberry.type(description="An agent's metrics in time buckets over [from, to).")
class AgentMetrics:
    agent_id: strawberry.ID
    from_: datetime = strawberry.field(name="from")
    to: datetime
    bucket_seconds: int
    gpus: list[GpuMetricSeries]
    system: list[SystemMetricPoint] = strawberry.field(
        description="Oldest first; buckets without samples are left out."
    )
    window: strawberry.Private[Window]

    @strawberry.field(
        description="Each worker's status, clients and restarts (read only when asked for)."
    )
    async def workers(self, info: GraphQLInfo) -> list[WorkerMetricSeries]:
        # On the metrics connection like the GPU reads; a few workers per agent cost little
        # next to its GPUs, so no turn of the user's read limit is taken.
        server = info.context.server
        if server.timeseries is not None:
            # Time-series engine configured: read through its PromQL range API.
            rows = await tsdb.worker_buckets(
                server.timeseries, agent_id=self.agent_id, w=self.window
            )
        else:
            rows = await worker_buckets(agent_id=self.agent_id, w=self.window, db=server.metrics_db)
        series: dict[str, list[WorkerMetricPoint]] = defaultdict(list)
        # The SQL read's rows come in no order; a few workers' points sort cheaply.
        for row in sorted(rows, key=itemgetter("worker_id", "bucket")):
            series[row["worker_id"]].append(_worker_point(self.window, row))
        return [
            WorkerMetricSeries(worker_id=strawberry.ID(worker_id), points=points)
            for worker_id, points in series.items()
        ]


# Each point's values after ``at``, in the order the SQL reads select them (after the
# series' key, if any, and the bucket's index) and by the names the engine's rows use.
GPU_COLUMNS = (
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
SYSTEM_COLUMNS = (
    "samples",
    "cpu_usage_avg",
    "cpu_usage_max",
    "memory_used_mb_avg",
    "memory_used_mb_max",
    "memory_total_mb",
)


def as_rows(rows: list[dict[str, Any]], key: str | None, columns: tuple[str, ...]) -> Rows:
    """The engine's rows (dicts) in the SQL reads' shape: key, bucket, columns."""
    names = ((key,) if key else ()) + ("bucket", *columns)
    return [tuple(row[name] for name in names) for row in rows]


class _Starts(dict[int, datetime]):
    """Bucket index -> start, computed once per answer (every series shares them)."""

    def __init__(self, w: Window) -> None:
        super().__init__()
        self.w = w

    def __missing__(self, index: int) -> datetime:
        start = self[index] = self.w.bucket_start(index)
        return start


def _in_time_order(slots: list[Any]) -> list[Any]:
    return [point for point in slots if point is not None]


def _worker_point(w: Window, row: Any) -> WorkerMetricPoint:
    return WorkerMetricPoint(
        at=w.bucket_start(int(row["bucket"])),
        samples=row["samples"],
        running_samples=int(row["running_samples"] or 0),
        connections_avg=float(row["connections_avg"]),
        connections_max=int(row["connections_max"]),
        restarts_max=int(row["restarts_max"]),
    )


class GpuPointRow(NamedTuple):
    """A ``GpuMetricPoint`` as the answer holds it: GraphQL reads a point's attributes,
    which this tuple has by the same names, and a tuple is made in one call where the
    type's ``__init__`` sets eleven attributes (a day in minutes is some 13,000 points)."""

    at: datetime
    samples: int
    utilization_avg: float
    utilization_max: float
    vram_used_mb_avg: float
    vram_used_mb_max: int
    vram_total_mb: int
    temperature_avg: float
    temperature_max: int
    power_usage_w_avg: float
    power_usage_w_max: float


class SystemPointRow(NamedTuple):
    """A ``SystemMetricPoint`` as the answer holds it (see ``GpuPointRow``)."""

    at: datetime
    samples: int
    cpu_usage_avg: float
    cpu_usage_max: float
    memory_used_mb_avg: float
    memory_used_mb_max: int
    memory_total_mb: int


_tuple_new = tuple.__new__


def agent_metrics_node(
    *, agent_id: str, w: Window, gpu_rows: Rows, system_rows: Rows
) -> AgentMetrics:
    """The answer from the reads' rows (``schema.metrics``: key, bucket index, then
    ``GPU_COLUMNS`` or ``SYSTEM_COLUMNS``, in no order).

    Each row goes to its bucket's slot of its series (no sort), with its values as the
    database typed them (GraphQL's coercion of a leaf, in ``schema.compiled``, makes an
    int a Float where one is declared); series come in the order of their ids."""
    starts = _Starts(w)
    buckets = math.ceil((w.end - w.start) / timedelta(seconds=w.bucket_seconds))
    series: dict[str, list[GpuPointRow | None]] = {}
    for row in gpu_rows:
        gpu_id, bucket = row[0], row[1]
        slots = series.get(gpu_id)
        if slots is None:
            slots = series[gpu_id] = [None] * buckets
        slots[bucket] = _tuple_new(GpuPointRow, (starts[bucket], *row[2:]))
    system: list[SystemPointRow | None] = [None] * buckets
    for row in system_rows:
        bucket = row[0]
        system[bucket] = _tuple_new(SystemPointRow, (starts[bucket], *row[1:]))
    return AgentMetrics(
        agent_id=strawberry.ID(agent_id),
        from_=w.start,
        to=w.end,
        bucket_seconds=w.bucket_seconds,
        gpus=[
            GpuMetricSeries(gpu_id=gpu_id, points=_in_time_order(series[gpu_id]))
            for gpu_id in sorted(series)
        ],
        system=_in_time_order(system),
        window=w,
    )
