"""/api/v1/shares and the public /s/{short_code}."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from starlette.requests import Request
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from gpugo import ratelimit
from gpugo.context import ServerContext
from gpugo.errors import GpugoError, NotFound
from gpugo.inputs.shares import CreateShareInput
from gpugo.rest import asgi, requests, share_page
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
    principal = await requests.owner(request)
    found = await shares.list_shares(ctx=ctx, principal=principal)
    return Ok({"shares": [share_json(s) for s in found]})


async def create(request: Request) -> Created[ShareListItem]:
    ctx = requests.server(request)
    principal = await requests.owner(request)
    data = await requests.read_json(request, CreateShareInput)
    share = await shares.create(ctx=ctx, principal=principal, data=data)
    return Created(share_json(share))


async def delete(request: Request) -> Ok[Success]:
    principal = await requests.owner(request)
    await shares.delete(
        ctx=requests.server(request), principal=principal, share_id=request.path_params["share_id"]
    )
    return Ok(SUCCESS)


class PublicShareLink:
    """``GET /s/{short_code}`` uses the share once; ``HEAD`` answers the same status and
    headers (Content-Length included) without a body, and never uses it. A request that
    prefers HTML (a browser) gets a page about the link instead, and uses nothing
    (rest/share_page.py).

    A plain ASGI app (no Request or Response objects): the app answers share links with
    it ahead of its router, behind the same security-headers and error middleware.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx: ServerContext = scope["app"].state.ctx
        method = scope["method"]
        code = scope["path_params"]["short_code"]
        address = ratelimit.client_address(scope)
        if share_page.prefers_html(asgi.header(scope, b"accept")):
            answer = await _html_answer(ctx, address, code)
        else:
            try:
                answer = asgi.json_answer(
                    await _public_share(ctx, address, code, use=method != "HEAD")
                )
            except GpugoError as error:
                answer = asgi.error_answer(error)
        await asgi.send_answer(send, answer, with_body=method != "HEAD")


async def _html_answer(ctx: ServerContext, address: str, code: str) -> asgi.Answer:
    status = 200
    try:
        found = await _limited(ctx, address, lambda: shares.preview(ctx=ctx, short_code=code))
    except GpugoError as error:
        if error.status != 404:
            return asgi.error_answer(error)  # rate limited: the contract's answer
        status, body = 404, share_page.missing_page(error.message)
    else:
        body = share_page.share_page(found, server_url=ctx.settings.effective_public_url)
        if found.gone is not None:
            status = 410
    return status, [(b"content-length", b"%d" % len(body)), *share_page.HEADERS], body


T = TypeVar("T")


async def _limited(ctx: ServerContext, address: str, look_up: Callable[[], Awaitable[T]]) -> T:
    """One look-up of a code, JSON or page alike. Codes are capabilities: misses (guesses)
    are limited per client address. An address's look-ups take turns, so each is counted
    before the next is checked and a burst gets no more look-ups than the limit allows
    (docs/decisions.md, "Shares")."""
    limiter = ctx.rate_limiter
    async with limiter.one_at_a_time("share_miss", address):
        await limiter.check("share_miss", address)
        try:
            return await look_up()
        except NotFound:
            await limiter.hit("share_miss", address)
            raise


async def _public_share(
    ctx: ServerContext, address: str, code: str, *, use: bool
) -> PublicShareInfo:
    if use:
        share = await _limited(ctx, address, lambda: shares.redeem(ctx=ctx, short_code=code))
    else:
        share = await _limited(ctx, address, lambda: shares.peek(short_code=code))
    return {
        "worker_id": share.worker_id,
        "hardware_vendor": share.hardware_vendor,
        "connection_url": share.connection_url,
        "agent_arch": share.agent_arch,
    }


public_share = PublicShareLink()
# The app matches share links against this route before anything else.
public_share_route = Route("/s/{short_code:id}", public_share, methods=["GET", "HEAD"])

routes: list[BaseRoute] = [
    Route(f"{API}/shares", list_shares, methods=["GET"]),
    Route(f"{API}/shares", create, methods=["POST"]),
    Route(f"{API}/shares/{{share_id:id}}", delete, methods=["DELETE"]),
    public_share_route,
]
