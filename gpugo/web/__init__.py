"""The dashboard: a single page at ``/`` and its static assets under ``/ui/``.

Everything the page needs ships inside this package (``static/``): plain ES
modules and hand-written CSS, no build step, nothing loaded from elsewhere. The
page speaks only GraphQL (``/graphql``, HTTP and graphql-transport-ws) with the
session cookie. Routes are hash-based (``/#/agents/...``), so the server owns
exactly two paths here and shadows nothing of ``/api``, ``/graphql``, ``/s``,
``/healthz``, ``/readyz`` or ``/robots.txt``.
"""

from __future__ import annotations

import html
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import BaseRoute, Mount, Route, request_response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gpugo.settings import Settings

STATIC_DIR = Path(__file__).parent / "static"
UI_PREFIX = "/ui"

# Self only: no inline script or style, no other origin. 'self' covers ws(s):// of this
# host for the GraphQL subscriptions (CSP Level 3).
CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "manifest-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"referrer-policy", b"same-origin"),
    # Revalidate every time (ETag / Last-Modified): an upgrade is picked up at once.
    (b"cache-control", b"no-cache"),
]


class _AddHeaders:
    """Pure ASGI wrapper: the dashboard's headers on every response of ``app``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _index_html(settings: Settings) -> str:
    template = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    # The page compares its own origin with this one to explain a refused (CSRF) request.
    return template.replace("{{public_origin}}", html.escape(settings.public_origin, quote=True))


def routes(settings: Settings) -> list[BaseRoute]:
    page = _index_html(settings)

    async def index(request: Request) -> HTMLResponse:
        return HTMLResponse(page)

    return [
        Route("/", _AddHeaders(request_response(index)), methods=["GET"]),
        Mount(UI_PREFIX, app=_AddHeaders(StaticFiles(directory=STATIC_DIR)), name="ui"),
    ]
