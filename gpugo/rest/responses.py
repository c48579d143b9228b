"""JSON responses encoded with orjson."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Generic, TypeVar

import orjson
from starlette.responses import Response

from gpugo.rest.outputs.common import Success

T = TypeVar("T")


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class Ok(JSONResponse, Generic[T]):
    """200 with a body of shape ``T`` (a TypedDict of gpugo.rest.outputs).

    Endpoints name it in their return type (``-> Ok[AgentList]``): the OpenAPI
    document reads the status and the body's schema from there.
    """

    status: ClassVar[int] = 200

    def __init__(self, content: T, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(content, status_code=self.status, headers=headers)


class Created(Ok[T]):
    status: ClassVar[int] = 201


def ok(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(content, status_code=status, headers=headers)


SUCCESS: Success = {"success": True}
