"""Two `gpugo serve` processes on one PostgreSQL database: events cross between them
through LISTEN/NOTIFY, and a silence is announced once however many instances sweep."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from tests.live.remote import ServerProcess, new_user, server_pair
from tests.live.scenarios import silence_is_announced_once, worker_reaches_streams

OFFLINE_SECONDS = 2


@pytest.fixture(scope="module")
def servers(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[ServerProcess]]:
    """Started once for the module (each test waits until both answer)."""
    if not database_url.startswith("postgres"):
        pytest.skip("several instances share a PostgreSQL database")
    pair = server_pair(
        tmp_path_factory.mktemp("instances"),
        database_url,
        {
            "GPUGO_AGENT_OFFLINE_SECONDS": str(OFFLINE_SECONDS),
            "GPUGO_OFFLINE_SWEEP_SECONDS": "0.2",
        },
    )
    try:
        for server in pair:
            server.start()
        yield pair
    finally:
        for server in pair:
            server.stop()


async def test_a_worker_created_on_one_instance_reaches_streams_held_on_the_other(servers):
    a, b = servers
    async with asyncio.timeout(60), httpx.AsyncClient() as http:
        await asyncio.gather(a.wait_ready(), b.wait_ready())
        user = await new_user(http, a.url, a.url)
        agent = await user.register_agent(a.url)
        sse_seconds, graphql_seconds = await worker_reaches_streams(
            http, a=a.url, b=b.url, user=user, agent=agent
        )
    assert sse_seconds < 1.0 and graphql_seconds < 1.0, (sse_seconds, graphql_seconds)


async def test_a_silent_agent_is_announced_once_across_instances(servers):
    a, b = servers
    async with asyncio.timeout(60), httpx.AsyncClient() as http:
        await asyncio.gather(a.wait_ready(), b.wait_ready())
        user = await new_user(http, a.url, a.url)
        agent = await user.register_agent(b.url)
        seen = await silence_is_announced_once(
            http, servers=[a.url, b.url], user=user, agent=agent, offline_seconds=OFFLINE_SECONDS
        )
    # Each instance relays every event once: two announcements would show twice on each.
    assert seen == [["OFFLINE"], ["OFFLINE"]], seen
