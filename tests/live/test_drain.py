"""SIGTERM with live streams open: `gpugo serve` ends them and stops at once, not at the
graceful timeout; each client sees its stream end (and would reconnect elsewhere)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
from websockets.exceptions import ConnectionClosed

from tests.live.remote import ServerProcess, new_user
from tests.live.scenarios import LIGHT_AGENT_EVENTS
from tests.live.support import graphql_ws, sse


async def test_a_draining_server_ends_its_streams_and_stops_quickly(tmp_path: Path):
    server = ServerProcess(tmp_path, {"GPUGO_DATA_DIR": str(tmp_path / "data")})
    server.start()
    try:
        async with asyncio.timeout(60), httpx.AsyncClient(timeout=30) as http:
            await server.wait_ready()
            user = await new_user(http, server.url, server.url)
            agent = await user.register_agent(server.url)
            init = {"authorization": f"Bearer {user.pat}"}
            async with (
                sse(http, server.url, agent.agent_id, agent.secret) as stream,
                graphql_ws(server.url, init=init) as socket,
            ):
                assert await stream.next_config() == 1
                op_id = await socket.subscribe(LIGHT_AGENT_EVENTS)
                await asyncio.sleep(0.3)
                started = time.monotonic()
                await asyncio.to_thread(server.stop)
                stopped_in = time.monotonic() - started
                assert await stream.next(within=2) == ("end", None)
                # The subscription completes, or uvicorn's close (1012 "service restart")
                # overtakes that message.
                try:
                    assert await socket.receive(2) == {"id": op_id, "type": "complete"}
                except ConnectionClosed as closed:
                    assert closed.rcvd is not None and closed.rcvd.code == 1012
        # The graceful timeout is 10 s; nothing was left to wait for.
        assert stopped_in < 5, stopped_in
        assert server.process is not None and server.process.returncode is not None
    finally:
        server.stop()
