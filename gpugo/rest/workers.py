"""/api/v1/workers: users' workers on their agents."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gpugo.inputs.common import parse_input
from gpugo.inputs.workers import CreateWorkerInput, UpdateWorkerInput, WorkerFilterInput
from gpugo.rest import requests
from gpugo.rest.paths import API
from gpugo.rest.responses import SUCCESS, ok
from gpugo.services import workers
from gpugo.timefmt import iso

# PATCH answers a subset of the worker (spec: UpdateWorker's response).
_PATCH_KEYS = ("worker_id", "name", "gpu_ids", "listen_port", "enabled", "status")


def worker_json(worker: workers.WorkerView) -> dict[str, object]:
    """A WorkerListItem."""
    return {
        "worker_id": worker.worker_id,
        "agent_id": worker.agent_id,
        "name": worker.name,
        "gpu_ids": list(worker.gpu_ids),
        "listen_port": worker.listen_port,
        "enabled": worker.enabled,
        "status": worker.status,
        "created_at": iso(worker.created_at),
    }


async def list_workers(request: Request) -> Response:
    principal = await requests.user(request)
    # An empty parameter (?agent_id=) filters nothing, like an absent one.
    params = {k: v for k, v in request.query_params.items() if k in ("agent_id", "hostname") and v}
    filters = parse_input(WorkerFilterInput, params)
    found = await workers.list_workers(principal=principal, filters=filters)
    return ok({"workers": [worker_json(w) for w in found]})


async def create(request: Request) -> Response:
    ctx = requests.server(request)
    principal = await requests.user(request)
    data = await requests.read_json(request, CreateWorkerInput)
    worker = await workers.create(ctx=ctx, principal=principal, data=data)
    return ok(worker_json(worker), status=201)


async def get(request: Request) -> Response:
    principal = await requests.user(request)
    worker = await workers.get(principal=principal, worker_id=request.path_params["worker_id"])
    body = worker_json(worker)
    body["connections"] = [
        {"client_ip": c.client_ip, "connected_at": iso(c.connected_at)} for c in worker.connections
    ]
    return ok(body)


async def update(request: Request) -> Response:
    ctx = requests.server(request)
    principal = await requests.user(request)
    data = await requests.read_json(request, UpdateWorkerInput)
    worker = await workers.update(
        ctx=ctx, principal=principal, worker_id=request.path_params["worker_id"], data=data
    )
    body = worker_json(worker)
    return ok({key: body[key] for key in _PATCH_KEYS})


async def delete(request: Request) -> Response:
    ctx = requests.server(request)
    principal = await requests.user(request)
    await workers.delete(ctx=ctx, principal=principal, worker_id=request.path_params["worker_id"])
    return ok(SUCCESS)


routes: list[BaseRoute] = [
    Route(f"{API}/workers", list_workers, methods=["GET"]),
    Route(f"{API}/workers", create, methods=["POST"]),
    Route(f"{API}/workers/{{worker_id}}", get, methods=["GET"]),
    Route(f"{API}/workers/{{worker_id}}", update, methods=["PATCH"]),
    Route(f"{API}/workers/{{worker_id}}", delete, methods=["DELETE"]),
]
