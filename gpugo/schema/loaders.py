"""Per-request DataLoaders: one SQL statement per kind of child, whatever the page size.

These are pure reads keyed by ids that came from objects the caller was already
allowed to see (an agent of the caller's list, a worker of one of its agents), so
they carry no ownership rule of their own. Never key them by an id a client typed:
top-level look-ups go through the services, which filter by owner.

Rows come from ``.values()``: plain dicts, never Tortoise models (a Model defines
``__await__`` and graphql-core would make a task per item).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from strawberry.dataloader import DataLoader

from gpugo.models import Agent, Gpu, Worker, WorkerConnection
from gpugo.services import views
from gpugo.services.views import gpu_order

Row = dict[str, Any]

AGENT_COLUMNS = (
    "id",
    "hostname",
    "display_name",
    "tags",
    "os",
    "arch",
    "network_ips",
    "config_version",
    "fetched_config_version",
    "config_fetched_at",
    "last_seen_at",
    "shut_down_at",
    "created_at",
)
GPU_COLUMNS = ("agent_id", *views.GPU_COLUMNS)
WORKER_COLUMNS = views.WORKER_COLUMNS
CONNECTION_COLUMNS = ("worker_id", "client_ip", "client_port", "client_pid", "connected_at")
# An IN list is split into batches of this many ids (the databases bound bind parameters).
MAX_BATCH = 1000


def _gpu_order(row: Row) -> tuple[bool, int, str]:
    # The one GPU order of the agents service (REST's agent detail uses it too).
    return gpu_order(row["gpu_index"], row["gpu_id"])


def _grouped(
    keys: Sequence[str], rows: list[Row], key: str, order: Callable[[Row], Any] | None = None
) -> list[list[Row]]:
    groups: dict[str, list[Row]] = defaultdict(list)
    for row in sorted(rows, key=order) if order else rows:
        groups[row[key]].append(row)
    return [groups.get(k, []) for k in keys]


async def load_gpus_by_agent(agent_ids: list[str]) -> list[list[Row]]:
    rows = await Gpu.filter(agent_id__in=agent_ids).values(*GPU_COLUMNS)
    return _grouped(agent_ids, rows, "agent_id", _gpu_order)


async def load_workers_by_agent(agent_ids: list[str]) -> list[list[Row]]:
    rows = (
        await Worker.filter(agent_id__in=agent_ids)
        .order_by("created_at", "id")
        .values(*WORKER_COLUMNS)
    )
    return _grouped(agent_ids, rows, "agent_id")


async def load_connections_by_worker(worker_ids: list[str]) -> list[list[Row]]:
    rows = (
        await WorkerConnection.filter(worker_id__in=worker_ids)
        .order_by("connected_at", "id")
        .values(*CONNECTION_COLUMNS)
    )
    return _grouped(worker_ids, rows, "worker_id")


async def load_agents(agent_ids: list[str]) -> list[Row | None]:
    rows = await Agent.filter(id__in=agent_ids).values(*AGENT_COLUMNS)
    by_id = {row["id"]: row for row in rows}
    return [by_id.get(k) for k in agent_ids]


async def load_workers(worker_ids: list[str]) -> list[Row | None]:
    rows = await Worker.filter(id__in=worker_ids).values(*WORKER_COLUMNS)
    by_id = {row["id"]: row for row in rows}
    return [by_id.get(k) for k in worker_ids]


def _loader(fn: Callable[[list[str]], Awaitable[Sequence[Any]]]) -> Callable[[], DataLoader]:
    return lambda: DataLoader(load_fn=fn, max_batch_size=MAX_BATCH)


@dataclass(eq=False)
class Loaders:
    """Created per request (caches must not outlive it: another user, fresher data)."""

    gpus_by_agent: DataLoader[str, list[Row]] = field(default_factory=_loader(load_gpus_by_agent))
    workers_by_agent: DataLoader[str, list[Row]] = field(
        default_factory=_loader(load_workers_by_agent)
    )
    connections_by_worker: DataLoader[str, list[Row]] = field(
        default_factory=_loader(load_connections_by_worker)
    )
    agent: DataLoader[str, Row | None] = field(default_factory=_loader(load_agents))
    worker: DataLoader[str, Row | None] = field(default_factory=_loader(load_workers))
