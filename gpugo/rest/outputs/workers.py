"""/api/v1/workers bodies (also the workers inside agent bodies)."""

from __future__ import annotations

from typing import Literal

from typing_extensions import TypedDict

from gpugo.rest.outputs.common import Timestamp, WorkerStatus

IsolationMode = Literal["shared", "soft", "hard", "partitioned"]


class WorkerConnection(TypedDict):
    client_ip: str
    connected_at: Timestamp
    client_port: int | None
    client_pid: int | None


class WorkerListItem(TypedDict):
    """The spec's WorkerListItem, plus what the agent reports and the limits it applies."""

    worker_id: str
    agent_id: str
    name: str
    gpu_ids: list[str]
    listen_port: int
    enabled: bool
    status: WorkerStatus
    is_default: bool
    pid: int | None
    restarts: int | None
    vram_mb: int | None
    compute_percent: int | None
    isolation_mode: IsolationMode | None
    created_at: Timestamp


class WorkerList(TypedDict):
    workers: list[WorkerListItem]


class WorkerDetail(WorkerListItem):
    connections: list[WorkerConnection]


class WorkerUpdateResponse(TypedDict):
    """PATCH answers a subset of the worker (the spec's UpdateWorker response)."""

    worker_id: str
    name: str
    gpu_ids: list[str]
    listen_port: int
    enabled: bool
    status: WorkerStatus
    vram_mb: int | None
    compute_percent: int | None
    isolation_mode: IsolationMode | None
