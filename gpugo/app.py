"""create_app(settings) -> the Starlette application: routes, middleware, errors, lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send
from tortoise.contrib.starlette import RegisterTortoise

from gpugo import db
from gpugo.context import ServerContext
from gpugo.errors import GpugoError
from gpugo.leader import Leadership
from gpugo.observability.http import observe as observe_http
from gpugo.proxies import TrustedProxies
from gpugo.rest import agent_status, shares
from gpugo.rest.errors import handle_gpugo_error, handle_http_exception, handle_unexpected
from gpugo.rest.middleware import (
    BodyLimitMiddleware,
    SecurityHeadersMiddleware,
    UnexpectedErrorMiddleware,
)
from gpugo.rest.routes import routes
from gpugo.schema import routes as graphql_routes
from gpugo.services import agent_state_warm_up, audit, metrics_rollups
from gpugo.settings import Settings
from gpugo.sweeper import Sweeper
from gpugo.web import routes as web_routes


class App(Starlette):
    """Starlette, except that the busiest paths skip the route list and Starlette's own
    middleware.

    A status report (``POST /api/v1/agents/{id}/status``, every agent every 30 s) and a
    share link (``GET``/``HEAD /s/{code}``) are answered by plain ASGI apps ahead of the
    router, behind the same security-headers, error and body-limit middleware as every
    response; they answer their own refusals with the contract's error body. Any other
    request goes the general way. Before either, a request forwarded by a trusted proxy
    gets its client's address.
    """

    def __init__(
        self,
        *,
        direct_routes: Sequence[tuple[Route, ASGIApp]],
        trusted_proxies: TrustedProxies,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.direct_routes = tuple(direct_routes)
        self.trusted_proxies = trusted_proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            if self.trusted_proxies:
                self.trusted_proxies.apply(scope)
            # After the proxy rule: audit rows name the same client as the rate limits.
            audit.bind_request(self.state.ctx.audit, scope)
        if scope["type"] == "http":
            # Counted in /metrics by the route it matched (known once it has run).
            await observe_http(scope, receive, send, self._route, self.state.ctx.requests_first)
            return
        await super().__call__(scope, receive, send)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        for route, direct in self.direct_routes:
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

    # Around the router and around each direct route alike (outermost first).
    middleware = [
        Middleware(SecurityHeadersMiddleware, https=settings.secure_cookies),
        Middleware(UnexpectedErrorMiddleware),
        Middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes),
    ]

    def behind_middleware(app: ASGIApp) -> ASGIApp:
        for cls, args, kwargs in reversed(middleware):
            app = cls(app, *args, **kwargs)
        return app

    app = App(
        # Status reports first: the busiest path of all.
        direct_routes=[
            (route, behind_middleware(route.app))
            for route in (agent_status.status_route, shares.public_share_route)
        ],
        trusted_proxies=TrustedProxies(settings.trusted_proxy_networks),
        routes=[*routes, *graphql_routes(ctx), *web_routes(settings)],
        middleware=middleware,
        exception_handlers={
            GpugoError: handle_gpugo_error,
            HTTPException: handle_http_exception,
            Exception: handle_unexpected,
        },
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    return app
