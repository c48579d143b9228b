"""Live updates over real sockets: the test app behind an in-process uvicorn.

The app keeps the suite's public URL (http://testserver), so the ``api`` helpers
(ASGI, with that Origin) set things up while streams run over TCP.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
import uvicorn
from starlette.applications import Starlette

from gpugo.settings import Settings

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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
async def live_server(app: Starlette) -> AsyncIterator[str]:
    """The app behind a real uvicorn on a free TCP port, on this test's event loop."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            lifespan="off",
            log_level="warning",
            # Open streams are cut at once when the test ends.
            timeout_graceful_shutdown=1,
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # raises why it could not start
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
