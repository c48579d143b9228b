"""The one layer around every HTTP request, whichever way it is answered.

Every request, answered by the router or by a direct route (``gpugo.app.App``), gets
in one pass what a control plane owes each answer: a request id (in its log lines and
its ``X-Request-Id``), the security headers, a body limit, an answer for an exception
no handler took, its count and duration in ``/metrics``, its access line. One layer
with one ``send`` wrapper, not one middleware per concern: the busiest paths (status
reports, share links) pay for each wrapper on every request.
"""

from __future__ import annotations

import logging
import time

from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gpugo.errors import PayloadTooLarge
from gpugo.logs import is_share_path, loggable, loggable_path, new_request_id
from gpugo.observability import http as http_metrics
from gpugo.observability import metrics
from gpugo.requests_first import RequestsFirst
from gpugo.rest.errors import handle_unexpected

access_log = logging.getLogger("gpugo.access")

# Referer would carry a share code (a capability) to wherever the answer links.
_SHARE_HEADERS = ((b"referrer-policy", b"no-referrer"), (b"cache-control", b"no-store"))


def security_headers(*, https: bool) -> list[tuple[bytes, bytes]]:
    """The headers every response carries, errors included."""
    common = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY")]
    if https:
        common.append((b"strict-transport-security", b"max-age=31536000"))
    return common


class RequestEnvelope:
    """Around an ASGI app, for HTTP requests (anything else passes through untouched):

    - the response gets the security headers and ``X-Request-Id``; share links also
      ``no-referrer`` and ``no-store``;
    - a body over ``max_body_bytes`` (declared, or as it arrives) raises the contract's
      413 from ``receive``, for the app's own error handling to answer;
    - an exception no handler took is answered here (a bug: 500; a lost database: 503),
      once, logged once, with the headers above; a client gone away is not an error;
    - the request is counted by route template, method and status, its duration to the
      start of its response; until then it is one of those ``waiting`` for an answer
      (live deliveries let them go first: ``gpugo/requests_first.py``);
    - an access line (uvicorn's is off), with the share code left out.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        https: bool,
        max_body_bytes: int,
        waiting: RequestsFirst | None = None,
    ) -> None:
        self.app = app
        self.headers = security_headers(https=https)
        self.max_body_bytes = max_body_bytes
        self.waiting = waiting

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path = scope["path"]
        extra = [*self.headers, (b"x-request-id", new_request_id().encode())]
        if is_share_path(path):
            extra += _SHARE_HEADERS
        limit = self.max_body_bytes
        declared = _content_length(scope)
        received = 0
        status = 500
        answered_after: float | None = None
        waiting = self.waiting

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

        async def enveloped_send(message: Message) -> None:
            nonlocal status, answered_after
            if message["type"] == "http.response.start":
                status = message["status"]
                answered_after = time.perf_counter() - started
                if waiting is not None:
                    waiting.answered()
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        metrics.http_requests_in_flight.inc()
        if waiting is not None:
            waiting.arrived()
        try:
            await self.app(scope, limited_receive, enveloped_send)
        except ClientDisconnect:
            # The client went away (or was cut off for sending too slowly): nobody to
            # answer, and not a bug.
            pass
        except Exception as exc:
            if answered_after is not None:
                raise  # too late for another answer; the server closes the connection
            response = await handle_unexpected(Request(scope), exc)
            await response(scope, receive, enveloped_send)
        finally:
            if answered_after is None:
                # No response started: the request is over all the same.
                if waiting is not None:
                    waiting.answered()
                answered_after = time.perf_counter() - started
            metrics.http_requests_in_flight.dec()
            http_metrics.count(scope, status, answered_after)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    "%s %s %d %.1fms",
                    loggable(scope["method"]),
                    loggable_path(path),
                    status,
                    (time.perf_counter() - started) * 1000,
                )


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
