"""Children of a page of agents, loaded before the executor walks them.

When a query asks for an agent list's GPUs, workers or their connections, the root
resolver loads them for the whole page in one statement and hands every node its
children. The nested resolvers then answer synchronously, with no coroutine or task
per item.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gpugo.schema.context import GraphQLInfo
from gpugo.schema.types.agents import Agent, gpu_node
from gpugo.schema.types.workers import worker_node
from gpugo.services import agent_pages


def _names(selections: Iterable[Any]) -> set[str]:
    """Every field name below these selections, fragments included."""
    names: set[str] = set()
    for selection in selections:
        name = getattr(selection, "name", None)
        if name:
            names.add(name)
        names |= _names(getattr(selection, "selections", ()) or ())
    return names


async def preload_agents(info: GraphQLInfo, nodes: list[Agent]) -> None:
    if not nodes:
        return
    wanted = _names(info.selected_fields)
    with_gpus = "gpus" in wanted
    with_workers = "workers" in wanted
    if not (with_gpus or with_workers):
        return
    found = await agent_pages.children(
        [str(node.id) for node in nodes],
        with_gpus=with_gpus,
        with_workers=with_workers,
        with_connections="connections" in wanted,
    )
    for node in nodes:
        children = found[str(node.id)]
        if with_gpus:
            node.known_gpus = [gpu_node(row) for row in children.gpus]
        if with_workers:
            node.known_workers = [
                worker_node(row, row.get("connections")) for row in children.workers
            ]
