"""A machine's display name and tags, set by its owner (the agent's hostname stays)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, field_validator

from gpugo.inputs.common import Input

MAX_TAGS = 16
_TAG = re.compile(r"[\w.:/-]{1,32}")
TAG_RULE = "1 to 32 letters, digits or . _ : / -"


def _display_name(value: str) -> str | None:
    value = " ".join(value.split())
    if not value.isprintable():
        raise ValueError("Use printable characters only.")
    return value or None


def _tags(values: list[str]) -> list[str]:
    # Case-insensitive duplicates are one tag, kept as first written.
    seen: set[str] = set()
    tags = []
    for value in values:
        value = value.strip()
        if _TAG.fullmatch(value) is None:
            raise ValueError(f"A tag is {TAG_RULE} (got {value[:40]!r}).")
        if value.casefold() not in seen:
            seen.add(value.casefold())
            tags.append(value)
    return tags


class AgentLabelsInput(Input):
    # Absent keeps the value; display_name null or blank removes it, tags [] removes them.
    display_name: Annotated[str, Field(max_length=100), AfterValidator(_display_name)] | None = None
    tags: Annotated[list[str], Field(max_length=MAX_TAGS), AfterValidator(_tags)] | None = None

    @field_validator("tags", mode="before")
    @classmethod
    def _tags_not_null(cls, value: object) -> object:
        return [] if value is None else value
