"""/api/v1/agents/{agent_id}/labels: the owner's display name and tags for a machine.

Beside the spec's agent paths (it has no update path for agents): its bodies stay as the
spec says, and the hostname the agent registered stays the agent's own.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from gpugo.inputs.agent_labels import AgentLabelsInput
from gpugo.rest import requests
from gpugo.rest.outputs.agent_labels import AgentLabelsBody
from gpugo.rest.paths import API
from gpugo.rest.responses import Ok
from gpugo.services import agent_labels


def labels_json(labels: agent_labels.AgentLabels) -> AgentLabelsBody:
    return {
        "agent_id": labels.agent_id,
        "hostname": labels.hostname,
        "display_name": labels.display_name,
        "tags": list(labels.tags),
    }


async def get_labels(request: Request) -> Ok[AgentLabelsBody]:
    principal = await requests.user(request)
    found = await agent_labels.get(principal=principal, agent_id=request.path_params["agent_id"])
    return Ok(labels_json(found))


async def set_labels(request: Request) -> Ok[AgentLabelsBody]:
    principal = await requests.user(request)
    data = await requests.read_json(request, AgentLabelsInput)
    found = await agent_labels.set_labels(
        ctx=requests.server(request),
        principal=principal,
        agent_id=request.path_params["agent_id"],
        data=data,
    )
    return Ok(labels_json(found))


routes: list[BaseRoute] = [
    Route(f"{API}/agents/{{agent_id:id}}/labels", get_labels, methods=["GET"]),
    Route(f"{API}/agents/{{agent_id:id}}/labels", set_labels, methods=["PATCH"]),
]
