"""/api/v1/workers bodies (also the workers inside agent bodies)."""

from __future__ import annotations

from typing import Literal

from typing_extensions import TypedDict

from gpugo.rest.outputs.common import NullableTimestamp, Timestamp, WorkerStatus

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
    # Whether the agent is online: false means status is only the agent's last word.
    agent_online: bool
    # When that last word was said; null while the agent is online (status is current).
    last_known_at: NullableTimestamp


class WorkerList(TypedDict):
    workers: list[WorkerListItem]


class WorkerDetail(WorkerListItem):
    # As last reported; those of an offline agent are not live.
    connections: list[WorkerConnection]
    # The connections counted as live: 0 while the agent is not online.
    live_connection_count: int


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
