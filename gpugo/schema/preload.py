"""The agents list: a page and the children the query asks for, in one statement.

When a query asks for the agents' GPUs, workers or their connections, they come with
the page (services/agent_pages.py) and every node is handed its children before the
executor walks them. The nested resolvers then answer synchronously, with no
coroutine or task per item.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gpugo.schema.compiled import operation_compilable
from gpugo.schema.context import GraphQLInfo
from gpugo.schema.pagination import (
    Connection,
    by_creation,
    connection,
    decode_cursor,
    position_time,
)
from gpugo.schema.permissions import user
from gpugo.schema.types.agents import Agent, agent_summary_node, gpu_view_node
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


async def agents_page(info: GraphQLInfo, *, first: int, after: str | None) -> Connection[Agent]:
    """The caller's agents, newest first, with the children the query asks for."""
    wanted = _wanted(info)
    with_gpus = "gpus" in wanted
    with_workers = "workers" in wanted
    found = await agent_pages.page(
        ctx=info.context.server,
        principal=await user(info),
        first=first,
        after=position_time(decode_cursor(after)) if after is not None else None,
        with_gpus=with_gpus,
        with_workers=with_workers,
        with_connections="connections" in wanted,
    )
    nodes = []
    for view, children in found.items:
        node = agent_summary_node(view)
        heard = node.presence()
        if with_gpus:
            node.known_gpus = [gpu_view_node(gpu) for gpu in children.gpus]
        if with_workers:
            node.known_workers = [
                worker_node(row, heard, row.get("connections")) for row in children.workers
            ]
        nodes.append(node)
    return connection(nodes, key=by_creation, has_next=found.has_next, total=found.total)
