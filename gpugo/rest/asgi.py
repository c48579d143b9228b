"""Plain ASGI reading and answering, for the doors the app serves ahead of its router
(``gpugo.app.App``): no Request or Response objects on the busiest paths."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from gpugo.errors import GpugoError
from gpugo.rest.errors import error_response
from gpugo.rest.responses import JSONResponse

Headers = list[tuple[bytes, bytes]]
# What a door answers: status, headers, body.
Answer = tuple[int, Headers, bytes]

JSON_CONTENT_TYPE = (b"content-type", JSONResponse.media_type.encode())


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of header ``name`` (lower case, as servers pass names)."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def read_body(receive: Receive) -> bytes:
    """The whole request body; ClientDisconnect if the client leaves first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def json_answer(content: Any, status: int = 200) -> Answer:
    body = orjson.dumps(content)
    return status, [(b"content-length", b"%d" % len(body)), JSON_CONTENT_TYPE], body


def error_answer(error: GpugoError) -> Answer:
    """The contract's error body, with the headers its status calls for."""
    response = error_response(error)
    return response.status_code, list(response.raw_headers), response.body


async def send_answer(send: Send, answer: Answer, *, with_body: bool = True) -> None:
    status, headers, body = answer
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body if with_body else b""})
