"""The live scenarios on one process: mutations and streams meet in the in-process bus
(on PostgreSQL, the process hears its own NOTIFY)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from gpugo.settings import Settings
from tests.live.remote import new_user
from tests.live.scenarios import silence_is_announced_once, worker_reaches_streams
from tests.support import PUBLIC_URL

OFFLINE_SECONDS = 2


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Real silence, real sweeper: the threshold is short instead of the clock moved.
    return settings.replace(agent_offline_seconds=OFFLINE_SECONDS)


async def test_a_worker_reaches_the_subscription_and_the_agent_stream_within_a_second(
    live_server,
):
    async with asyncio.timeout(30), httpx.AsyncClient() as http:
        user = await new_user(http, live_server, PUBLIC_URL)
        agent = await user.register_agent(live_server)
        sse_seconds, graphql_seconds = await worker_reaches_streams(
            http, a=live_server, b=live_server, user=user, agent=agent
        )
    assert sse_seconds < 1.0 and graphql_seconds < 1.0, (sse_seconds, graphql_seconds)


async def test_an_agent_gone_silent_is_announced_exactly_once(live_server):
    async with asyncio.timeout(30), httpx.AsyncClient() as http:
        user = await new_user(http, live_server, PUBLIC_URL)
        agent = await user.register_agent(live_server)
        [seen] = await silence_is_announced_once(
            http, servers=[live_server], user=user, agent=agent, offline_seconds=OFFLINE_SECONDS
        )
    assert seen == ["OFFLINE"], seen
