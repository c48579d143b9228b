"""/api/v1/shares and the public /s/{short_code}."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gpugo.errors import GpugoError, NotFound
from gpugo.inputs.shares import CreateShareInput
from gpugo.rest import requests
from gpugo.rest.errors import error_response
from gpugo.rest.outputs.common import Success
from gpugo.rest.outputs.shares import PublicShareInfo, ShareList, ShareListItem
from gpugo.rest.paths import API
from gpugo.rest.responses import SUCCESS, Created, Ok
from gpugo.services import shares
from gpugo.timefmt import iso


def share_json(share: shares.ShareView) -> ShareListItem:
    """A ShareListItem."""
    return {
        "share_id": share.share_id,
        "short_code": share.short_code,
        "short_link": share.short_link,
        "worker_id": share.worker_id,
        "hardware_vendor": share.hardware_vendor,
        "connection_url": share.connection_url,
        "expires_at": iso(share.expires_at),
        "max_uses": share.max_uses,
        "used_count": share.used_count,
        "created_at": iso(share.created_at),
    }


async def list_shares(request: Request) -> Ok[ShareList]:
    ctx = requests.server(request)
    principal = await requests.user(request)
    found = await shares.list_shares(ctx=ctx, principal=principal)
    return Ok({"shares": [share_json(s) for s in found]})


async def create(request: Request) -> Created[ShareListItem]:
    ctx = requests.server(request)
    principal = await requests.user(request)
    data = await requests.read_json(request, CreateShareInput)
    share = await shares.create(ctx=ctx, principal=principal, data=data)
    return Created(share_json(share))


async def delete(request: Request) -> Ok[Success]:
    principal = await requests.user(request)
    await shares.delete(principal=principal, share_id=request.path_params["share_id"])
    return Ok(SUCCESS)


async def _public_share(request: Request, *, use: bool) -> Ok[PublicShareInfo]:
    ctx = requests.server(request)
    address = requests.client_address(request)
    # Codes are capabilities: misses (guesses) are limited per client address.
    await ctx.rate_limiter.check("share_miss", address)
    code = request.path_params["short_code"]
    try:
        if use:
            share = await shares.redeem(ctx=ctx, short_code=code)
        else:
            share = await shares.peek(short_code=code)
    except NotFound:
        await ctx.rate_limiter.hit("share_miss", address)
        raise
    return Ok(
        {
            "worker_id": share.worker_id,
            "hardware_vendor": share.hardware_vendor,
            "connection_url": share.connection_url,
        }
    )


def _headers_only(response: Response) -> Response:
    # Same status and headers (Content-Length included) as GET would send, no body.
    return Response(status_code=response.status_code, headers=dict(response.headers))


async def public_share(request: Request) -> Ok[PublicShareInfo] | Response:
    """GET uses the share once; HEAD answers the same status and headers and never does."""
    if request.method != "HEAD":
        return await _public_share(request, use=True)
    try:
        response = await _public_share(request, use=False)
    except GpugoError as error:
        response = error_response(error)
    return _headers_only(response)


routes: list[BaseRoute] = [
    Route(f"{API}/shares", list_shares, methods=["GET"]),
    Route(f"{API}/shares", create, methods=["POST"]),
    Route(f"{API}/shares/{{share_id:id}}", delete, methods=["DELETE"]),
    Route("/s/{short_code:id}", public_share, methods=["GET", "HEAD"]),
]
