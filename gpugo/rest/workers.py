"""/api/v1/workers: users' workers on their agents."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from gpugo.inputs.common import parse_input
from gpugo.inputs.workers import CreateWorkerInput, UpdateWorkerInput, WorkerFilterInput
from gpugo.rest import requests
from gpugo.rest.outputs.common import Success
from gpugo.rest.outputs.workers import (
    WorkerConnection,
    WorkerDetail,
    WorkerList,
    WorkerListItem,
    WorkerUpdateResponse,
)
from gpugo.rest.paths import API
from gpugo.rest.responses import SUCCESS, Created, Ok
from gpugo.services import workers
from gpugo.services.views import ConnectionView, WorkerView
from gpugo.timefmt import iso


def worker_json(worker: WorkerView) -> WorkerListItem:
    """A worker as every list shows it (the spec's WorkerListItem and more)."""
    return {
        "worker_id": worker.worker_id,
        "agent_id": worker.agent_id,
        "name": worker.name,
        "gpu_ids": list(worker.gpu_ids),
        "listen_port": worker.listen_port,
        "enabled": worker.enabled,
        "status": worker.status,
        "is_default": worker.is_default,
        "pid": worker.pid,
        "restarts": worker.restarts,
        "vram_mb": worker.vram_mb,
        "compute_percent": worker.compute_percent,
        "isolation_mode": worker.isolation_mode,
        "created_at": iso(worker.created_at),
        "agent_online": worker.presence.agent_online,
        "last_known_at": iso(worker.presence.last_known_at),
    }


def connection_json(connection: ConnectionView) -> WorkerConnection:
    return {
        "client_ip": connection.client_ip,
        "connected_at": iso(connection.connected_at),
        "client_port": connection.client_port,
        "client_pid": connection.client_pid,
    }


def worker_detail_json(worker: WorkerView) -> WorkerDetail:
    """A worker with its client connections (worker and agent details)."""
    return {
        **worker_json(worker),
        "connections": [connection_json(c) for c in worker.connections],
        "live_connection_count": worker.live_connection_count,
    }


async def list_workers(request: Request) -> Ok[WorkerList]:
    principal = await requests.owner(request)
    # An empty parameter (?agent_id=) filters nothing, like an absent one.
    params = {k: v for k, v in request.query_params.items() if k in ("agent_id", "hostname") and v}
    filters = parse_input(WorkerFilterInput, params)
    found = await workers.list_workers(
        ctx=requests.server(request), principal=principal, filters=filters
    )
    return Ok({"workers": [worker_json(w) for w in found]})


async def create(request: Request) -> Created[WorkerListItem]:
    ctx = requests.server(request)
    principal = await requests.owner(request)
    data = await requests.read_json(request, CreateWorkerInput)
    worker = await workers.create(ctx=ctx, principal=principal, data=data)
    return Created(worker_json(worker))


async def get(request: Request) -> Ok[WorkerDetail]:
    principal = await requests.owner(request)
    worker = await workers.get(
        ctx=requests.server(request),
        principal=principal,
        worker_id=request.path_params["worker_id"],
    )
    return Ok(worker_detail_json(worker))


async def update(request: Request) -> Ok[WorkerUpdateResponse]:
    ctx = requests.server(request)
    principal = await requests.owner(request)
    data = await requests.read_json(request, UpdateWorkerInput)
    worker = await workers.update(
        ctx=ctx, principal=principal, worker_id=request.path_params["worker_id"], data=data
    )
    # PATCH answers a subset of the worker (spec: UpdateWorker's response).
    return Ok(
        {
            "worker_id": worker.worker_id,
            "name": worker.name,
            "gpu_ids": list(worker.gpu_ids),
            "listen_port": worker.listen_port,
            "enabled": worker.enabled,
            "status": worker.status,
            "vram_mb": worker.vram_mb,
            "compute_percent": worker.compute_percent,
            "isolation_mode": worker.isolation_mode,
        }
    )


async def delete(request: Request) -> Ok[Success]:
    ctx = requests.server(request)
    principal = await requests.owner(request)
    await workers.delete(ctx=ctx, principal=principal, worker_id=request.path_params["worker_id"])
    return Ok(SUCCESS)


routes: list[BaseRoute] = [
    Route(f"{API}/workers", list_workers, methods=["GET"]),
    Route(f"{API}/workers", create, methods=["POST"]),
    Route(f"{API}/workers/{{worker_id:id}}", get, methods=["GET"]),
    Route(f"{API}/workers/{{worker_id:id}}", update, methods=["PATCH"]),
    Route(f"{API}/workers/{{worker_id:id}}", delete, methods=["DELETE"]),
]
