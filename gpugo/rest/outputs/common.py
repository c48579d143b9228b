"""Pieces shared by several bodies."""

from __future__ import annotations

from typing import Annotated, Literal, NotRequired

from pydantic import WithJsonSchema
from typing_extensions import TypedDict

# RFC 3339, UTC, milliseconds, "Z" (gpugo.timefmt.iso).
Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
NullableTimestamp = Annotated[
    str | None,
    WithJsonSchema({"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]}),
]
WorkerStatus = Literal["pending", "running", "stopping", "stopped"]


class Success(TypedDict):
    success: bool


class License(TypedDict):
    """``plain`` is ``<gpu ids>|<plan>|<expiry unix ms>``; ``encrypted`` its Ed25519 signature."""

    plain: str
    encrypted: str


class Health(TypedDict):
    status: Literal["ok", "ready"]


class PublicKey(TypedDict):
    algorithm: Literal["Ed25519"]
    public_key: str


class FieldErrorBody(TypedDict):
    field: str
    message: str


class ErrorDetail(TypedDict):
    code: str
    message: str
    details: NotRequired[list[FieldErrorBody]]


class ErrorBody(TypedDict):
    """Every status >= 400 (the contract's error body)."""

    error: ErrorDetail
