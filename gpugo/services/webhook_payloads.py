"""The ``data`` of webhook bodies: the objects an event is about, in their REST field
names, read inside the transaction of the change (a deleted agent is read before it
goes). Fixed when the event happens: every retry sends the same."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from gpugo.models import Agent, Share, Worker
from gpugo.timefmt import iso

_AGENT_COLUMNS = ("id", "hostname", "os", "arch", "last_seen_at", "created_at")
_WORKER_COLUMNS = (
    "id",
    "agent_id",
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
_SHARE_COLUMNS = (
    "id",
    "worker_id",
    "worker__agent_id",
    "connection_ip",
    "hardware_vendor",
    "expires_at",
    "max_uses",
    "used_count",
    "created_at",
)


def _agent(row: Mapping[str, Any], status: str) -> dict[str, Any]:
    return {
        "agent_id": row["id"],
        "hostname": row["hostname"],
        "status": status,
        "os": row["os"],
        "arch": row["arch"],
        "last_seen_at": iso(row["last_seen_at"]),
        "created_at": iso(row["created_at"]),
    }


async def agents(agent_ids: Iterable[str], *, status: str) -> dict[str, dict[str, Any]]:
    """Agent id -> the agent (REST fields, without its GPUs and workers), as ``status``."""
    rows = await Agent.filter(id__in=sorted(set(agent_ids))).values(*_AGENT_COLUMNS)
    return {row["id"]: _agent(row, status) for row in rows}


async def agent(agent_id: str, *, status: str) -> dict[str, Any] | None:
    return (await agents([agent_id], status=status)).get(agent_id)


def _worker(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "worker_id": row["id"],
        "agent_id": row["agent_id"],
        "name": row["name"],
        "gpu_ids": list(row["gpu_ids"] or ()),
        "listen_port": row["listen_port"],
        "enabled": row["enabled"],
        "status": row["status"],
        "is_default": row["is_default"],
        "pid": row["pid"],
        "restarts": row["restarts"],
        "created_at": iso(row["created_at"]),
    }


async def workers(worker_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    rows = await Worker.filter(id__in=sorted(set(worker_ids))).values(*_WORKER_COLUMNS)
    return {row["id"]: _worker(row) for row in rows}


def _share(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "share_id": row["id"],
        "worker_id": row["worker_id"],
        "agent_id": row["worker__agent_id"],
        "connection_ip": row["connection_ip"],
        "hardware_vendor": row["hardware_vendor"],
        "expires_at": iso(row["expires_at"]),
        "max_uses": row["max_uses"],
        "used_count": row["used_count"],
        "created_at": iso(row["created_at"]),
    }


async def shares(share_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    rows = await Share.filter(id__in=sorted(set(share_ids))).values(*_SHARE_COLUMNS)
    return {row["id"]: _share(row) for row in rows}
