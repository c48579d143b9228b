"""A page of the caller's agents with their GPUs, workers and connections: one statement.

The dashboard's list shows a page of agents with their children; the REST list
(``listing``) shows all of them with their GPUs and workers. The page is cut in
SQL (newest first, keyset: after a (created_at, id) position, never an offset), and
each agent's children come back as JSON arrays (no row multiplication), like the
status report's read. The caller's user id is in the statement's WHERE: ownership
is part of the query.

Child rows are dicts with the columns' names, ordered the way every view orders them:
GPUs by the agent's index then id, workers and connections oldest first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gpugo import clock, sql
from gpugo.auth.principal import Principal
from gpugo.context import ServerContext
from gpugo.services.agents import SUMMARY_COLUMNS, AgentSummary, summary
from gpugo.services.views import (
    CONNECTION_COLUMNS,
    GPU_COLUMNS,
    WORKER_COLUMNS,
    GpuView,
    Presence,
    WorkerView,
    gpu_views_from_arrays,
    presence_of,
    worker_view,
)
from gpugo.timefmt import parse_stored

Row = dict[str, Any]


@dataclass(slots=True)
class AgentChildren:
    gpus: tuple[GpuView, ...] = ()
    # Each worker row has WORKER_COLUMNS and, when asked for, "connections".
    workers: list[Row] = field(default_factory=list)


@dataclass(slots=True)
class AgentPage:
    items: list[tuple[AgentSummary, AgentChildren]]
    has_next: bool
    total: int


def _children_columns(*, gpus: bool, workers: bool, connections: bool) -> list[str]:
    """JSON arrays of each agent's children (table alias ``a``); from constants only."""
    columns = []
    if gpus:
        gpu_values = ", ".join(f"g.{name}" for name in GPU_COLUMNS)
        columns.append(
            f"(SELECT json_agg(json_build_array({gpu_values})) FROM gpus g"  # noqa: S608
            " WHERE g.agent_id = a.id) AS gpus"
        )
    if workers:
        worker_values = [
            "to_json(w.gpu_ids)" if name == "gpu_ids" else f"w.{name}" for name in WORKER_COLUMNS
        ]
        if connections:
            connection_values = ", ".join(f"c.{name}" for name in CONNECTION_COLUMNS)
            worker_values.append(
                f"(SELECT json_agg(json_build_array({connection_values}))"  # noqa: S608
                " FROM worker_connections c"
                " WHERE c.worker_id = w.id)"
            )
        columns.append(
            f"(SELECT json_agg(json_build_array({', '.join(worker_values)})) FROM workers w"  # noqa: S608
            " WHERE w.agent_id = a.id) AS workers"
        )
    return columns


def _sql(*, gpus: bool, workers: bool, connections: bool, after: bool) -> dict[str, str]:
    """The page statement; built from this module's constants only.

    Parameters, in order: user id (total), user id (page), [created_at, id of the
    position to start after], limit.
    """
    columns = [
        SUMMARY_COLUMNS,
        "(SELECT COUNT(*) FROM agents t WHERE t.user_id = $1) AS total_count",
        *_children_columns(gpus=gpus, workers=workers, connections=connections),
    ]
    where = "a.user_id = $2"
    limit = "$3"
    if after:
        where += " AND (a.created_at, a.id) < ($3, $4)"
        limit = "$5"
    text = (
        f"SELECT {', '.join(columns)} FROM agents a WHERE {where}"  # noqa: S608
        f" ORDER BY a.created_at DESC, a.id DESC LIMIT {limit}"
    )
    return sql.per_dialect(text)


_STATEMENTS = {
    (gpus, workers, connections, after): _sql(
        gpus=gpus, workers=workers, connections=connections, after=after
    )
    for gpus in (False, True)
    for workers in (False, True)
    for connections in (False, True)
    for after in (False, True)
}
_COUNT = sql.per_dialect("SELECT COUNT(*) AS n FROM agents WHERE user_id = $1")


def _listing_sql(*, one_agent: bool) -> dict[str, str]:
    """Every agent of a user (or the one of an agent principal) with GPUs and workers."""
    columns = [SUMMARY_COLUMNS, *_children_columns(gpus=True, workers=True, connections=False)]
    where = "a.user_id = $1 AND a.id = $2" if one_agent else "a.user_id = $1"
    return sql.per_dialect(
        f"SELECT {', '.join(columns)} FROM agents a WHERE {where}"  # noqa: S608 (constants)
        " ORDER BY a.created_at DESC, a.id"
    )


_LISTING = {one_agent: _listing_sql(one_agent=one_agent) for one_agent in (False, True)}


def _decode(value: Any) -> list[Any]:
    return sql.json_value(value) or []


def _gpus(values: Any, presence: Presence) -> tuple[GpuView, ...]:
    return gpu_views_from_arrays(_decode(values), presence)


def _connections(values: Any) -> list[Row]:
    rows = []
    for connection_id, ip, port, pid, connected_at in _decode(values):
        rows.append(
            {
                "id": connection_id,
                "client_ip": ip,
                "client_port": port,
                "client_pid": pid,
                "connected_at": parse_stored(connected_at),
            }
        )
    rows.sort(key=_oldest_first("connected_at"))
    return rows


def _workers(values: Any, with_connections: bool) -> list[Row]:
    rows = []
    for entry in _decode(values):
        row = dict(zip(WORKER_COLUMNS, entry, strict=False))
        row["enabled"] = bool(row["enabled"])  # SQLite's JSON has 0 and 1
        row["is_default"] = bool(row["is_default"])
        row["created_at"] = parse_stored(row["created_at"])
        if with_connections:
            row["connections"] = _connections(entry[len(WORKER_COLUMNS)])
        rows.append(row)
    rows.sort(key=_oldest_first("created_at"))
    return rows


def _oldest_first(column: str) -> Any:
    return lambda row: (row[column], row["id"])


async def page(
    *,
    ctx: ServerContext,
    principal: Principal,
    first: int,
    after: tuple[datetime, str] | None,
    with_gpus: bool,
    with_workers: bool,
    with_connections: bool,
) -> AgentPage:
    """Up to ``first`` of the caller's agents, newest first, after that position."""
    statement = _STATEMENTS[with_gpus, with_workers, with_connections, after is not None]
    user_id = principal.user_id
    params: list[Any] = [user_id, user_id, *(after or ()), first + 1]
    rows = await sql.fetch(statement, params)
    # Past the end there is no row to carry the total: the count alone.
    total = rows[0]["total_count"] if rows else (await sql.fetch(_COUNT, [user_id]))[0]["n"]
    now = clock.now()
    items = []
    for row in rows[:first]:
        found = summary(ctx, row, now)
        children = AgentChildren()
        if with_gpus:
            heard = presence_of(status=found.state.status, last_seen_at=found.last_seen_at)
            children.gpus = _gpus(row["gpus"], heard)
        if with_workers:
            children.workers = _workers(row["workers"], with_connections)
        items.append((found, children))
    return AgentPage(items=items, has_next=len(rows) > first, total=total)


@dataclass(frozen=True, slots=True)
class ListedAgent:
    summary: AgentSummary
    gpus: tuple[GpuView, ...]
    workers: tuple[WorkerView, ...]


async def listing(*, ctx: ServerContext, principal: Principal) -> list[ListedAgent]:
    """All of the caller's agents (an agent's own secret: that agent), newest first, with
    their GPUs and workers: one statement."""
    params = [principal.user_id]
    if principal.agent_id is not None:
        params.append(principal.agent_id)
    rows = await sql.fetch(_LISTING[principal.agent_id is not None], params)
    now = clock.now()
    listed = []
    for row in rows:
        found = summary(ctx, row, now)
        heard = presence_of(status=found.state.status, last_seen_at=found.last_seen_at)
        listed.append(
            ListedAgent(
                summary=found,
                gpus=_gpus(row["gpus"], heard),
                workers=tuple(worker_view(w, heard) for w in _workers(row["workers"], False)),
            )
        )
    return listed
