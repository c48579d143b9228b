"""Clients that go away take everything of theirs with them: tasks and bus subscriptions."""

from __future__ import annotations

import asyncio
import contextlib
import time

import httpx
import pytest

from gpugo.settings import Settings
from tests.live.scenarios import LIGHT_AGENT_EVENTS
from tests.live.support import graphql_ws, sse
from tests.support import register_agent

STREAMS = 200
SOCKETS = 10
SUBSCRIPTIONS_PER_SOCKET = 3


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # One agent and one user hold every stream here: the caps (tests/live/test_stream_caps.py)
    # are raised so that all of them stay open to be counted.
    return settings.replace(agent_event_streams=STREAMS, graphql_websockets_per_user=SOCKETS)


async def settle(check, within: float) -> bool:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def test_dropped_streams_and_subscriptions_leak_no_task(app, api, live_server):
    bus = app.state.ctx.events
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    pat = await user.create_pat()
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    async with asyncio.timeout(90), httpx.AsyncClient(limits=limits, timeout=30) as http:
        await asyncio.sleep(0.2)
        baseline_tasks, baseline_subscribers = len(asyncio.all_tasks()), bus.subscriber_count

        async with contextlib.AsyncExitStack() as stack:
            streams = await asyncio.gather(
                *(
                    stack.enter_async_context(sse(http, live_server, agent.agent_id, agent.secret))
                    for _ in range(STREAMS)
                )
            )
            assert await asyncio.gather(*(s.next_config() for s in streams)) == [1] * STREAMS
            sockets = [
                await stack.enter_async_context(
                    graphql_ws(live_server, init={"authorization": f"Bearer {pat}"})
                )
                for _ in range(SOCKETS)
            ]
            for socket in sockets:
                for _ in range(SUBSCRIPTIONS_PER_SOCKET):
                    await socket.subscribe(LIGHT_AGENT_EVENTS)
            # The identical subscriptions of one user share one run, and so one bus
            # subscription (schema/fanout.py).
            expected = baseline_subscribers + STREAMS + 1
            assert await settle(lambda: bus.subscriber_count == expected, 10), bus.subscriber_count
            peak_tasks = len(asyncio.all_tasks())
            # Half the sockets vanish without a close handshake, as a killed browser would.
            for socket in sockets[: SOCKETS // 2]:
                socket.ws.transport.abort()
            # Leaving the stack drops every SSE response and closes the other sockets.

        released = await settle(
            lambda: (
                len(asyncio.all_tasks()) <= baseline_tasks
                and bus.subscriber_count == baseline_subscribers
            ),
            within=5,
        )
        numbers = (
            f"tasks: {baseline_tasks} before, {peak_tasks} with {STREAMS} streams and "
            f"{SOCKETS}x{SUBSCRIPTIONS_PER_SOCKET} subscriptions, {len(asyncio.all_tasks())} "
            f"after; bus subscribers: {baseline_subscribers} before, {expected} open, "
            f"{bus.subscriber_count} after"
        )
        print(numbers)
        assert released, numbers
