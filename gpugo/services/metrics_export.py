"""The user's GPUs and hosts as Prometheus gauges (``GET /api/v1/metrics/prometheus``),
for the user's own Prometheus to scrape with the PAT as bearer token (Team and Pro).

Each series is the latest sample of one GPU, host or worker of the user's agents, if
it is at most ``agent_offline_seconds`` old: a GPU that stopped reporting leaves the
export, and the scraper marks its series stale instead of repeating an old value.
Labels: ``agent_id``, ``hostname``, and ``gpu_id`` and ``model`` per GPU or
``worker_id`` per worker, all of them the user's own agents' (docs/observability.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from gpugo import clock
from gpugo.auth.principal import Principal
from gpugo.context import ServerContext
from gpugo.models import Agent, Gpu, GpuMetricSample, SystemMetricSample, WorkerMetricSample
from gpugo.services import plans
from gpugo.timeseries import reads as tsdb

MIB = 1024 * 1024
KIB = 1024

# (metric name, help, sample field, factor to the metric's unit)
GPU_GAUGES = (
    ("gpugo_gpu_utilization_percent", "GPU utilisation, percent.", "utilization", 1),
    ("gpugo_gpu_memory_used_bytes", "GPU memory (VRAM) in use.", "vram_used_mb", MIB),
    ("gpugo_gpu_memory_total_bytes", "GPU memory (VRAM) in all.", "vram_total_mb", MIB),
    ("gpugo_gpu_temperature_celsius", "GPU temperature.", "temperature", 1),
    ("gpugo_gpu_power_watts", "GPU power draw.", "power_usage_w", 1),
    ("gpugo_gpu_pcie_rx_bytes_per_second", "PCIe receive throughput.", "pcie_rx_kb", KIB),
    ("gpugo_gpu_pcie_tx_bytes_per_second", "PCIe transmit throughput.", "pcie_tx_kb", KIB),
)
HOST_GAUGES = (
    ("gpugo_host_cpu_usage_percent", "Host CPU usage, percent.", "cpu_usage", 1),
    ("gpugo_host_memory_used_bytes", "Host memory in use.", "memory_used_mb", MIB),
    ("gpugo_host_memory_total_bytes", "Host memory in all.", "memory_total_mb", MIB),
)
WORKER_GAUGES = (
    (
        "gpugo_worker_status",
        "Worker status code as the agent reports it (1: running).",
        "status",
        1,
    ),
    ("gpugo_worker_connections", "Clients connected to the worker.", "connections", 1),
    ("gpugo_worker_restarts", "Times the agent restarted the worker.", "restarts", 1),
)


async def export(*, ctx: ServerContext, principal: Principal) -> bytes:
    """The text a Prometheus scrape reads; 403 plan_feature_unavailable below Team."""
    plans.require_metrics(ctx, principal.plan)
    user_id = principal.user_id
    agents = dict(await Agent.filter(user_id=user_id).values_list("id", "hostname"))
    models = {
        (agent_id, gpu_id): model
        for agent_id, gpu_id, model in await Gpu.filter(agent__user_id=user_id).values_list(
            "agent_id", "gpu_id", "model"
        )
    }
    within = ctx.settings.agent_offline_seconds
    if ctx.timeseries is not None:
        # --- time-series engine configured: the latest points come from it. ---
        latest = await tsdb.latest(ctx.timeseries, user_id=user_id, within_seconds=within)
    else:
        latest = await _latest_sql(list(agents), within)
    families: list[Metric] = []
    rows = [r for r in latest["gpu_metrics"] if r["agent_id"] in agents]
    for name, help_text, field, factor in GPU_GAUGES:
        family = GaugeMetricFamily(
            name, help_text, labels=["agent_id", "hostname", "gpu_id", "model"]
        )
        for row in rows:
            if row.get(field) is not None:
                key = (row["agent_id"], row["gpu_id"])
                labels = [
                    row["agent_id"],
                    agents[row["agent_id"]],
                    row["gpu_id"],
                    models.get(key, ""),
                ]
                family.add_metric(labels, float(row[field]) * factor)
        families.append(family)
    _add(families, HOST_GAUGES, latest["system_metrics"], agents, ())
    _add(families, WORKER_GAUGES, latest["worker_metrics"], agents, ("worker_id",))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return generate_latest(registry)


def _add(
    families: list[Metric],
    gauges: tuple[tuple[str, str, str, int], ...],
    rows: list[dict[str, Any]],
    agents: dict[str, str],
    keys: tuple[str, ...],
) -> None:
    rows = [r for r in rows if r["agent_id"] in agents]
    for name, help_text, field, factor in gauges:
        family = GaugeMetricFamily(name, help_text, labels=["agent_id", "hostname", *keys])
        for row in rows:
            if row.get(field) is not None:
                labels = [row["agent_id"], agents[row["agent_id"]], *(row[k] for k in keys)]
                family.add_metric(labels, float(row[field]) * factor)
        families.append(family)


class _Families:
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        yield from self._families


async def _latest_sql(agent_ids: list[str], within_seconds: int) -> dict[str, list[dict[str, Any]]]:
    """The newest sample per GPU, host and worker within the window: the window's rows
    (through the (agent_id, recorded_at) index), newest first, the first of each kept."""
    if not agent_ids:
        return {"gpu_metrics": [], "system_metrics": [], "worker_metrics": []}
    since = clock.now() - timedelta(seconds=within_seconds)
    out: dict[str, list[dict[str, Any]]] = {}
    for measurement, model, key in (
        ("gpu_metrics", GpuMetricSample, "gpu_id"),
        ("system_metrics", SystemMetricSample, None),
        ("worker_metrics", WorkerMetricSample, "worker_id"),
    ):
        rows = (
            await model.filter(agent_id__in=agent_ids, recorded_at__gte=since)
            .order_by("-recorded_at", "-id")
            .values()
        )
        newest: dict[tuple[str, str], dict[str, Any]] = {}
        for row in rows:
            newest.setdefault((row["agent_id"], row[key] if key else ""), row)
        out[measurement] = list(newest.values())
    return out
