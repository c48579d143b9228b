"""GraphQL input types. They only carry values: the REST pydantic declarations validate them.

Python attribute names are the REST field names (``listen_port``), so an input
becomes the REST body with :func:`rest_body` and goes through ``parse_input``
with the same model, limits and messages as REST.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any, TypeVar

import strawberry
from pydantic import BaseModel
from strawberry.types.unset import UNSET

from gpugo.inputs.common import parse_input

M = TypeVar("M", bound=BaseModel)


def rest_body(value: object) -> dict[str, Any]:
    """The input as the REST JSON body: absent (UNSET) fields are left out."""
    assert dataclasses.is_dataclass(value)
    return {
        f.name: getattr(value, f.name)
        for f in dataclasses.fields(value)
        if getattr(value, f.name) is not UNSET
    }


def parse(model: type[M], value: object) -> M:
    """Validate a GraphQL input with the REST declaration (ValidationFailed on error)."""
    return parse_input(model, rest_body(value))


@strawberry.input(description="E-mail and password, for signup and login.")
class CredentialsInput:
    email: str
    password: str


@strawberry.input(description="The current password, and the new one (8 to 1024 characters).")
class ChangePasswordInput:
    current_password: str
    new_password: str


@strawberry.input
class CreateWorkerInput:
    agent_id: strawberry.ID
    name: str = strawberry.field(description="1 to 100 characters.")
    gpu_ids: list[str] = strawberry.field(description="GPUs of the agent, at least one.")
    listen_port: int = strawberry.field(description="1024 to 65535, free on the agent.")
    enabled: bool = True
    vram_mb: int | None = strawberry.field(
        default=UNSET, description="GPU memory limit in MiB; null or absent: none."
    )
    compute_percent: int | None = strawberry.field(
        default=UNSET, description="Compute limit, 1 to 100 %; null or absent: none."
    )
    isolation_mode: str | None = strawberry.field(
        default=UNSET, description="shared, soft, hard or partitioned; null: the agent's default."
    )


@strawberry.input(
    description="Leave a field out to keep its value; null is refused, except for a limit "
    "(null removes it)."
)
class UpdateWorkerInput:
    name: str | None = UNSET
    gpu_ids: list[str] | None = UNSET
    listen_port: int | None = UNSET
    enabled: bool | None = UNSET
    vram_mb: int | None = UNSET
    compute_percent: int | None = UNSET
    isolation_mode: str | None = UNSET


@strawberry.input
class CreateShareInput:
    worker_id: strawberry.ID
    connection_ip: str = strawberry.field(description="IP address or host name clients dial.")
    expires_at: datetime | None = strawberry.field(
        default=None, description="In the future; null for no expiry."
    )
    max_uses: int | None = strawberry.field(default=None, description="Null for unlimited.")


@strawberry.input(description="New limits for a share link; its code stays the same.")
class ExtendShareInput:
    expires_at: datetime | None = strawberry.field(
        default=UNSET, description="In the future; null: no expiry; absent: unchanged."
    )
    max_uses: int | None = strawberry.field(
        default=UNSET,
        description="Not below the uses counted; null: unlimited; absent: unchanged.",
    )
