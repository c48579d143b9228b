from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

import strawberry

from gpugo.schema.context import GraphQLInfo
from gpugo.schema.metrics import Window, worker_buckets
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
        for row in rows:
            series[row["worker_id"]].append(_worker_point(self.window, row))
        return [
            WorkerMetricSeries(worker_id=strawberry.ID(worker_id), points=points)
            for worker_id, points in series.items()
        ]


def _worker_point(w: Window, row: dict[str, Any]) -> WorkerMetricPoint:
    return WorkerMetricPoint(
        at=w.bucket_start(int(row["bucket"])),
        samples=row["samples"],
        running_samples=int(row["running_samples"] or 0),
        connections_avg=float(row["connections_avg"]),
        connections_max=int(row["connections_max"]),
        restarts_max=int(row["restarts_max"]),
    )


def _gpu_point(w: Window, row: dict[str, Any]) -> GpuMetricPoint:
    return GpuMetricPoint(
        at=w.bucket_start(int(row["bucket"])),
        samples=row["samples"],
        utilization_avg=float(row["utilization_avg"]),
        utilization_max=float(row["utilization_max"]),
        vram_used_mb_avg=float(row["vram_used_mb_avg"]),
        vram_used_mb_max=int(row["vram_used_mb_max"]),
        vram_total_mb=int(row["vram_total_mb"]),
        temperature_avg=float(row["temperature_avg"]),
        temperature_max=int(row["temperature_max"]),
        power_usage_w_avg=float(row["power_usage_w_avg"]),
        power_usage_w_max=float(row["power_usage_w_max"]),
    )


def _system_point(w: Window, row: dict[str, Any]) -> SystemMetricPoint:
    return SystemMetricPoint(
        at=w.bucket_start(int(row["bucket"])),
        samples=row["samples"],
        cpu_usage_avg=float(row["cpu_usage_avg"]),
        cpu_usage_max=float(row["cpu_usage_max"]),
        memory_used_mb_avg=float(row["memory_used_mb_avg"]),
        memory_used_mb_max=int(row["memory_used_mb_max"]),
        memory_total_mb=int(row["memory_total_mb"]),
    )


def agent_metrics_node(
    *, agent_id: str, w: Window, gpu_rows: list[dict[str, Any]], system_rows: list[dict[str, Any]]
) -> AgentMetrics:
    series: dict[str, list[GpuMetricPoint]] = defaultdict(list)
    for row in gpu_rows:
        series[row["gpu_id"]].append(_gpu_point(w, row))
    return AgentMetrics(
        agent_id=strawberry.ID(agent_id),
        from_=w.start,
        to=w.end,
        bucket_seconds=w.bucket_seconds,
        gpus=[GpuMetricSeries(gpu_id=gpu_id, points=points) for gpu_id, points in series.items()],
        system=[_system_point(w, row) for row in system_rows],
        window=w,
    )
