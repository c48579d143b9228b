"""Live updates over real sockets: the test app behind an in-process uvicorn.

The app keeps the suite's public URL (http://testserver), so the ``api`` helpers
(ASGI, with that Origin) set things up while streams run over TCP.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette

from gpugo.settings import Settings
from tests.live.support import serve

SWEEP_SECONDS = 0.2
KEEPALIVE_SECONDS = 0.5


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Sweeps often (tests move the clock instead of waiting) and keeps idle streams chatty.
    return settings.replace(
        offline_sweep_seconds=SWEEP_SECONDS,
        agent_events_keepalive_seconds=KEEPALIVE_SECONDS,
        # Live metrics reach subscribers when their batch is written.
        metrics_flush_seconds=SWEEP_SECONDS,
    )


@pytest.fixture
async def live_server(app: Starlette) -> AsyncIterator[str]:
    """The app behind a real uvicorn on a free TCP port, on this test's event loop."""
    async with serve(app) as url:
        yield url
