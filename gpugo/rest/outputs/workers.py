"""/api/v1/workers bodies."""

from __future__ import annotations

from typing_extensions import TypedDict

from gpugo.rest.outputs.common import Timestamp, WorkerStatus


class WorkerListItem(TypedDict):
    worker_id: str
    agent_id: str
    name: str
    gpu_ids: list[str]
    listen_port: int
    enabled: bool
    status: WorkerStatus
    created_at: Timestamp


class WorkerList(TypedDict):
    workers: list[WorkerListItem]


class WorkerConnection(TypedDict):
    client_ip: str
    connected_at: Timestamp


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
