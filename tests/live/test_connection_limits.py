"""`gpugo serve` and its open files: the soft limit raised to the hard one at start, and
WebSockets refused with 1013 near the limit while HTTP keeps answering (real processes)."""

from __future__ import annotations

import asyncio
import re
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from gpugo.schema.view import AT_CAPACITY, websocket_limit
from gpugo.serving import FILE_HEADROOM
from tests.live.remote import ServerProcess

TIMEOUT = 60


def open_files_limit(pid: int) -> tuple[int, int]:
    limits = Path(f"/proc/{pid}/limits").read_text()
    soft, hard = re.search(r"Max open files\s+(\d+)\s+(\d+)", limits).groups()  # type: ignore[union-attr]
    return int(soft), int(hard)


def server(tmp_path: Path, open_files: tuple[int, int]) -> ServerProcess:
    env = {"GPUGO_DATA_DIR": str(tmp_path / "data"), "GPUGO_LOG_LEVEL": "INFO"}
    return ServerProcess(tmp_path, env, open_files=open_files)


async def test_serve_raises_its_soft_open_file_limit_to_the_hard_limit(tmp_path):
    process = server(tmp_path, (512, 4096))
    process.start()
    try:
        async with asyncio.timeout(TIMEOUT):
            await process.wait_ready()
        assert process.process is not None
        assert open_files_limit(process.process.pid) == (4096, 4096)
        assert "open-file limit 4096 for at most 1000 connections" in process.output()
    finally:
        process.stop()


async def test_near_the_limit_websockets_are_refused_with_1013_and_http_answers(tmp_path):
    # A hard limit of 320 files leaves room for 64 connections (GPUGO_MAX_CONNECTIONS is
    # 1000): the cap is lowered, with a warning, and WebSockets keep clear of HTTP's share.
    hard = 320
    cap = hard - FILE_HEADROOM
    sockets = websocket_limit(cap)
    process = server(tmp_path, (hard, hard))
    process.start()
    try:
        async with asyncio.timeout(TIMEOUT), AsyncExitStack() as stack:
            await process.wait_ready()
            assert f"at most {cap} connections" in process.output()
            url = process.url.replace("http://", "ws://") + "/graphql"
            for _ in range(sockets):
                await stack.enter_async_context(
                    websockets.connect(url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
                )
            async with websockets.connect(
                url,
                subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
            ) as refused:
                with pytest.raises(ConnectionClosed) as closed:
                    await refused.recv()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == AT_CAPACITY
            assert "WebSocket limit" in closed.value.rcvd.reason
            # HTTP still has its share: health checks and agents' reports get through.
            async with httpx.AsyncClient(base_url=process.url) as http:
                answers = await asyncio.gather(*(http.get("/healthz") for _ in range(8)))
            assert [a.status_code for a in answers] == [200] * 8
        assert "WebSockets refused at the limit" in process.output()
    finally:
        process.stop()
