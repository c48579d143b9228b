from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from itertools import chain
from operator import itemgetter
from typing import Any, NamedTuple

import strawberry

from gpugo.schema.context import GraphQLInfo
from gpugo.schema.metrics import Rows, Window, worker_buckets
from gpugo.schema.scalars import MetricColumn
from gpugo.timeseries import reads as tsdb

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_POINTS = "Oldest first; buckets without samples are left out."
_AT_COLUMN = "Start of each bucket, in milliseconds since the Unix epoch (UTC)."


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


@strawberry.type(
    description=(
        "One GPU's series as columns: each field is a whole array with one entry per "
        "point (the same buckets, oldest first), so a long series is a few arrays "
        "rather than an object per bucket."
    )
)
class GpuMetricColumns:
    at: MetricColumn = strawberry.field(description=_AT_COLUMN)
    samples: MetricColumn
    utilization_avg: MetricColumn
    utilization_max: MetricColumn
    vram_used_mb_avg: MetricColumn
    vram_used_mb_max: MetricColumn
    vram_total_mb: MetricColumn
    temperature_avg: MetricColumn
    temperature_max: MetricColumn
    power_usage_w_avg: MetricColumn
    power_usage_w_max: MetricColumn


@strawberry.type
class GpuMetricSeries:
    gpu_id: str
    # The series' rows (``schema.metrics``: key, bucket index, ``GPU_COLUMNS``), oldest
    # first: points or columns are made from them only when asked for.
    rows: strawberry.Private[list[Sequence[Any]]]
    starts: strawberry.Private[_Starts]

    @strawberry.field(description=_POINTS)
    def points(self) -> list[GpuMetricPoint]:
        starts, new = self.starts, _tuple_new
        return [new(GpuPointRow, (starts[row[1]], *row[2:])) for row in self.rows]

    @strawberry.field(description="The same points as columns (one array per value).")
    def columns(self) -> GpuMetricColumns:
        return GpuMetricColumns(**_columns(self.rows, self.starts.w, GPU_COLUMNS))


@strawberry.type(description="The host over one bucket.")
class SystemMetricPoint:
    at: datetime = strawberry.field(description="Start of the bucket.")
    samples: int
    cpu_usage_avg: float
    cpu_usage_max: float
    memory_used_mb_avg: float
    memory_used_mb_max: int
    memory_total_mb: int


@strawberry.type(
    description="The host's series as columns (one array per value, see GpuMetricColumns)."
)
class SystemMetricColumns:
    at: MetricColumn = strawberry.field(description=_AT_COLUMN)
    samples: MetricColumn
    cpu_usage_avg: MetricColumn
    cpu_usage_max: MetricColumn
    memory_used_mb_avg: MetricColumn
    memory_used_mb_max: MetricColumn
    memory_total_mb: MetricColumn


@strawberry.type(description="A worker over one bucket, as its agent reported it.")
class WorkerMetricPoint:
    at: datetime = strawberry.field(description="Start of the bucket.")
    samples: int
    running_samples: int = strawberry.field(description="Samples that found it running.")
    connections_avg: float
    connections_max: int
    restarts_max: int


@strawberry.type(
    description="A worker's series as columns (one array per value, see GpuMetricColumns)."
)
class WorkerMetricColumns:
    at: MetricColumn = strawberry.field(description=_AT_COLUMN)
    samples: MetricColumn
    running_samples: MetricColumn = strawberry.field(description="Samples that found it running.")
    connections_avg: MetricColumn
    connections_max: MetricColumn
    restarts_max: MetricColumn


@strawberry.type
class WorkerMetricSeries:
    worker_id: strawberry.ID
    # The worker's rows, oldest first, read by name (SQL records or the engine's dicts).
    rows: strawberry.Private[list[Any]]
    window: strawberry.Private[Window]

    @strawberry.field(description=_POINTS)
    def points(self) -> list[WorkerMetricPoint]:
        return [_worker_point(self.window, row) for row in self.rows]

    @strawberry.field(description="The same points as columns (one array per value).")
    def columns(self) -> WorkerMetricColumns:
        rows, width_ms = self.rows, self.window.bucket_seconds * 1000
        start_ms = _epoch_ms(self.window.start)
        return WorkerMetricColumns(
            at=MetricColumn([start_ms + int(row["bucket"]) * width_ms for row in rows]),
            samples=MetricColumn([row["samples"] for row in rows]),
            # As the points read them: a missing count of running samples is 0.
            running_samples=MetricColumn([int(row["running_samples"] or 0) for row in rows]),
            connections_avg=_as(float, [row["connections_avg"] for row in rows]),
            connections_max=_as(int, [row["connections_max"] for row in rows]),
            restarts_max=_as(int, [row["restarts_max"] for row in rows]),
        )


@strawberry.type(description="An agent's metrics in time buckets over [from, to).")
class AgentMetrics:
    agent_id: strawberry.ID
    from_: datetime = strawberry.field(name="from")
    to: datetime
    bucket_seconds: int
    gpus: list[GpuMetricSeries]
    window: strawberry.Private[Window]
    # The host's rows (bucket index, ``SYSTEM_COLUMNS``), oldest first.
    system_rows: strawberry.Private[list[Sequence[Any]]]
    starts: strawberry.Private[_Starts]

    @strawberry.field(description=_POINTS)
    def system(self) -> list[SystemMetricPoint]:
        starts, new = self.starts, _tuple_new
        return [new(SystemPointRow, (starts[row[0]], *row[1:])) for row in self.system_rows]

    @strawberry.field(description="The host's points as columns (one array per value).")
    def system_columns(self) -> SystemMetricColumns:
        return SystemMetricColumns(
            **_columns(self.system_rows, self.window, SYSTEM_COLUMNS, bucket_at=0)
        )

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
        series: dict[str, list[Any]] = defaultdict(list)
        # The SQL read's rows come in no order; a few workers' rows sort cheaply.
        for row in sorted(rows, key=itemgetter("worker_id", "bucket")):
            series[row["worker_id"]].append(row)
        return [
            WorkerMetricSeries(worker_id=strawberry.ID(worker_id), rows=rows, window=self.window)
            for worker_id, rows in series.items()
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
    return [row for row in slots if row is not None]


def _epoch_ms(at: datetime) -> int:
    # Whole milliseconds, as DateTime writes a point's ``at`` (digits below are cut).
    return (at - _EPOCH) // timedelta(milliseconds=1)


def _as(kind: type, values: list[Any]) -> MetricColumn:
    return MetricColumn([None if v is None else kind(v) for v in values])


def _columns(
    rows: list[Sequence[Any]], w: Window, names: tuple[str, ...], *, bucket_at: int = 1
) -> dict[str, MetricColumn]:
    """``at`` and each of ``names`` as a whole array: the rows (oldest first, the bucket
    index at ``bucket_at``, the values after it in the order of ``names``) transposed at
    once, their values as the database typed them (JSON numbers either way)."""
    if not rows:
        return {name: MetricColumn([]) for name in ("at", *names)}
    # Every value in one list, then each column a slice of it: both in C, about twice
    # as fast as zip(*rows) over 1,440 records.
    width = bucket_at + 1 + len(names)
    values = list(chain.from_iterable(rows))
    assert len(values) == width * len(rows)
    start_ms, width_ms = _epoch_ms(w.start), w.bucket_seconds * 1000
    columns = {
        "at": MetricColumn([start_ms + bucket * width_ms for bucket in values[bucket_at::width]])
    }
    columns.update(
        (name, MetricColumn(values[bucket_at + 1 + k :: width])) for k, name in enumerate(names)
    )
    return columns


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

    Each row goes to its bucket's slot of its series (no sort); a series keeps its rows
    in time order, and its points (named tuples) or columns (arrays) are made from them
    only when the query selects them, with the values as the database typed them
    (GraphQL's coercion of a point's leaf, in ``schema.compiled``, makes an int a Float
    where one is declared; a column is JSON numbers either way). Series come in the
    order of their ids."""
    starts = _Starts(w)
    buckets = math.ceil((w.end - w.start) / timedelta(seconds=w.bucket_seconds))
    series: dict[str, list[Sequence[Any] | None]] = {}
    for row in gpu_rows:
        gpu_id = row[0]
        slots = series.get(gpu_id)
        if slots is None:
            slots = series[gpu_id] = [None] * buckets
        slots[row[1]] = row
    system: list[Sequence[Any] | None] = [None] * buckets
    for row in system_rows:
        system[row[0]] = row
    return AgentMetrics(
        agent_id=strawberry.ID(agent_id),
        from_=w.start,
        to=w.end,
        bucket_seconds=w.bucket_seconds,
        gpus=[
            GpuMetricSeries(gpu_id=gpu_id, rows=_in_time_order(series[gpu_id]), starts=starts)
            for gpu_id in sorted(series)
        ],
        window=w,
        system_rows=_in_time_order(system),
        starts=starts,
    )
