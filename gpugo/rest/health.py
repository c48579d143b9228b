"""Liveness, readiness and the license public key."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, Route
from tortoise import connections

from gpugo.errors import ServiceUnavailable
from gpugo.rest import requests
from gpugo.rest.outputs.common import Health, PublicKey
from gpugo.rest.paths import API
from gpugo.rest.responses import Ok
from gpugo.services import licenses


async def healthz(request: Request) -> Ok[Health]:
    return Ok({"status": "ok"})


async def readyz(request: Request) -> Ok[Health]:
    try:
        await connections.get("default").execute_query("SELECT 1")
    except Exception as exc:  # any driver error means "not ready"
        raise ServiceUnavailable() from exc
    return Ok({"status": "ready"})


ROBOTS_TXT = "User-agent: *\nDisallow: /s/\nDisallow: /api/\n"


async def robots_txt(request: Request) -> PlainTextResponse:
    # Share links are capabilities: keep them out of search engines.
    return PlainTextResponse(ROBOTS_TXT)


async def license_public_key(request: Request) -> Ok[PublicKey]:
    return Ok(licenses.public_key(ctx=requests.server(request)))  # type: ignore[arg-type]


routes: list[BaseRoute] = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/robots.txt", robots_txt, methods=["GET"]),
    Route(f"{API}/license/public-key", license_public_key, methods=["GET"]),
]
