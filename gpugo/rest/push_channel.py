"""GET /v1/stream: the push channel the shipped agent listens on, keyed by ``x-sse-topic``.

The agent connects to a fixed host (``sse.tensor-fusion.ai``) that a deployment routes
here, without a credential; frames carry nothing but a config_version (``data: 7``)
or, on the restart topic, a worker id (``data: wkr_…``), with ``: keep-alive``
comments in between. The agent reads only ``data:`` lines. docs/agents.md has the
routing and what a frame reveals.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing

from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from gpugo.rest import requests
from gpugo.rest.agent_events import HEADERS, KEEP_ALIVE, EventStreamResponse
from gpugo.services import agent_push

PATH = "/v1/stream"


async def _frames(messages: AsyncGenerator[str | None, None]) -> AsyncGenerator[bytes, None]:
    async with aclosing(messages):
        async for data in messages:
            yield KEEP_ALIVE if data is None else f"data: {data}\n\n".encode()


async def stream(request: Request) -> EventStreamResponse:
    topic = agent_push.topic(request.headers.get(agent_push.HEADER))
    messages = agent_push.topic_messages(ctx=requests.server(request), topic=topic)
    return EventStreamResponse(_frames(messages), media_type="text/event-stream", headers=HEADERS)


routes: list[BaseRoute] = [Route(PATH, stream, methods=["GET"])]
