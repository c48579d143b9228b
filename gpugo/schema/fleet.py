"""The fleet overview and machine labels in GraphQL (services/fleet.py and
services/agent_labels.py), joined to the Query and Mutation roots."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry
from strawberry.types.unset import UNSET

from gpugo.inputs.agent_labels import AgentLabelsInput as AgentLabelsModel
from gpugo.inputs.common import lookup_id
from gpugo.schema.context import GraphQLInfo
from gpugo.schema.permissions import IsUser, user
from gpugo.schema.types.agents import Agent, agent_summary_node
from gpugo.schema.types.inputs import parse
from gpugo.services import agent_labels, fleet

_USER = [IsUser]


@strawberry.enum(description="The order of the fleet's machines.")
class FleetSort(Enum):
    NAME = "name"
    STATUS = "status"
    GPUS = "gpus"
    UTILIZATION = "utilization"
    LAST_SEEN = "last_seen"
    NEWEST = "newest"


@strawberry.enum
class FleetState(Enum):
    ONLINE = "online"
    OFFLINE = "offline"
    PENDING = "pending"


@strawberry.type(description="How many GPUs of one model the fleet has.")
class GpuModelCount:
    model: str
    count: int


@strawberry.type(description="Every machine of the user, counted.")
class FleetSummary:
    machines: int
    online: int
    offline: int
    pending: int
    gpus_total: int
    gpus_in_use: int = strawberry.field(description="On online machines, held by a running worker.")
    gpus_idle: int = strawberry.field(description="On online machines, held by no running worker.")
    gpus_unreachable: int = strawberry.field(
        description="On machines offline or pending: in use or not, nobody knows now."
    )
    gpu_models: list[GpuModelCount]
    metrics_included: bool
    utilization: float | None = strawberry.field(
        description="Mean GPU utilisation over the machines reporting metrics lately."
    )
    vram_used_mb: int | None
    vram_total_mb: int | None
    tags: list[str] = strawberry.field(description="Every tag in use, by name.")


@strawberry.type(description="A machine as the fleet overview shows it.")
class FleetMachine:
    agent: Agent
    name: str = strawberry.field(description="Its display name, or else its hostname.")
    display_name: str | None
    tags: list[str]
    gpus_in_use: int = strawberry.field(
        description="Its GPUs held by a running worker, as it last reported: current only "
        "while it is online (see lastKnownAt)."
    )
    workers_running: int = strawberry.field(description="As it last reported (see lastKnownAt).")
    workers_total: int
    last_known_at: datetime | None = strawberry.field(
        description="Null while the machine is online (gpusInUse and workersRunning are "
        "current); otherwise when the report they come from was made (null too if it never "
        "reported). An offline machine's GPUs count in the summary's gpusUnreachable, never "
        "as in use."
    )
    utilization: float | None = strawberry.field(
        description="Mean over its GPUs, from their latest readings (null: none lately)."
    )
    temperature: int | None = strawberry.field(description="Its hottest GPU, Celsius.")
    vram_used_mb: int | None
    vram_total_mb: int | None
    reading_at: datetime | None


@strawberry.type(description="The summary of the whole fleet and one page of its machines.")
class FleetPage:
    summary: FleetSummary
    matching: int = strawberry.field(description="Machines matching the search and state.")
    machines: list[FleetMachine]


@strawberry.type(description="A machine's display name and tags.")
class AgentLabels:
    agent_id: strawberry.ID
    hostname: str
    display_name: str | None
    tags: list[str]


@strawberry.input(description="Absent fields stay as they are.")
class AgentLabelsInput:
    display_name: str | None = strawberry.field(
        default=UNSET, description="Up to 100 characters; null or blank removes it."
    )
    tags: list[str] | None = strawberry.field(
        default=UNSET, description="Up to 16 tags of 1 to 32 letters, digits or . _ : / -."
    )


def _machine(item: fleet.FleetMachine) -> FleetMachine:
    # The agent's GPUs and workers, if asked for, come from the per-request loaders.
    node = agent_summary_node(item.summary)
    node.known["display_name"] = item.display_name
    node.known["tags"] = list(item.tags)
    reading = item.reading
    return FleetMachine(
        agent=node,
        name=item.name,
        display_name=item.display_name,
        tags=list(item.tags),
        gpus_in_use=item.gpus_in_use,
        workers_running=item.workers_running,
        workers_total=item.workers_total,
        last_known_at=item.presence.last_known_at,
        utilization=round(reading.utilization, 1) if reading else None,
        temperature=reading.temperature if reading else None,
        vram_used_mb=reading.vram_used_mb if reading else None,
        vram_total_mb=reading.vram_total_mb if reading else None,
        reading_at=reading.at if reading else None,
    )


def _summary(summary: fleet.FleetSummary) -> FleetSummary:
    return FleetSummary(
        machines=summary.machines,
        online=summary.by_state["online"],
        offline=summary.by_state["offline"],
        pending=summary.by_state["pending"],
        gpus_total=summary.gpus_total,
        gpus_in_use=summary.gpus_in_use,
        gpus_idle=summary.gpus_idle,
        gpus_unreachable=summary.gpus_total - summary.gpus_in_use - summary.gpus_idle,
        gpu_models=[GpuModelCount(model=m, count=n) for m, n in summary.gpu_models],
        metrics_included=summary.metrics_included,
        utilization=round(summary.utilization, 1) if summary.utilization is not None else None,
        vram_used_mb=summary.vram_used_mb,
        vram_total_mb=summary.vram_total_mb,
        tags=summary.tags,
    )


@strawberry.type
class FleetQueries:
    @strawberry.field(
        permission_classes=_USER,
        description="The fleet's summary and a page of its machines, by name, IP or tag "
        "(every word must match), state, and order.",
    )
    async def fleet(
        self,
        info: GraphQLInfo,
        search: str = "",
        state: FleetState | None = None,
        sort: FleetSort = FleetSort.NAME,
        first: int = 50,
        offset: int = 0,
    ) -> FleetPage:
        found = await fleet.page(
            ctx=info.context.server,
            principal=await user(info),
            search=search,
            state=state.value if state is not None else None,
            sort=sort.value,
            first=first,
            offset=offset,
        )
        return FleetPage(
            summary=_summary(found.summary),
            matching=found.matching,
            machines=[_machine(m) for m in found.machines],
        )


@strawberry.type
class FleetMutations:
    @strawberry.mutation(
        permission_classes=_USER,
        description="Set a machine's display name and tags (its hostname stays the agent's).",
    )
    async def set_agent_labels(
        self, info: GraphQLInfo, id: strawberry.ID, input: AgentLabelsInput
    ) -> AgentLabels | None:
        agent_id = lookup_id(id, "agent")
        data = parse(AgentLabelsModel, input)
        found = await agent_labels.set_labels(
            ctx=info.context.server, principal=await user(info), agent_id=agent_id, data=data
        )
        return AgentLabels(
            agent_id=strawberry.ID(found.agent_id),
            hostname=found.hostname,
            display_name=found.display_name,
            tags=list(found.tags),
        )
