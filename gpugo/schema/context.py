"""Per-request GraphQL context: the server context, who is asking, and the DataLoaders."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.types import Info

from gpugo import ratelimit
from gpugo.auth.principal import Principal
from gpugo.auth.resolve import authenticate_user
from gpugo.auth.sessions import COOKIE_NAME
from gpugo.context import ServerContext
from gpugo.errors import GpugoError
from gpugo.schema.loaders import Loaders
from gpugo.settings import Settings

# A WebSocket lives long: its principal is resolved again when older than about this
# (jittered per socket by RECHECK_JITTER), so a revoked session or PAT stops its
# subscriptions. Sockets on one credential share one look-up while its answer is at most
# half this old (auth/rechecks.py).
WEBSOCKET_PRINCIPAL_SECONDS = 60.0
RECHECK_JITTER = 0.25


@dataclass(eq=False)
class GraphQLContext:
    server: ServerContext
    request: Request | WebSocket
    # The sub-response whose headers (Set-Cookie) the answer carries; None on WebSockets.
    response: Response | None
    loaders: Loaders
    # graphql-transport-ws: the connection_init payload, set by Strawberry; a client may
    # send its PAT there as {"authorization": "Bearer ..."}.
    connection_params: dict[str, Any] | None = None
    _principal: Principal | None = None
    _resolved_at: float = 0.0
    # This socket's share of the jitter: re-checks of many sockets spread over the minute.
    _recheck_factor: float = field(
        default_factory=lambda: random.uniform(1 - RECHECK_JITTER, 1 + RECHECK_JITTER)
    )
    _auth_error: GpugoError | None = None
    # The context of a shared subscription run (schema/fanout.py): its subscribers
    # re-check their own credentials, so its principal is never re-checked here.
    shared: bool = False
    # Root fields of a query resolve concurrently: the lock makes authentication run once.
    _auth_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # The agentMetrics of one request read one after another: a request holds one of its
    # user's metrics read slots at a time, and its aliases never refuse each other.
    metrics_turn: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def settings(self) -> Settings:
        return self.server.settings

    @property
    def client_address(self) -> str:
        return ratelimit.client_address(self.request.scope)

    async def principal(self) -> Principal:
        """The user behind the request, resolved on first use and kept for the request."""
        async with self._auth_lock:
            if self._principal is not None and not self._stale():
                return self._principal
            if self._auth_error is not None:
                raise self._auth_error
            try:
                if self._principal is not None:
                    self._principal = await self._recheck()
                else:
                    self._principal = await self._authenticate()
            except GpugoError as error:
                self._principal = None
                self._auth_error = error
                raise
            self._resolved_at = time.monotonic()
            return self._principal

    async def _authenticate(self) -> Principal:
        headers = self.request.headers
        return await authenticate_user(
            authorization=self._authorization(),
            session_cookie=self.request.cookies.get(COOKIE_NAME),
            # Every GraphQL operation may change state (and a WebSocket may carry
            # mutations), so the cookie always gets the unsafe-method Origin check.
            method="POST",
            origin=headers.get("origin"),
            sec_fetch_site=headers.get("sec-fetch-site"),
            settings=self.settings,
        )

    async def _recheck(self) -> Principal:
        """A WebSocket's credential again, shared with the other sockets presenting it."""
        headers = self.request.headers
        key = self.server.credential_rechecks.key(
            self._authorization(),
            self.request.cookies.get(COOKIE_NAME),
            headers.get("origin"),
            headers.get("sec-fetch-site"),
        )
        return await self.server.credential_rechecks.resolve(
            key, WEBSOCKET_PRINCIPAL_SECONDS / 2, self._authenticate
        )

    def _authorization(self) -> str | None:
        params = self.connection_params
        if params and "authorization" in params:
            value = params["authorization"]
            # Not a string: refused like a malformed header.
            return value if isinstance(value, str) else ""
        return self.request.headers.get("authorization")

    def _stale(self) -> bool:
        if self.shared or not isinstance(self.request, WebSocket):
            return False
        age = time.monotonic() - self._resolved_at
        return age > WEBSOCKET_PRINCIPAL_SECONDS * self._recheck_factor


GraphQLInfo = Info[GraphQLContext, None]


def context_of(info: GraphQLInfo) -> GraphQLContext:
    return info.context
