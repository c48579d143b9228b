"""The /graphql endpoint: Strawberry's ASGI view with the contract's HTTP rules in front.

Before any GraphQL work, an HTTP request must be a POST (405), carry
``application/json`` (415), and, unless it is bearer-authenticated, come from
this server's own pages when it carries the session cookie or an ``Origin``
(403, the CSRF rule: every GraphQL POST counts as unsafe). Refusals are
GraphQL-shaped: ``{"errors": [{"message", "extensions": {"code"}}]}``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

import orjson
from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.schema import BaseSchema
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET, UnsetType

from gpugo.auth.csrf import check_same_origin
from gpugo.auth.sessions import COOKIE_NAME
from gpugo.context import ServerContext
from gpugo.counted_log import CountedLog
from gpugo.errors import GpugoError, MethodNotAllowed, UnsupportedMediaType
from gpugo.schema.context import GraphQLContext
from gpugo.schema.errors import extensions_for, has_code, to_client
from gpugo.schema.fanout import FanOutTransportWSHandler, SharedRuns
from gpugo.schema.loaders import Loaders
from gpugo.schema.subscriptions import on_connect
from gpugo.streams import Held

# Strawberry's own HTTP refusals (bad JSON, batching, missing query) by status.
_HTTP_CODES = {400: "validation_error", 404: "not_found", 405: "method_not_allowed"}
# One connection may not hold more subscriptions than this.
MAX_SUBSCRIPTIONS = 20
# The close code of a WebSocket ended because its user opened one too many.
SUPERSEDED = 4008
_SOCKET_SLOT = "gpugo.socket_slot"
# The close code of a WebSocket refused because the process holds as many as it may
# (1013, "try again later"); HTTP keeps the rest of the connections.
AT_CAPACITY = 1013
AT_CAPACITY_REASON = "The server is at its WebSocket limit; try again later."
refused_sockets = CountedLog(
    logging.getLogger("gpugo.connections"), "WebSockets refused at the limit"
)


def websocket_limit(max_connections: int) -> int:
    """How many WebSockets a process holds at most: a tenth of the connections (at least
    16) stays for HTTP, so agents' reports and health checks always find room."""
    return max(max_connections - max(max_connections // 10, 16), 1)


def error_response(error: GpugoError, headers: dict[str, str] | None = None) -> Response:
    body = {"errors": [{"message": error.message, "extensions": extensions_for(error)}]}
    return Response(
        orjson.dumps(body),
        status_code=error.status,
        media_type="application/json",
        headers=headers,
    )


class GraphQLView(GraphQL[GraphQLContext, None]):
    # Identical live subscriptions share one execution per event (schema/fanout.py).
    graphql_transport_ws_handler_class = FanOutTransportWSHandler

    def __init__(self, schema: BaseSchema, server: ServerContext) -> None:
        super().__init__(
            schema,
            # The bundled GraphiQL page loads its code from unpkg.com; the product must
            # work offline, so there is no IDE page (use any GraphQL client instead).
            graphql_ide=None,
            allow_queries_via_get=False,
            multipart_uploads_enabled=False,
            max_subscriptions_per_connection=MAX_SUBSCRIPTIONS,
            # Browsers attach cookies to cross-site WebSocket handshakes: only pages of
            # this server (its public URL, or the Host it was reached by) may open one.
            allowed_origins=[server.settings.public_origin],
        )
        self.server = server
        self.shared_runs = SharedRuns()
        self.sockets = 0
        self.max_sockets = websocket_limit(server.settings.max_connections)
        self._closing: set[asyncio.Task[None]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if self.sockets >= self.max_sockets:
                await self._refuse(scope, receive, send)
                return
            self.sockets += 1
            try:
                await super().__call__(scope, receive, send)
            finally:
                self.sockets -= 1
                # The user's slot (taken at connection_init) is free again.
                slot: Held | None = scope.get(_SOCKET_SLOT)
                if slot is not None:
                    slot.release()
            return
        request = Request(scope, receive)
        try:
            self._check_request(request)
            response = await self.run(request)
        except HTTPException as exc:
            error = GpugoError(exc.reason, code=_HTTP_CODES.get(exc.status_code, "error"))
            error.status = exc.status_code
            response = error_response(error)
        except GpugoError as error:
            # E.g. payload_too_large, raised while the body is read.
            allow = {"Allow": "POST"} if isinstance(error, MethodNotAllowed) else None
            response = error_response(error, allow)
        await response(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Accepted, then closed with 1013: a browser learns why (a refused handshake
        would show as 1006, like a network failure) and when to come back."""
        refused_sockets.add("graphql", f"{self.max_sockets} open")
        socket = WebSocket(scope, receive, send)
        offered = scope.get("subprotocols") or []
        await socket.accept(subprotocol=offered[0] if offered else None)
        await socket.close(code=AT_CAPACITY, reason=AT_CAPACITY_REASON)

    def _check_request(self, request: Request) -> None:
        if request.method != "POST":
            raise MethodNotAllowed("GraphQL takes POST requests only.")
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise UnsupportedMediaType("Send GraphQL requests as application/json.")
        if request.headers.get("authorization") is not None:
            # Bearer requests ignore cookies: nothing for a forged page to ride on.
            return
        origin = request.headers.get("origin")
        if COOKIE_NAME in request.cookies or origin is not None:
            check_same_origin(
                method="POST",
                origin=origin,
                sec_fetch_site=request.headers.get("sec-fetch-site"),
                public_origin=self.server.settings.public_origin,
            )

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> GraphQLContext:
        return GraphQLContext(
            server=self.server,
            request=request,
            response=response if isinstance(response, Response) else None,
            loaders=Loaders(),
        )

    async def on_ws_connect(self, context: GraphQLContext) -> UnsetType | dict[str, object] | None:
        # connection_init: a session cookie of the handshake or a PAT in the payload.
        await on_connect(context)
        # A user holds a few WebSockets at most: this one closes the oldest beyond them.
        principal = await context.principal()
        socket = context.request
        if _SOCKET_SLOT not in socket.scope:
            end = functools.partial(self._supersede, socket)
            socket.scope[_SOCKET_SLOT] = self.server.user_sockets.add(principal.user_id, end)
        return UNSET

    def _supersede(self, socket: Request | WebSocket) -> None:
        assert isinstance(socket, WebSocket)
        reason = "Superseded: this account opened more live connections than allowed."
        task = asyncio.get_running_loop().create_task(socket.close(code=SUPERSEDED, reason=reason))
        # Kept until done (the loop holds tasks weakly); a socket already gone is fine.
        self._closing.add(task)
        task.add_done_callback(self._closed)

    def _closed(self, task: asyncio.Task[None]) -> None:
        self._closing.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: closing a socket that just went away is no error

    async def get_root_value(self, request: Request | WebSocket) -> None:
        return None

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        # Errors raised by an extension's parsing hook (the token limit, through the parser
        # cache) leave Strawberry before MaskErrors sees them: map whatever is left here.
        if result.errors and not all(has_code(e) for e in result.errors):
            result.errors = [e if has_code(e) else to_client(e) for e in result.errors]
        return await super().process_result(request, result)

    def decode_json(self, data: str | bytes) -> object:
        # Request bodies and WebSocket frames. orjson refuses what json let through to a
        # crash (500) later: bytes that are not UTF-8, nesting past 1024 levels (json:
        # RecursionError), numbers past 4300 digits (json: ValueError) or a double, and
        # lone surrogates; each is a JSONDecodeError, which Strawberry answers 400 (and
        # closes a WebSocket with 4400).
        return orjson.loads(data)

    def parse_json(self, data: str | bytes) -> Any:
        parsed = super().parse_json(data)
        # Strawberry assumes an object (or a list, refused as a batch) and would crash.
        if not isinstance(parsed, dict | list):
            raise HTTPException(400, "The request body must be a JSON object.")
        return parsed

    def encode_json(self, data: Any) -> str:
        # Text, not bytes: Strawberry sends bytes as binary WebSocket frames, which
        # graphql-transport-ws clients (graphql-ws and others) do not parse.
        return orjson.dumps(data).decode()
