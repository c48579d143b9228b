"""GET /api/v1/agents/{agent_id}/events: Server-Sent Events telling an agent its config_version.

Frames: ``event: config`` with ``{"config_version": N}`` on connect and on each
change, a ``: keep-alive`` comment when idle. Nothing else is honored
(``Last-Event-ID`` included): a reconnect simply gets the current version first.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing

import orjson
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from gpugo.rest import requests
from gpugo.services import agent_push

KEEP_ALIVE = b": keep-alive\n\n"
HEADERS = {
    "Cache-Control": "no-store",
    # nginx would otherwise buffer the stream and deliver frames late.
    "X-Accel-Buffering": "no",
}


def config_frame(version: int) -> bytes:
    return b"event: config\ndata: " + orjson.dumps({"config_version": version}) + b"\n\n"


class EventStreamResponse(StreamingResponse):
    """A stream whose generator is always closed when the response ends, however it ends.

    Starlette cancels the sending task on disconnect but leaves the generator to the
    garbage collector; closing it here leaves the bus subscription at once.
    """

    body_iterator: AsyncGenerator[bytes, None]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.body_iterator.aclose()


async def _frames(versions: AsyncGenerator[int | None, None]) -> AsyncGenerator[bytes, None]:
    async with aclosing(versions):
        async for version in versions:
            yield KEEP_ALIVE if version is None else config_frame(version)


async def stream(request: Request) -> EventStreamResponse:
    ctx = requests.server(request)
    principal = await requests.agent(request, request.path_params["agent_id"])
    versions = agent_push.config_versions(ctx=ctx, principal=principal)
    return EventStreamResponse(_frames(versions), media_type="text/event-stream", headers=HEADERS)
