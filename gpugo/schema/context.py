"""Per-request GraphQL context: the server context, who is asking, and the DataLoaders."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.types import Info

from gpugo.auth.principal import Principal
from gpugo.auth.resolve import authenticate_user
from gpugo.auth.sessions import COOKIE_NAME
from gpugo.context import ServerContext
from gpugo.errors import GpugoError
from gpugo.schema.loaders import Loaders
from gpugo.settings import Settings


@dataclass(eq=False)
class GraphQLContext:
    server: ServerContext
    request: Request | WebSocket
    # The sub-response whose headers (Set-Cookie) the answer carries; None on WebSockets.
    response: Response | None
    loaders: Loaders
    _principal: Principal | None = None
    _auth_error: GpugoError | None = None
    # Root fields of a query resolve concurrently: the lock makes authentication run once.
    _auth_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def settings(self) -> Settings:
        return self.server.settings

    @property
    def client_address(self) -> str:
        client = self.request.client
        return client.host if client else "unknown"

    async def principal(self) -> Principal:
        """The user behind the request, resolved on first use and kept for the request."""
        async with self._auth_lock:
            if self._principal is not None:
                return self._principal
            if self._auth_error is not None:
                raise self._auth_error
            headers = self.request.headers
            try:
                self._principal = await authenticate_user(
                    authorization=headers.get("authorization"),
                    session_cookie=self.request.cookies.get(COOKIE_NAME),
                    # Every GraphQL operation may change state (and a WebSocket may carry
                    # mutations), so the cookie always gets the unsafe-method Origin check.
                    method="POST",
                    origin=headers.get("origin"),
                    sec_fetch_site=headers.get("sec-fetch-site"),
                    settings=self.settings,
                )
            except GpugoError as error:
                self._auth_error = error
                raise
            return self._principal


GraphQLInfo = Info[GraphQLContext, None]


def context_of(info: GraphQLInfo) -> GraphQLContext:
    return info.context
