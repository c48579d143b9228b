"""create_app(settings) -> the Starlette application: routes, middleware, errors, lifespan."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send
from tortoise.contrib.starlette import RegisterTortoise

from gpugo import db
from gpugo.context import ServerContext
from gpugo.errors import GpugoError
from gpugo.leader import Leadership
from gpugo.proxies import TrustedProxies
from gpugo.rest import agent_status, shares
from gpugo.rest.errors import handle_gpugo_error, handle_http_exception
from gpugo.rest.middleware import RequestEnvelope
from gpugo.rest.routes import routes
from gpugo.schema import routes as graphql_routes
from gpugo.services import agent_state_warm_up, audit, metrics_rollups
from gpugo.settings import Settings
from gpugo.sweeper import Sweeper
from gpugo.web import routes as web_routes


class App(Starlette):
    """Starlette, except that every HTTP request goes through one envelope, and the
    busiest paths skip the route list.

    ``envelope`` makes the layer every HTTP request goes through, whichever way it is
    answered (``rest/middleware.py``: request id, security headers, body limit, the
    answer to an exception no handler took, metrics, access line). Starlette's own
    middleware stack is only its exception handlers: its ``ServerErrorMiddleware``
    would answer an unexpected exception outside the envelope, then raise it again.

    A status report (``POST /api/v1/agents/{id}/status``, every agent every 30 s) and a
    share link (``GET``/``HEAD /s/{code}``) are answered by plain ASGI apps ahead of the
    router; they answer their own refusals with the contract's error body. Any other
    request goes the general way. Before either, a request forwarded by a trusted proxy
    gets its client's address.
    """

    def __init__(
        self,
        *,
        envelope: Callable[[ASGIApp], ASGIApp],
        direct_routes: Sequence[tuple[Route, ASGIApp]],
        trusted_proxies: TrustedProxies,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.enveloped = envelope(self._route)
        # Each with the literal start of its path: most requests are told apart by it,
        # before the route's regular expression.
        self.direct_routes = tuple(
            (route.path.partition("{")[0], route, app) for route, app in direct_routes
        )
        self.trusted_proxies = trusted_proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            if self.trusted_proxies:
                self.trusted_proxies.apply(scope)
            # After the proxy rule: audit rows name the same client as the rate limits.
            audit.bind_request(self.state.ctx.audit, scope)
        if scope["type"] == "http":
            await self.enveloped(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    def build_middleware_stack(self) -> ASGIApp:
        # What Starlette runs below the envelope (the router's path; WebSockets too).
        return ExceptionMiddleware(self.router, handlers=self.exception_handlers, debug=self.debug)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        for prefix, route, direct in self.direct_routes:
            if not path.startswith(prefix):
                continue
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                scope["app"] = self
                scope["route"] = route
                scope.update(child_scope)
                await direct(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None, *, auto_migrate: bool = True) -> Starlette:
    settings = settings or Settings.from_env()
    ctx = ServerContext.load(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if auto_migrate:
            await db.migrate(settings)
        url = settings.effective_database_url
        db.prepare_sqlite(settings)
        async with RegisterTortoise(app, config=db.tortoise_config(url)):
            # PostgreSQL: the day partitions metric points go to exist before any write.
            await metrics_rollups.prepare_partitions()
            await ctx.events.start()
            sweeper = Sweeper(ctx)
            # One sweeper per installation: the process holding the lock runs it.
            leadership = Leadership(url, name="sweeper", lead=sweeper.start, step_down=sweeper.stop)
            await leadership.start()
            await ctx.last_seen.start()
            await ctx.audit.start()
            ctx.metrics.start()
            await ctx.releases.start()
            if settings.webhooks_sender:
                ctx.webhooks.start()
            # After the bus: a state is held only while its events can drop it.
            warming = (
                asyncio.create_task(agent_state_warm_up.warm_up(ctx), name="agent-state-warm-up")
                if settings.agent_state_warm_up
                else None
            )
            try:
                yield
            finally:
                if warming is not None:
                    warming.cancel()
                    await asyncio.gather(warming, return_exceptions=True)
                await ctx.releases.stop()
                await ctx.webhooks.stop()
                # Every acknowledged point is written (a time-series engine needs the HTTP
                # client, the SQL tables the database), and announced before the bus stops.
                await ctx.metrics.stop()
                await ctx.http.aclose()
                # Before the database closes: the last interval's heartbeats are written.
                await ctx.last_seen.stop()
                await leadership.stop()
                # After the sweeper (it records too), before the database closes.
                await ctx.audit.stop()
                await ctx.events.stop()
                await ctx.metrics_db.close()

    app = App(
        envelope=functools.partial(
            RequestEnvelope,
            https=settings.secure_cookies,
            max_body_bytes=settings.max_body_bytes,
            waiting=ctx.requests_first,
        ),
        # Status reports first: the busiest path of all.
        direct_routes=[
            (route, route.app) for route in (agent_status.status_route, shares.public_share_route)
        ],
        trusted_proxies=TrustedProxies(settings.trusted_proxy_networks),
        routes=[*routes, *graphql_routes(ctx), *web_routes(settings)],
        # An exception none of these takes is answered by the envelope.
        exception_handlers={
            GpugoError: handle_gpugo_error,
            HTTPException: handle_http_exception,
        },
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    return app
