"""/api/v1/agents: registration and the agent's own endpoints, and users' agent views."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from gpugo.auth.resolve import install_token_hash
from gpugo.errors import GpugoError, ValidationFailed
from gpugo.inputs.agents import RegisterAgentInput
from gpugo.inputs.metrics import MetricsReportInput
from gpugo.rest import agent_events, requests
from gpugo.rest.outputs.agents import (
    AgentConfigResponse,
    AgentDetail,
    AgentGpu,
    AgentList,
    AgentListItem,
    AgentRegisterResponse,
    WorkerConfig,
)
from gpugo.rest.outputs.common import License, Success
from gpugo.rest.paths import API
from gpugo.rest.responses import SUCCESS, Created, Ok
from gpugo.rest.workers import worker_detail_json, worker_json
from gpugo.services import agent_config, agent_pages, agents, licenses, metrics
from gpugo.services.views import GpuView
from gpugo.timefmt import iso


def license_json(license: licenses.License) -> License:
    return {"plain": license.plain, "encrypted": license.encrypted}


def agent_list_item_json(listed: agent_pages.ListedAgent) -> AgentListItem:
    """An AgentListItem (``gpuCount`` is camelCase in the spec; the shipped CLI reads
    ``gpu_count``, ``gpus`` and ``workers``)."""
    agent = listed.summary
    return {
        "agent_id": agent.agent_id,
        "hostname": agent.hostname,
        "status": agent.state.status,
        "os": agent.os,
        "arch": agent.arch,
        "gpuCount": agent.gpu_count,
        "gpu_count": agent.gpu_count,
        "gpus": [gpu_json(gpu) for gpu in listed.gpus],
        "workers": [worker_json(worker) for worker in listed.workers],
        "last_seen_at": iso(agent.last_seen_at),
        "created_at": iso(agent.created_at),
    }


def gpu_json(gpu: GpuView) -> AgentGpu:
    return {
        "gpu_id": gpu.gpu_id,
        "gpu_index": gpu.gpu_index,
        "vendor": gpu.vendor,
        "model": gpu.model,
        "vram_mb": gpu.vram_mb,
        "driver_version": gpu.driver_version,
        "cuda_version": gpu.cuda_version,
        "used_by_worker": gpu.used_by_worker,
        "agent_online": gpu.presence.agent_online,
        "last_known_at": iso(gpu.presence.last_known_at),
    }


def agent_detail_json(agent: agents.AgentDetail) -> AgentDetail:
    """The spec's agent detail, plus the config sync state and the status's reason."""
    return {
        "agent_id": agent.agent_id,
        "hostname": agent.hostname,
        "status": agent.state.status,
        "status_reason": agent.state.reason,
        "os": agent.os,
        "arch": agent.arch,
        "network_ips": list(agent.network_ips),
        "gpus": [gpu_json(gpu) for gpu in agent.gpus],
        "workers": [worker_detail_json(worker) for worker in agent.workers],
        "config_version": agent.config_version,
        "fetched_config_version": agent.fetched_config_version,
        "config_fetched_at": iso(agent.config_fetched_at),
        "config_in_sync": agent.config_in_sync,
        "last_seen_at": iso(agent.last_seen_at),
        "created_at": iso(agent.created_at),
    }


def worker_config_json(worker: agent_config.WorkerConfig) -> WorkerConfig:
    """A WorkerConfig; the optional fields are left out when unset (the agent's omitempty)."""
    body: WorkerConfig = {
        "worker_id": worker.worker_id,
        "gpu_ids": list(worker.gpu_ids),
        "listen_port": worker.listen_port,
        "enabled": worker.enabled,
        "share_codes": list(worker.share_codes),
    }
    if worker.vram_mb is not None:
        body["vram_mb"] = worker.vram_mb
    if worker.compute_percent is not None:
        body["compute_percent"] = worker.compute_percent
    if worker.isolation_mode is not None:
        body["isolation_mode"] = worker.isolation_mode
    return body


def claimed_hostname(body: bytes) -> str:
    """The host name a rejected registration body gives, if it gives a usable one."""
    try:
        hostname = orjson.loads(body).get("hostname")
    except (orjson.JSONDecodeError, AttributeError):
        return ""
    if not isinstance(hostname, str) or not hostname.isprintable():
        return ""
    return hostname[:253]  # a DNS name's longest; the refusal is about the rest


async def register(request: Request) -> Created[AgentRegisterResponse]:
    ctx = requests.server(request)
    await ctx.rate_limiter.hit("register", requests.client_address(request))
    token_hash = install_token_hash(request.headers.get("authorization"))
    try:
        data = await requests.read_json(request, RegisterAgentInput)
    except GpugoError as error:
        # The token is checked before the body's error is answered; its owner hears why.
        hostname = (
            claimed_hostname(await request.body()) if isinstance(error, ValidationFailed) else ""
        )
        await agents.refuse_body(
            ctx=ctx, install_token_hash=token_hash, hostname=hostname, error=error
        )
    registered = await agents.register(ctx=ctx, install_token_hash=token_hash, data=data)
    return Created(
        {
            "agent_id": registered.agent_id,
            "agent_secret": registered.agent_secret,
            "license": license_json(registered.license),
        }
    )


async def list_agents(request: Request) -> Ok[AgentList]:
    ctx = requests.server(request)
    principal = await requests.owner(request)
    found = await agent_pages.listing(ctx=ctx, principal=principal)
    return Ok({"agents": [agent_list_item_json(a) for a in found]})


async def get_agent(request: Request) -> Ok[AgentDetail]:
    ctx = requests.server(request)
    principal = await requests.owner(request)
    agent = await agents.get_agent(
        ctx=ctx, principal=principal, agent_id=request.path_params["agent_id"]
    )
    return Ok(agent_detail_json(agent))


async def delete_agent(request: Request) -> Ok[Success]:
    ctx = requests.server(request)
    agent_id = request.path_params["agent_id"]
    principal = await requests.owner(request)
    await agents.delete(ctx=ctx, principal=principal, agent_id=agent_id)
    return Ok(SUCCESS)


async def get_config(request: Request) -> Ok[AgentConfigResponse]:
    ctx = requests.server(request)
    principal = await requests.agent(request, request.path_params["agent_id"])
    config = await agent_config.pull(ctx=ctx, principal=principal)
    return Ok(
        {
            "config_version": config.config_version,
            "workers": [worker_config_json(w) for w in config.workers],
            "license": license_json(config.license),
        }
    )


async def report_metrics(request: Request) -> Ok[Success]:
    ctx = requests.server(request)
    principal = await requests.agent(request, request.path_params["agent_id"])
    # Counted per agent once its secret is checked: nobody else can use its budget up.
    await ctx.rate_limiter.hit("metrics", request.path_params["agent_id"])
    data = await requests.read_json(request, MetricsReportInput)
    await metrics.record(ctx=ctx, principal=principal, data=data)
    return Ok(SUCCESS)


# What every agent calls every 30 s besides its status report (rest/agent_status.py):
# first in the route list (rest/routes.py), matched against one pattern, not every route.
hot_routes: list[BaseRoute] = [
    Route(f"{API}/agents/{{agent_id:id}}/metrics", report_metrics, methods=["POST"]),
]

routes: list[BaseRoute] = [
    # Before the {agent_id} paths, so "register" is never taken for an id.
    Route(f"{API}/agents/register", register, methods=["POST"]),
    Route(f"{API}/agents", list_agents, methods=["GET"]),
    Route(f"{API}/agents/{{agent_id:id}}", get_agent, methods=["GET"]),
    Route(f"{API}/agents/{{agent_id:id}}", delete_agent, methods=["DELETE"]),
    Route(f"{API}/agents/{{agent_id:id}}/config", get_config, methods=["GET"]),
    # Agent push (Server-Sent Events): config_version changes as they happen.
    Route(f"{API}/agents/{{agent_id:id}}/events", agent_events.stream, methods=["GET"]),
]
