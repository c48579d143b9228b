"""Clients for live updates: Server-Sent Events over httpx, graphql-transport-ws over websockets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
import websockets
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection

WS_PROTOCOL = "graphql-transport-ws"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.asynccontextmanager
async def serve(app: Starlette) -> AsyncIterator[str]:
    """``app`` behind a real uvicorn on a free TCP port, on the running event loop; its
    base URL. The app's lifespan is not run (the test runs what it needs)."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            lifespan="off",
            log_level="warning",
            # Open streams are cut at once when the test ends.
            timeout_graceful_shutdown=1,
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # raises why it could not start
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@dataclass
class SseStream:
    """An agent's open /events stream, read frame by frame."""

    response: httpx.Response
    _lines: AsyncIterator[str] = field(init=False)

    def __post_init__(self) -> None:
        self._lines = self.response.aiter_lines()

    async def next(self, within: float = 5.0) -> tuple[str, Any]:
        async with asyncio.timeout(within):
            event = data = None
            async for line in self._lines:
                if line == "":
                    if event is not None:
                        return event, data
                    continue
                if line.startswith(":"):
                    return "keep-alive", None
                name, _, value = line.partition(": ")
                if name == "event":
                    event = value
                elif name == "data":
                    data = json.loads(value)
            return "end", None

    async def next_config(self, within: float = 5.0) -> int:
        """The next config version, skipping keep-alives."""
        deadline = time.monotonic() + within
        while True:
            kind, data = await self.next(max(deadline - time.monotonic(), 0.001))
            if kind == "config":
                return data["config_version"]
            assert kind == "keep-alive", kind


@contextlib.asynccontextmanager
async def sse(
    http: httpx.AsyncClient, base_url: str, agent_id: str, secret: str
) -> AsyncIterator[SseStream]:
    url = f"{base_url}/api/v1/agents/{agent_id}/events"
    headers = {"Authorization": f"Bearer {secret}", "Accept": "text/event-stream"}
    async with http.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        yield SseStream(response)


class GraphQLSocket:
    """One graphql-transport-ws connection."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._ids = 0

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def receive(self, within: float = 5.0) -> dict[str, Any]:
        async with asyncio.timeout(within):
            while True:
                frame = await self.ws.recv()
                # graphql-transport-ws is a text protocol; clients do not parse binary frames.
                assert isinstance(frame, str), "the server sent a binary frame"
                message = json.loads(frame)
                if message["type"] == "ping":
                    await self.send({"type": "pong"})
                    continue
                return message

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        self._ids += 1
        op_id = str(self._ids)
        payload: dict[str, Any] = {"query": query}
        if variables:
            payload["variables"] = variables
        await self.send({"id": op_id, "type": "subscribe", "payload": payload})
        return op_id

    async def complete(self, op_id: str) -> None:
        await self.send({"id": op_id, "type": "complete"})


@contextlib.asynccontextmanager
async def graphql_ws(
    base_url: str,
    *,
    init: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    expect_ack: bool = True,
) -> AsyncIterator[GraphQLSocket]:
    url = base_url.replace("http://", "ws://") + "/graphql"
    async with websockets.connect(
        url, subprotocols=[WS_PROTOCOL], additional_headers=headers or {}, open_timeout=5
    ) as ws:
        socket = GraphQLSocket(ws)
        await socket.send({"type": "connection_init", "payload": init or {}})
        if expect_ack:
            ack = await socket.receive()
            assert ack["type"] == "connection_ack", ack
        yield socket
