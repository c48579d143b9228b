"""/api/v1/agents/{agent_id}/labels bodies."""

from __future__ import annotations

from typing_extensions import TypedDict


class AgentLabelsBody(TypedDict):
    agent_id: str
    hostname: str
    display_name: str | None
    tags: list[str]
