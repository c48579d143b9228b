"""Liveness, readiness and the license public key."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from tortoise import connections

from gpugo.errors import ServiceUnavailable
from gpugo.rest import requests
from gpugo.rest.paths import API
from gpugo.rest.responses import ok
from gpugo.services import licenses


async def healthz(request: Request) -> Response:
    return ok({"status": "ok"})


async def readyz(request: Request) -> Response:
    try:
        await connections.get("default").execute_query("SELECT 1")
    except Exception as exc:  # any driver error means "not ready"
        raise ServiceUnavailable() from exc
    return ok({"status": "ready"})


ROBOTS_TXT = "User-agent: *\nDisallow: /s/\nDisallow: /api/\n"


async def robots_txt(request: Request) -> Response:
    # Share links are capabilities: keep them out of search engines.
    return PlainTextResponse(ROBOTS_TXT)


async def license_public_key(request: Request) -> Response:
    return ok(licenses.public_key(ctx=requests.server(request)))


routes: list[BaseRoute] = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/robots.txt", robots_txt, methods=["GET"]),
    Route(f"{API}/license/public-key", license_public_key, methods=["GET"]),
]
