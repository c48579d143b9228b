"""Children of a page of agents, loaded before the executor walks them.

When a query asks for an agent list's GPUs, workers or their connections, the root
resolver loads them for the whole page in one statement and hands every node its
children. The nested resolvers then answer synchronously, with no coroutine or task
per item.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gpugo.schema.compiled import operation_compilable
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


# (operation, response path) -> (operation, names); see _wanted.
_WANTED: dict[tuple[int, tuple[str | int, ...]], tuple[Any, frozenset[str]]] = {}
MAX_WANTED = 1024


def _wanted(info: GraphQLInfo) -> frozenset[str]:
    """The names below this field, worked out once per cached document: Strawberry
    rebuilds ``selected_fields`` from the syntax tree on every request."""
    operation = info.operation
    raw = info._raw_info
    if not operation_compilable(operation, raw.fragments):
        return frozenset(_names(info.selected_fields))  # directives: depends on variables
    key = (id(operation), tuple(info.path.as_list()))
    entry = _WANTED.get(key)
    if entry is not None and entry[0] is operation:
        return entry[1]
    names = frozenset(_names(info.selected_fields))
    if len(_WANTED) >= MAX_WANTED:
        _WANTED.clear()
    _WANTED[key] = (operation, names)
    return names


async def preload_agents(info: GraphQLInfo, nodes: list[Agent]) -> None:
    if not nodes:
        return
    wanted = _wanted(info)
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
