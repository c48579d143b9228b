"""VictoriaMetrics: points written as InfluxDB line protocol, read through PromQL.

The engine is a sink of the metrics ingest (services/metrics_store.py): a point
acknowledged to its agent waits in that buffer (``GPUGO_TIMESERIES_BUFFER_POINTS`` at
most) until a batch reaches the engine; while the engine is down, batches are kept and
retried after 1, 2, 4... flush intervals (capped by
``GPUGO_TIMESERIES_BACKOFF_MAX_SECONDS``), and past the bound the oldest points are
dropped and counted (``gpugo_writer_rows_dropped``). A crash of the process loses what
waits (docs/observability.md).

Series: ``<measurement>_<field>`` (``gpu_metrics_utilization``) labelled ``agent_id``,
``user_id`` and, per GPU or worker, ``gpu_id`` / ``worker_id``, all set by the server
from the agent's credential and its registered GPUs, never taken from the agent's text.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from gpugo.errors import ServiceUnavailable
from gpugo.services.metrics_store import VALUE_COLUMNS, Point, Table
from gpugo.settings import Settings

log = logging.getLogger("gpugo.timeseries")

WRITER = "victoria_metrics"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UNAVAILABLE = "The metrics store cannot be read at the moment; try again shortly."

GPU_FIELDS = (
    "utilization",
    "vram_used_mb",
    "vram_total_mb",
    "temperature",
    "power_usage_w",
    "pcie_rx_kb",
    "pcie_tx_kb",
)
SYSTEM_FIELDS = ("cpu_usage", "memory_used_mb", "memory_total_mb")
WORKER_FIELDS = ("status", "connections", "restarts")

_MEASUREMENTS = {
    Table.GPU: "gpu_metrics",
    Table.SYSTEM: "system_metrics",
    Table.WORKER: "worker_metrics",
}
# Columns of a point that are labels of its series, not values.
_LABEL_COLUMNS = frozenset({"gpu_id", "worker_id"})


def _escape_tag(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def _number(value: float | int) -> str:
    return repr(float(value)) if isinstance(value, float) else str(int(value))


def millis(at: datetime) -> int:
    """The millisecond a point at ``at`` is stored at (the engine keeps milliseconds)."""
    return (at - _EPOCH) // timedelta(milliseconds=1)


def line(point: Point) -> str:
    """One point as a line of InfluxDB line protocol (millisecond timestamp)."""
    tags = {"agent_id": point.agent_id, "user_id": point.user_id}
    fields = []
    for name, value in zip(VALUE_COLUMNS[point.table], point.values, strict=True):
        if name in _LABEL_COLUMNS:
            tags[name] = value
        elif value is not None:
            fields.append(f"{name}={_number(value)}")
    tag_text = ",".join(f"{key}={_escape_tag(value)}" for key, value in sorted(tags.items()))
    return f"{_MEASUREMENTS[point.table]},{tag_text} {','.join(fields)} {millis(point.recorded_at)}"


def _label(value: str) -> str:
    """A PromQL string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def selector(name: str, labels: Mapping[str, str]) -> str:
    inner = ",".join(f"{key}={_label(value)}" for key, value in labels.items())
    return f"{name}{{{inner}}}"


@dataclass(frozen=True, slots=True)
class Series:
    labels: dict[str, str]
    # (unix seconds, value)
    values: list[tuple[float, float]]


class VictoriaMetrics:
    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        urls = settings.timeseries_urls
        assert urls is not None
        insert, select = urls
        self._write_url = f"{insert}/write"
        self._select = select
        # A cluster deletes through vmselect's /delete/<tenant>/ path; one node at its root.
        self._delete = select.replace("/select/", "/delete/", 1)
        self._http = http
        self._timeout = settings.timeseries_timeout_seconds

    # Writes (a MetricsSink)

    async def write(self, points: list[Point]) -> None:
        """One batch of the ingest's points; raises so that the batch is kept and retried."""
        response = await self._http.post(
            self._write_url,
            params={"precision": "ms"},
            content="\n".join(line(point) for point in points).encode(),
            timeout=self._timeout,
        )
        if response.status_code >= 300:
            raise RuntimeError(f"VictoriaMetrics answered {response.status_code} to a write")

    async def forget_agent(self, agent_id: str) -> None:
        """Delete a deleted agent's series (and drop its points still waiting). Best
        effort: the agent is gone from SQL either way, so nothing can read them; if the
        engine is away they stay until its retention ends them."""
        try:
            response = await self._http.post(
                f"{self._delete}/api/v1/admin/tsdb/delete_series",
                data={"match[]": f"{{agent_id={_label(agent_id)}}}"},
                timeout=self._timeout,
            )
            if response.status_code >= 300:
                raise RuntimeError(f"VictoriaMetrics answered {response.status_code}")
        except Exception as exc:
            log.warning("could not delete the series of a deleted agent: %s", exc)

    # Reads

    async def _get(self, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        try:
            response = await self._http.get(
                f"{self._select}{path}", params=params, timeout=self._timeout
            )
            body = response.json() if response.status_code < 500 else None
        except (httpx.HTTPError, ValueError):
            log.warning("VictoriaMetrics could not be read", exc_info=True)
            raise ServiceUnavailable(_UNAVAILABLE) from None
        if not isinstance(body, dict) or body.get("status") != "success":
            log.warning("VictoriaMetrics refused a query: %s", response.status_code)
            raise ServiceUnavailable(_UNAVAILABLE)
        return body["data"]["result"]

    async def query_range(
        self, query: str, *, start: datetime, end: datetime, step_seconds: float
    ) -> list[Series]:
        # nocache: the engine would otherwise align start and end to the step (its cache).
        result = await self._get(
            "/api/v1/query_range",
            {
                "query": query,
                "start": f"{start.timestamp():.3f}",
                "end": f"{end.timestamp():.3f}",
                "step": f"{step_seconds:g}s",
                "nocache": "1",
            },
        )
        return [
            Series(
                labels=item["metric"],
                values=[(float(t), float(v)) for t, v in item["values"] if _finite(v)],
            )
            for item in result
        ]

    async def query(self, query: str, *, at: datetime) -> list[Series]:
        # nocache: the engine would otherwise evaluate a query within -search.latencyOffset
        # (30 s by default) of now at now minus that offset, missing the newest points.
        result = await self._get(
            "/api/v1/query",
            {"query": query, "time": f"{at.timestamp():.3f}", "nocache": "1"},
        )
        return [
            Series(
                labels=item["metric"], values=[(float(item["value"][0]), float(item["value"][1]))]
            )
            for item in result
            if _finite(item["value"][1])
        ]


def _finite(value: str) -> bool:
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False


def engine_for(settings: Settings, http: httpx.AsyncClient) -> VictoriaMetrics | None:
    return VictoriaMetrics(settings, http) if settings.timeseries_urls else None


async def gather(*queries: Any) -> list[Any]:
    """Several reads at once (one engine round trip each)."""
    return list(await asyncio.gather(*queries))
