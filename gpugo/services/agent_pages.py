"""The GPUs, workers and connections of a page of agents, in one statement.

The dashboard's list shows every agent of a page with its children. Child rows come
back as JSON arrays per agent (no row multiplication, one round trip), like the
status report's read. Only ids of agents the caller was already allowed to see may be
passed here: this read carries no ownership rule of its own.

Rows are dicts with the columns' names, ordered the way every view orders them: GPUs
by the agent's index then id, workers and connections oldest first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from tortoise import connections

from gpugo import sql
from gpugo.services.agents import gpu_order
from gpugo.timefmt import parse_stored

Row = dict[str, Any]
# Agents per statement (a page holds at most 100).
MAX_BATCH = 500

GPU_COLUMNS = (
    "gpu_id",
    "gpu_index",
    "vendor",
    "model",
    "vram_mb",
    "driver_version",
    "cuda_version",
    "used_by_worker_id",
)
WORKER_COLUMNS = (
    "id",
    "name",
    "gpu_ids",
    "listen_port",
    "enabled",
    "status",
    "is_default",
    "pid",
    "restarts",
    "created_at",
)
CONNECTION_COLUMNS = ("id", "client_ip", "client_port", "client_pid", "connected_at")

# Per dialect: the JSON array builder, its aggregate, and how a JSON column is embedded.
_DIALECTS = {
    "postgres": ("json_build_array", "json_agg", "{}"),
    "sqlite": ("json_array", "json_group_array", "json({})"),
}


@dataclass(slots=True)
class AgentChildren:
    gpus: list[Row] = field(default_factory=list)
    # Each worker row carries its agent_id and, when asked for, "connections".
    workers: list[Row] = field(default_factory=list)


def _sql(dialect: str, *, gpus: bool, workers: bool, connections: bool) -> str:
    """The statement for these children; built from this module's constants only."""
    array, aggregate, embed = _DIALECTS[dialect]
    columns = ["a.id"]
    if gpus:
        gpu_values = ", ".join(f"g.{name}" for name in GPU_COLUMNS)
        columns.append(
            f"(SELECT {aggregate}({array}({gpu_values})) FROM gpus g"  # noqa: S608
            " WHERE g.agent_id = a.id) AS gpus"
        )
    if workers:
        worker_values = [
            embed.format("w.gpu_ids") if name == "gpu_ids" else f"w.{name}"
            for name in WORKER_COLUMNS
        ]
        if connections:
            connection_values = ", ".join(f"c.{name}" for name in CONNECTION_COLUMNS)
            worker_values.append(
                f"(SELECT {aggregate}({array}({connection_values}))"  # noqa: S608
                " FROM worker_connections c"
                " WHERE c.worker_id = w.id)"
            )
        columns.append(
            f"(SELECT {aggregate}({array}({', '.join(worker_values)})) FROM workers w"  # noqa: S608
            " WHERE w.agent_id = a.id) AS workers"
        )
    # The ids as one parameter: an array, or a JSON array for SQLite.
    if dialect == "postgres":
        where = "a.id = ANY($1::text[])"
    else:
        where = "a.id IN (SELECT value FROM json_each(?))"
    return f"SELECT {', '.join(columns)} FROM agents a WHERE {where}"  # noqa: S608


_STATEMENTS = {
    (dialect, gpus, workers, connections): _sql(
        dialect, gpus=gpus, workers=workers, connections=connections
    )
    for dialect in _DIALECTS
    for gpus in (False, True)
    for workers in (False, True)
    for connections in (False, True)
}


def _decode(value: Any) -> list[Any]:
    return sql.json_value(value) or []


def _gpus(values: Any) -> list[Row]:
    rows = [dict(zip(GPU_COLUMNS, entry, strict=True)) for entry in _decode(values)]
    rows.sort(key=lambda row: gpu_order(row["gpu_index"], row["gpu_id"]))
    return rows


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


def _workers(agent_id: str, values: Any, with_connections: bool) -> list[Row]:
    rows = []
    for entry in _decode(values):
        row = dict(zip(WORKER_COLUMNS, entry, strict=False))
        row["agent_id"] = agent_id
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


async def children(
    agent_ids: list[str], *, with_gpus: bool, with_workers: bool, with_connections: bool
) -> dict[str, AgentChildren]:
    """What was asked for of these agents, by agent id (every id has an entry)."""
    found = {agent_id: AgentChildren() for agent_id in agent_ids}
    if not agent_ids or not (with_gpus or with_workers):
        return found
    client = connections.get("default")
    dialect = client.capabilities.dialect
    for start in range(0, len(agent_ids), MAX_BATCH):
        batch = agent_ids[start : start + MAX_BATCH]
        sql = _STATEMENTS[dialect, with_gpus, with_workers, with_connections]
        param = batch if dialect == "postgres" else orjson.dumps(batch).decode()
        for row in await client.execute_query_dict(sql, [param]):
            entry = found[row["id"]]
            if with_gpus:
                entry.gpus = _gpus(row["gpus"])
            if with_workers:
                entry.workers = _workers(row["id"], row["workers"], with_connections)
    return found
