"""Live streams per credential: an agent's event streams and a user's GraphQL
WebSockets are capped, and a new one ends the oldest; over real sockets."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from gpugo.schema.view import SUPERSEDED
from gpugo.settings import Settings
from tests.live.support import graphql_ws, sse
from tests.support import register_agent

TIMEOUT = 20
STREAMS = 2  # the cap in these tests
AGENT_EVENTS = "subscription { agentEvents { kind agentId } }"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.replace(agent_event_streams=STREAMS, graphql_websockets_per_user=STREAMS)


async def add_worker(user, agent, port: int) -> None:
    response = await user.post(
        "/api/v1/workers",
        json={
            "agent_id": agent.agent_id,
            "name": f"w{port}",
            "gpu_ids": ["GPU-0"],
            "listen_port": port,
        },
    )
    assert response.status_code == 201, response.text


async def next_frame(stream, within: float = 3.0) -> str:
    """The next frame that is not a keep-alive: a config version, or the end."""
    while True:
        kind, data = await stream.next(within)
        if kind != "keep-alive":
            return "end" if kind == "end" else f"config {data['config_version']}"


async def test_a_new_event_stream_ends_the_agents_oldest(api, live_server):
    user = await api.user(plan="personal")
    agent = await register_agent(user, gpus=1)
    other = await register_agent(user, gpus=1, hostname="other")
    limits = httpx.Limits(max_connections=10)
    async with (
        asyncio.timeout(TIMEOUT),
        httpx.AsyncClient(limits=limits) as http,
        AsyncExitStack() as streams,
    ):
        opened = []
        for _ in range(STREAMS):
            stream = await streams.enter_async_context(
                sse(http, live_server, agent.agent_id, agent.secret)
            )
            assert await next_frame(stream) == "config 1"
            opened.append(stream)
        elsewhere = await streams.enter_async_context(
            sse(http, live_server, other.agent_id, other.secret)
        )
        assert await next_frame(elsewhere) == "config 1"
        # One more for the same agent: it gets through, and the oldest one ends.
        newest = await streams.enter_async_context(
            sse(http, live_server, agent.agent_id, agent.secret)
        )
        assert await next_frame(newest) == "config 1"
        assert await next_frame(opened[0]) == "end"
        # The others stay and follow changes; another agent's stream was not touched.
        await add_worker(user, agent, 9100)
        assert await next_frame(opened[1]) == "config 2"
        assert await next_frame(newest) == "config 2"
        await add_worker(user, other, 9100)
        assert await next_frame(elsewhere) == "config 2"


async def test_a_new_websocket_closes_the_users_oldest(api, live_server):
    user = await api.user()
    bystander = await api.user()
    pat = await user.create_pat()
    other_pat = await bystander.create_pat()
    init = {"authorization": f"Bearer {pat}"}
    async with asyncio.timeout(TIMEOUT), AsyncExitStack() as stack:
        sockets = [
            await stack.enter_async_context(graphql_ws(live_server, init=init))
            for _ in range(STREAMS)
        ]
        theirs = await stack.enter_async_context(
            graphql_ws(live_server, init={"authorization": f"Bearer {other_pat}"})
        )
        for socket in sockets:
            await socket.subscribe(AGENT_EVENTS)
        # One more for the same user: acknowledged, and the oldest is closed with 4008.
        newest = await stack.enter_async_context(graphql_ws(live_server, init=init))
        with pytest.raises(ConnectionClosed) as closed:
            await sockets[0].receive(within=3)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == SUPERSEDED
        # The others still deliver.
        op = await newest.subscribe(AGENT_EVENTS)
        await asyncio.sleep(0.2)  # the subscription is registered server-side
        agent = await register_agent(user, gpus=1)
        for socket, op_id in ((sockets[1], "1"), (newest, op)):
            message = await socket.receive()
            assert message["type"] == "next" and message["id"] == op_id, message
            assert message["payload"]["data"]["agentEvents"]["agentId"] == agent.agent_id
        # Another user's connection was never at risk.
        await theirs.send({"type": "ping"})
        assert (await theirs.receive())["type"] == "pong"
