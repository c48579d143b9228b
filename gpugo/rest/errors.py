"""The one REST error handler: every status >= 400 gets the contract's error body."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gpugo.errors import (
    GpugoError,
    MethodNotAllowed,
    NotFound,
    RateLimited,
    ServiceUnavailable,
    Unauthorized,
)
from gpugo.logs import loggable, loggable_path
from gpugo.outage import database_unreachable
from gpugo.rest.responses import JSONResponse

log = logging.getLogger("gpugo.rest")

_HTTP_CODES = {
    400: "validation_error",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "gone",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def error_response(error: GpugoError) -> JSONResponse:
    body: dict[str, object] = {"code": error.code, "message": error.message}
    if error.details:
        body["details"] = [{"field": d.field, "message": d.message} for d in error.details]
    headers = {}
    if isinstance(error, Unauthorized):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(error, RateLimited):
        headers["Retry-After"] = str(error.retry_after)
    return JSONResponse({"error": body}, status_code=error.status, headers=headers)


async def handle_gpugo_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GpugoError)
    return error_response(exc)


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        error: GpugoError = NotFound("No such route.")
    elif exc.status_code == 405:
        error = MethodNotAllowed(f"{request.method} is not allowed here.")
    else:
        error = GpugoError(
            exc.detail if isinstance(exc.detail, str) else None,
            code=_HTTP_CODES.get(exc.status_code, "error"),
        )
        error.status = exc.status_code
    response = error_response(error)
    if exc.headers:
        response.headers.update(exc.headers)
    if exc.status_code == 405:
        response.headers["Allow"] = _allowed_methods(request)
    return response


def _allowed_methods(request: Request) -> str:
    """The methods of the resource: every route sharing the path of the first route that
    matches (a module may declare one route per method; Starlette names only one)."""
    path = request.scope["path"]
    routes = [r for r in request.app.routes if isinstance(r, Route) and r.methods]
    first = next((r for r in routes if r.path_regex.match(path)), None)
    if first is None:
        return ""
    methods = set().union(*(r.methods or () for r in routes if r.path == first.path))
    return ", ".join(sorted(methods))


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    if database_unreachable(exc):
        # An outage, not a bug: one line, no trace; the client may retry.
        log.warning(
            "database unreachable on %s %s: %s",
            loggable(request.method),
            loggable_path(request.url.path),
            type(exc).__name__,
        )
        return error_response(ServiceUnavailable())
    # Logged with its trace for operators; the client sees no detail.
    log.exception(
        "unhandled error on %s %s", loggable(request.method), loggable_path(request.url.path)
    )
    return error_response(GpugoError())
