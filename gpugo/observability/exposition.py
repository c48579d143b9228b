"""What one scrape of ``GET /metrics`` answers.

Counters, histograms and process gauges come from prometheus_client (summed over the
processes in multiprocess mode). The fleet's numbers (agents by state) are the
database's, read at scrape time by whichever process answers, so they are never summed.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterable, Iterator
from datetime import timedelta

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q

from gpugo import clock
from gpugo.auth.resolve import bearer_token
from gpugo.context import ServerContext
from gpugo.errors import NotFound, Unauthorized
from gpugo.models import Agent
from gpugo.observability import metrics

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def check_token(ctx: ServerContext, authorization: str | None) -> None:
    """404 while GPUGO_METRICS_TOKEN is unset (no such page); 401 without that bearer."""
    expected = ctx.settings.metrics_token
    if not expected:
        raise NotFound("Not found.")
    token = bearer_token(authorization)
    if token is None or not hmac.compare_digest(token.encode(), expected.encode()):
        raise Unauthorized("GET /metrics needs 'Authorization: Bearer <GPUGO_METRICS_TOKEN>'.")


class _Families:
    """Metric families computed beforehand, served by a collector of their own."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        yield from self._families


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


async def agents_by_state(ctx: ServerContext) -> dict[str, int]:
    """pending / online / offline, the rule of services.agents.agent_state, counted."""
    cutoff = clock.now() - timedelta(seconds=ctx.settings.agent_offline_seconds)
    total = await Agent.all().count()
    pending = await Agent.filter(last_seen_at__isnull=True).count()
    offline = await Agent.filter(
        Q(shut_down_at__isnull=False) | Q(last_seen_at__lt=cutoff), last_seen_at__isnull=False
    ).count()
    return {"pending": pending, "online": total - pending - offline, "offline": offline}


def sample_process(ctx: ServerContext) -> None:
    """This process's gauges that are read rather than counted (its database pools)."""
    for name, client in (("default", _default_client()), ("metrics", ctx.metrics_db)):
        pool = getattr(client, "_pool", None) if client is not None else None
        if pool is None:
            continue  # SQLite (one connection), or a pool not opened yet
        size = pool.get_size()
        metrics.db_pool_size.labels(name).set(size)
        metrics.db_pool_in_use.labels(name).set(size - pool.get_idle_size())


def _default_client() -> BaseDBAsyncClient | None:
    try:
        return connections.get("default")
    except Exception:
        return None


async def render(ctx: ServerContext) -> bytes:
    sample_process(ctx)
    agents = GaugeMetricFamily(
        "gpugo_agents", "Registered agents by state (the whole fleet).", labels=["state"]
    )
    for state, count in (await agents_by_state(ctx)).items():
        agents.add_metric([state], count)
    fleet = CollectorRegistry(auto_describe=False)
    fleet.register(_Families([agents]))
    return generate_latest(_registry()) + generate_latest(fleet)
