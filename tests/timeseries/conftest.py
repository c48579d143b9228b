"""A real VictoriaMetrics per test, and a second app on the suite's database whose metric
points go to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette

from gpugo.app import create_app
from gpugo.settings import Settings
from tests import engines
from tests.timeseries.support import OPERATOR_TOKEN


@pytest.fixture
def engine_latency_offset() -> str | None:
    """The engine's ``-search.latencyOffset``; a module overrides this fixture to run the
    engine with its production default (None)."""
    return "0s"


@pytest.fixture
def engine(tmp_path: Path, engine_latency_offset: str | None) -> Iterator[engines.Engine]:
    vm = engines.victoria_metrics(tmp_path, latency_offset=engine_latency_offset)
    vm.start()
    try:
        yield vm
    finally:
        vm.stop()


@pytest.fixture
async def vm_app(
    app: Starlette, settings: Settings, engine: engines.Engine
) -> AsyncIterator[Starlette]:
    """A second app on the same database whose metric points go to the engine.

    Tortoise is the first app's (its lifespan registered it for the process, and a second
    registration would close it on exit); this one starts and stops the rest of what its
    lifespan would: the event bus, the metrics ingest (its sink the engine) and the buffers."""
    application = create_app(
        settings.replace(
            victoria_metrics_url=engine.url,
            timeseries_flush_seconds=0.1,
            timeseries_backoff_max_seconds=0.4,
            timeseries_timeout_seconds=2.0,
            metrics_token=OPERATOR_TOKEN,
        ),
        auto_migrate=False,
    )
    ctx = application.state.ctx
    await ctx.events.start()
    ctx.metrics.start()
    try:
        yield application
    finally:
        await ctx.metrics.stop()
        await ctx.last_seen.stop()
        await ctx.audit.stop()
        await ctx.events.stop()
        await ctx.http.aclose()
        await ctx.metrics_db.close()
