"""Children of a page of agents, loaded before the executor walks them.

When a query asks for an agent list's GPUs, workers or their connections, the root
resolver loads them for the whole page (through the same per-request DataLoaders:
one statement per kind of child) and hands every node its children. The nested
resolvers then answer synchronously, with no coroutine or task per item.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gpugo.schema.context import GraphQLInfo
from gpugo.schema.types.agents import Agent, gpu_node
from gpugo.schema.types.workers import worker_node


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
    loaders = info.context.loaders
    ids = [str(node.id) for node in nodes]
    if "gpus" in wanted:
        for node, rows in zip(nodes, await loaders.gpus_by_agent.load_many(ids), strict=True):
            node.known_gpus = [gpu_node(row) for row in rows]
    if "workers" not in wanted:
        return
    per_agent = await loaders.workers_by_agent.load_many(ids)
    connections: dict[str, list[Any]] | None = None
    if "connections" in wanted:
        worker_ids = [row["id"] for rows in per_agent for row in rows]
        loaded = await loaders.connections_by_worker.load_many(worker_ids)
        connections = dict(zip(worker_ids, loaded, strict=True))
    for node, rows in zip(nodes, per_agent, strict=True):
        node.known_workers = [
            worker_node(row, None if connections is None else connections[row["id"]])
            for row in rows
        ]
