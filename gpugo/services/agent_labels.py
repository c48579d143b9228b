"""A machine's display name and tags: the owner's words for it, beside the hostname."""

from __future__ import annotations

from dataclasses import dataclass

from gpugo import clock
from gpugo.auth.principal import Principal
from gpugo.context import ServerContext
from gpugo.errors import NotFound
from gpugo.events import Event, EventKind
from gpugo.inputs.agent_labels import AgentLabelsInput
from gpugo.models import Agent
from gpugo.services import scope


@dataclass(frozen=True, slots=True)
class AgentLabels:
    agent_id: str
    hostname: str
    display_name: str | None
    tags: tuple[str, ...]


def labels_of(display_name: str | None, tags: object) -> tuple[str | None, tuple[str, ...]]:
    """From the stored columns (tags: null for none)."""
    return display_name, tuple(tags) if isinstance(tags, list) else ()


async def get(*, principal: Principal, agent_id: str) -> AgentLabels:
    rows = await Agent.filter(scope.agents(principal), id=agent_id).values(
        "hostname", "display_name", "tags"
    )
    if not rows:
        raise NotFound("No such agent.")
    name, tags = labels_of(rows[0]["display_name"], rows[0]["tags"])
    return AgentLabels(agent_id, rows[0]["hostname"], name, tags)


async def set_labels(
    *, ctx: ServerContext, principal: Principal, agent_id: str, data: AgentLabelsInput
) -> AgentLabels:
    """Change what is given (absent fields stay); the agent is not told: nothing it runs
    changes. Live views hear ``agent.updated``."""
    changes: dict[str, object] = {}
    if "display_name" in data.model_fields_set:
        changes["display_name"] = data.display_name
    if "tags" in data.model_fields_set:
        changes["tags"] = list(data.tags or [])
    if changes:
        changes["updated_at"] = clock.now()
        if not await Agent.filter(scope.agents(principal), id=agent_id).update(**changes):
            raise NotFound("No such agent.")
        await ctx.events.publish(
            Event(kind=EventKind.AGENT_UPDATED, user_id=principal.user_id, agent_id=agent_id)
        )
    return await get(principal=principal, agent_id=agent_id)
