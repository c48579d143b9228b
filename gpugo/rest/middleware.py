"""Pure ASGI middleware for the REST door."""

from __future__ import annotations

import logging
import time

from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gpugo.errors import PayloadTooLarge
from gpugo.logs import is_share_path, loggable, loggable_path, new_request_id
from gpugo.rest.errors import handle_unexpected

access_log = logging.getLogger("gpugo.access")


class BodyLimitMiddleware:
    """Refuse request bodies over the limit with the contract's 413 body.

    The error is raised from ``receive`` so the app's error handler renders it.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        limit = self.max_body_bytes
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            if declared is not None and declared > limit:
                raise PayloadTooLarge()
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLarge()
            return message

        await self.app(scope, limited_receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class SecurityHeadersMiddleware:
    """Headers every response carries; share links also hide themselves from Referer.

    Each response also carries the request id that its log lines carry.
    """

    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        # Built once: appended to every response's own headers, in this order.
        self.common: list[tuple[bytes, bytes]] = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
        ]
        if https:
            self.common.append((b"strict-transport-security", b"max-age=31536000"))
        self.share = [(b"referrer-policy", b"no-referrer"), (b"cache-control", b"no-store")]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        is_share = is_share_path(path)
        request_id = new_request_id()
        started = time.perf_counter()
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", ()), *self.common]
                headers.append((b"x-request-id", request_id.encode()))
                if is_share:
                    headers += self.share
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            # The access log (uvicorn's is off).
            if access_log.isEnabledFor(logging.INFO):
                elapsed = (time.perf_counter() - started) * 1000
                access_log.info(
                    "%s %s %d %.1fms",
                    loggable(scope["method"]),
                    loggable_path(path),
                    status,
                    elapsed,
                )


class UnexpectedErrorMiddleware:
    """Answers an exception no handler took (a bug: 500; a lost database: 503) inside the
    other middleware, so that answer too carries the request id and security headers.

    Starlette runs its own ``Exception`` handler outside every middleware, and then
    re-raises for the server to log a second time; here the one handler answers once.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except ClientDisconnect:
            # The client went away (or was cut off for sending too slowly): nobody to
            # answer, and not a bug.
            return
        except Exception as exc:
            if started:
                raise  # too late for another answer; the server closes the connection
            response = await handle_unexpected(Request(scope), exc)
            await response(scope, receive, send)
