"""Reading a REST request: its JSON body and who sent it."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel
from starlette.requests import Request

from gpugo import ratelimit
from gpugo.auth import resolve
from gpugo.auth.principal import Principal
from gpugo.auth.sessions import COOKIE_NAME
from gpugo.context import ServerContext
from gpugo.errors import UnsupportedMediaType
from gpugo.inputs.common import parse_input

M = TypeVar("M", bound=BaseModel)


def server(request: Request) -> ServerContext:
    return request.app.state.ctx


async def read_json(request: Request, model: type[M]) -> M:
    """The body validated into ``model``; an empty body counts as ``{}``."""
    return parse_input(model, await json_body(request))


async def json_body(request: Request) -> bytes:
    """The body as sent, refused unless it is (said to be) JSON; empty is ``{}``."""
    return json_or_empty(request.headers.get("content-type"), await request.body())


def json_or_empty(content_type: str | None, body: bytes) -> bytes:
    """``body``, refused unless it is (said to be) JSON; empty is ``{}``."""
    if body and content_type and "json" not in content_type.split(";")[0].lower():
        raise UnsupportedMediaType()
    return body or b"{}"


def client_address(request: Request) -> str:
    return ratelimit.client_address(request.scope)


def _credentials(request: Request) -> resolve.Credentials:
    """What the resolvers read of a request to tell who sent it."""
    return {
        "authorization": request.headers.get("authorization"),
        "session_cookie": request.cookies.get(COOKIE_NAME),
        "method": request.method,
        "origin": request.headers.get("origin"),
        "sec_fetch_site": request.headers.get("sec-fetch-site"),
        "settings": server(request).settings,
    }


async def user(request: Request) -> Principal:
    """The user behind a session cookie or a PAT bearer (an agent secret: 403)."""
    return await resolve.authenticate_account(**_credentials(request))


async def agent(request: Request, agent_id: str) -> Principal:
    """The agent of the path, by its own secret."""
    return await resolve.authenticate_agent(
        authorization=request.headers.get("authorization"), agent_id=agent_id
    )


async def owner(request: Request) -> Principal:
    """A user, or an agent secret acting within its own agent (agents, workers, shares)."""
    return await resolve.authenticate_owner(**_credentials(request))
