"""Prometheus' text format: ``GET /metrics`` (the operator's) and
``GET /api/v1/metrics/prometheus`` (a user's GPUs, for the user's own Prometheus)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gpugo.observability import exposition
from gpugo.rest import requests
from gpugo.rest.paths import API
from gpugo.services import metrics_export


async def operator_metrics(request: Request) -> Response:
    ctx = requests.server(request)
    exposition.check_token(ctx, request.headers.get("authorization"))
    return Response(await exposition.render(ctx), media_type=exposition.CONTENT_TYPE)


async def user_metrics(request: Request) -> Response:
    # A scraper sends the PAT; a signed-in browser may look too. An agent secret: 403.
    principal = await requests.user(request)
    body = await metrics_export.export(ctx=requests.server(request), principal=principal)
    return Response(body, media_type=exposition.CONTENT_TYPE)


routes: list[BaseRoute] = [
    Route("/metrics", operator_metrics, methods=["GET"]),
    Route(f"{API}/metrics/prometheus", user_metrics, methods=["GET"]),
]
