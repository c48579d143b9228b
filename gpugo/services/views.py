"""What every door shows of a GPU, a worker and a client connection: one view each.

REST bodies, GraphQL nodes and the dashboard are serialised from these; a new field
is added here once. Rows come from the ORM (``values(*WORKER_COLUMNS)``) or from the
hand-written statements' JSON arrays (decoded into the same names).

Views are named tuples: immutable like frozen dataclasses, and made in one call where a
frozen dataclass sets each field through ``object.__setattr__`` (twice as slow; a page
of the dashboard makes a hundred).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from gpugo.timefmt import parse_stored

# What every view shows of a GPU.
GPU_COLUMNS = (
    "gpu_id",
    "gpu_index",
    "vendor",
    "model",
    "vram_mb",
    "driver_version",
    "cuda_version",
    "used_by_worker_id",
)
# What every view shows of a worker.
WORKER_COLUMNS = (
    "id",
    "agent_id",
    "name",
    "gpu_ids",
    "listen_port",
    "enabled",
    "status",
    "is_default",
    "pid",
    "restarts",
    "vram_mb",
    "compute_percent",
    "isolation_mode",
    "created_at",
)
CONNECTION_COLUMNS = ("id", "client_ip", "client_port", "client_pid", "connected_at")


class Presence(NamedTuple):
    """Whether what an agent last reported (worker status, GPU use, connections) is current.

    ``last_known_at`` is None while the agent is online (the report is current);
    otherwise it is when the report was made (None too if the agent never reported).
    """

    agent_online: bool
    last_known_at: datetime | None


def presence_of(*, status: str, last_seen_at: datetime | None) -> Presence:
    """From an agent's status (``agents.agent_state``) and its last report."""
    online = status == "online"
    return Presence(agent_online=online, last_known_at=None if online else last_seen_at)


class GpuView(NamedTuple):
    gpu_id: str
    gpu_index: int | None
    vendor: str
    model: str
    vram_mb: int
    driver_version: str | None
    cuda_version: str | None
    used_by_worker: str | None
    # Whether ``used_by_worker`` is current or only what an offline agent last said.
    presence: Presence


class ConnectionView(NamedTuple):
    client_ip: str
    client_port: int | None
    client_pid: int | None
    connected_at: datetime


class WorkerView(NamedTuple):
    worker_id: str
    agent_id: str
    name: str
    is_default: bool
    enabled: bool
    status: str
    gpu_ids: tuple[str, ...]
    listen_port: int
    pid: int | None
    restarts: int | None
    # Limits the agent applies (None: none set).
    vram_mb: int | None
    compute_percent: int | None
    isolation_mode: str | None
    created_at: datetime
    # Whether ``status`` and ``connections`` are current or an offline agent's last word.
    presence: Presence
    connections: tuple[ConnectionView, ...] = ()

    @property
    def live_connection_count(self) -> int:
        """Connections counted as live: none while the agent is not online."""
        return len(self.connections) if self.presence.agent_online else 0


# gpu_views_from_arrays makes a view from GPU_COLUMNS by position: the fields must
# follow the columns (the view names the worker without the column's "_id").
assert GpuView._fields == (*GPU_COLUMNS[:-1], "used_by_worker", "presence")


def gpu_order(gpu_index: int | None, gpu_id: str) -> tuple[bool, int, str]:
    """The one order of an agent's GPUs (licenses, views): by the agent's index, then id."""
    return (gpu_index is None, gpu_index or 0, gpu_id)


def gpu_view(row: Mapping[str, Any], presence: Presence) -> GpuView:
    """From a row of GPU_COLUMNS, on an agent whose presence is ``presence``."""
    return GpuView(
        gpu_id=row["gpu_id"],
        gpu_index=row["gpu_index"],
        vendor=row["vendor"],
        model=row["model"],
        vram_mb=row["vram_mb"],
        driver_version=row["driver_version"],
        cuda_version=row["cuda_version"],
        used_by_worker=row["used_by_worker_id"],
        presence=presence,
    )


def _in_gpu_order(views: Iterable[GpuView]) -> tuple[GpuView, ...]:
    return tuple(sorted(views, key=lambda view: gpu_order(view.gpu_index, view.gpu_id)))


def gpu_views(rows: Iterable[Mapping[str, Any]], presence: Presence) -> tuple[GpuView, ...]:
    """One agent's GPUs, in the one GPU order."""
    return _in_gpu_order(gpu_view(row, presence) for row in rows)


def gpu_views_from_arrays(
    entries: Iterable[Sequence[Any]], presence: Presence
) -> tuple[GpuView, ...]:
    """``gpu_views`` of a hand-written statement's JSON arrays of ``GPU_COLUMNS``: the
    view's fields are those columns in the same order, so each is made in one call."""
    return _in_gpu_order(GpuView(*entry, presence) for entry in entries)


def connection_view(row: Mapping[str, Any]) -> ConnectionView:
    return ConnectionView(
        client_ip=row["client_ip"],
        client_port=row["client_port"],
        client_pid=row["client_pid"],
        connected_at=parse_stored(row["connected_at"]),  # type: ignore[arg-type]
    )


def worker_view(
    row: Mapping[str, Any], presence: Presence, connections: Iterable[ConnectionView] = ()
) -> WorkerView:
    """From a row of WORKER_COLUMNS (SQLite's JSON gives booleans as 0 and 1), on an agent
    whose presence is ``presence``."""
    return WorkerView(
        worker_id=row["id"],
        agent_id=row["agent_id"],
        name=row["name"],
        is_default=bool(row["is_default"]),
        enabled=bool(row["enabled"]),
        status=row["status"],
        gpu_ids=tuple(row["gpu_ids"]),
        listen_port=row["listen_port"],
        pid=row["pid"],
        restarts=row["restarts"],
        vram_mb=row["vram_mb"],
        compute_percent=row["compute_percent"],
        isolation_mode=row["isolation_mode"],
        created_at=parse_stored(row["created_at"]),  # type: ignore[arg-type]
        presence=presence,
        connections=tuple(connections),
    )
