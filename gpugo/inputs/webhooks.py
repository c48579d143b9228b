from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from gpugo.addresses import MAX_URL_LENGTH, AddressRefused, parse_url
from gpugo.inputs.common import Input

EventName = Literal[
    "agent.offline",
    "agent.online",
    "agent.registered",
    "agent.deleted",
    "worker.failed",
    "share.used_up",
    "share.expired",
    "plan.limit_reached",
]


def _http_url(value: str) -> str:
    # The shape only; where it points is checked by the service (it resolves the host).
    try:
        parse_url(value)
    except AddressRefused as exc:
        raise ValueError(f"The URL {exc}.") from None
    return value


Url = Annotated[str, Field(min_length=1, max_length=MAX_URL_LENGTH), AfterValidator(_http_url)]
Events = Annotated[list[EventName], Field(min_length=1, max_length=16)]
Description = Annotated[str, Field(max_length=200)]


class CreateWebhookInput(Input):
    url: Url
    events: Events
    description: Description = ""


class UpdateWebhookInput(Input):
    url: Url | None = None
    events: Events | None = None
    enabled: bool | None = None
    description: Description | None = None
