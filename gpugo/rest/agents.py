"""/api/v1/agents: registration and the agent's own endpoints, and users' agent views."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gpugo.auth.resolve import install_token_hash
from gpugo.inputs.agents import RegisterAgentInput
from gpugo.rest import requests
from gpugo.rest.paths import API
from gpugo.rest.responses import ok
from gpugo.services import agents, licenses


def license_json(license: licenses.License) -> dict[str, str]:
    return {"plain": license.plain, "encrypted": license.encrypted}


async def register(request: Request) -> Response:
    ctx = requests.server(request)
    await ctx.rate_limiter.hit("register", requests.client_address(request))
    token_hash = install_token_hash(request.headers.get("authorization"))
    data = await requests.read_json(request, RegisterAgentInput)
    registered = await agents.register(ctx=ctx, install_token_hash=token_hash, data=data)
    return ok(
        {
            "agent_id": registered.agent_id,
            "agent_secret": registered.agent_secret,
            "license": license_json(registered.license),
        },
        status=201,
    )


routes: list[BaseRoute] = [
    Route(f"{API}/agents/register", register, methods=["POST"]),
]
