"""/api/v1/tokens: install tokens and the personal access token."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from gpugo.inputs.tokens import CreatePatInput, GenerateTokenInput
from gpugo.rest import requests
from gpugo.rest.outputs.common import Success
from gpugo.rest.outputs.tokens import (
    GenerateTokenResponse,
    PatInfo,
    PatResponse,
    TokenStatusResponse,
)
from gpugo.rest.paths import API
from gpugo.rest.responses import Created, Ok
from gpugo.services import install_tokens, pats
from gpugo.timefmt import iso


async def generate(request: Request) -> Created[GenerateTokenResponse]:
    ctx = requests.server(request)
    principal = await requests.user(request)
    await requests.read_json(request, GenerateTokenInput)
    await ctx.rate_limiter.hit("token_generate", principal.user_id)
    new = await install_tokens.generate(ctx=ctx, principal=principal)
    return Created(
        {
            "token_id": new.token_id,
            "token": new.token,
            "expires_at": iso(new.expires_at),
            "install_command": new.install_command,
        }
    )


async def status(request: Request) -> Ok[TokenStatusResponse]:
    principal = await requests.user(request)
    state = await install_tokens.status(
        principal=principal, token_id=request.path_params["token_id"]
    )
    body: TokenStatusResponse = {
        "token_id": state.token_id,
        "status": state.status,
        "expires_at": iso(state.expires_at),
        "used_at": iso(state.used_at),
        "is_expired": state.is_expired,
    }
    if state.agent is not None:
        body["agent"] = {"agent_id": state.agent.agent_id, "hostname": state.agent.hostname}
    return Ok(body)


async def get_pat(request: Request) -> Ok[PatInfo]:
    principal = await requests.user(request)
    info = await pats.get_info(principal=principal)
    return Ok(
        {
            "exists": info.exists,
            "expires_at": iso(info.expires_at),
            "last_used_at": iso(info.last_used_at),
            "created_at": iso(info.created_at),
        }
    )


async def create_pat(request: Request) -> Created[PatResponse]:
    principal = await requests.user(request)
    data = await requests.read_json(request, CreatePatInput)
    new = await pats.create(principal=principal, data=data)
    return Created(
        {
            "token": new.token,
            "expires_at": iso(new.expires_at),
            "created_at": iso(new.created_at),
        }
    )


async def delete_pat(request: Request) -> Ok[Success]:
    principal = await requests.user(request)
    deleted = await pats.delete(principal=principal)
    return Ok({"success": deleted})


routes: list[BaseRoute] = [
    Route(f"{API}/tokens/generate", generate, methods=["POST"]),
    Route(f"{API}/tokens/pat", get_pat, methods=["GET"]),
    Route(f"{API}/tokens/pat", create_pat, methods=["POST"]),
    Route(f"{API}/tokens/pat", delete_pat, methods=["DELETE"]),
    Route(f"{API}/tokens/{{token_id:id}}/status", status, methods=["GET"]),
]
