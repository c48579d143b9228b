"""GET /v1/stream: the push channel the shipped agent listens on, read as its sse.go reads it.

The agent keys its two streams by an ``x-sse-topic`` header (``<agent id>`` and
``<agent id>_vgpu_restart``), sends no credential and counts only ``data:`` lines:
a frame with data means "pull config", and on the restart topic each data line is a
worker id.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx

from tests.live.conftest import KEEPALIVE_SECONDS
from tests.live.test_agent_push import add_worker
from tests.schema.support import as_cookie, as_pat, error
from tests.support import assert_error, register_agent

TIMEOUT = 20
RESTART = "mutation ($id: ID!) { restartWorker(id: $id) }"


@dataclass
class TopicStream:
    """One stream read line by line, as internal/agent/sse.go does."""

    response: httpx.Response
    _lines: AsyncIterator[str] = field(init=False)

    def __post_init__(self) -> None:
        self._lines = self.response.aiter_lines()

    async def frame(self, within: float = 5.0) -> tuple[str, list[str]]:
        """("data", its data lines), ("keep-alive", []) for a comment, or ("end", [])."""
        data: list[str] = []
        async with asyncio.timeout(within):
            async for line in self._lines:
                if line == "":
                    if data:
                        return "data", data
                    continue
                if line.startswith(":"):
                    return "keep-alive", []
                assert line.startswith("data:"), f"a line the agent would not read: {line!r}"
                data.append(line.removeprefix("data:").strip())
            return "end", []

    async def data(self, within: float = 5.0) -> list[str]:
        """The next data frame, skipping keep-alives."""
        deadline = time.monotonic() + within
        while True:
            kind, data = await self.frame(max(deadline - time.monotonic(), 0.001))
            if kind == "data":
                return data
            assert kind == "keep-alive", kind

    async def quiet(self, seconds: float) -> None:
        """Nothing but keep-alives for ``seconds``."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            with contextlib.suppress(TimeoutError):
                kind, data = await self.frame(left)
                assert kind == "keep-alive", (kind, data)


@contextlib.asynccontextmanager
async def topic_stream(
    http: httpx.AsyncClient, base_url: str, topic: str
) -> AsyncIterator[TopicStream]:
    headers = {"x-sse-topic": topic, "Accept": "text/event-stream", "Cache-Control": "no-cache"}
    async with http.stream("GET", f"{base_url}/v1/stream", headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        stream = TopicStream(response)
        # The first comment says the subscription exists: nothing after it is missed.
        assert await stream.frame() == ("keep-alive", [])
        yield stream


async def test_a_config_change_reaches_the_agents_topic_within_a_second(api, live_server):
    user = await api.user(plan="personal")
    agent = await register_agent(user, gpus=1)
    other = await register_agent(user, gpus=1, hostname="other")
    async with (
        asyncio.timeout(TIMEOUT),
        httpx.AsyncClient() as http,
        topic_stream(http, live_server, agent.agent_id) as stream,
    ):
        headers = stream.response.headers
        assert headers["content-type"].startswith("text/event-stream")
        assert headers["cache-control"] == "no-store"
        assert headers["x-accel-buffering"] == "no"
        worker_id = await add_worker(user, agent, 9100)
        # Within a second of the change being answered, and nothing but the new
        # version: the stream has no credential to check.
        assert await stream.data(within=1) == ["2"]
        assert (await user.patch(f"/api/v1/workers/{worker_id}", json={"name": "x"})).is_success
        assert await stream.data(within=1) == ["3"]
        # Another agent's change, a heartbeat and a config pull are not this topic's news.
        await add_worker(user, other, 9100)
        await agent.config()
        await stream.quiet(KEEPALIVE_SECONDS * 2.5)


async def test_a_topic_that_names_no_agent_looks_like_a_quiet_one(api, live_server):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    unknown = "agt_" + "x" * 22
    async with asyncio.timeout(TIMEOUT), httpx.AsyncClient() as http:
        async with (
            topic_stream(http, live_server, agent.agent_id) as known,
            topic_stream(http, live_server, unknown) as nobody,
            topic_stream(http, live_server, unknown + "_vgpu_restart") as nobody_restarts,
        ):
            assert dict(known.response.headers) | {"x-request-id": ""} == dict(
                nobody.response.headers
            ) | {"x-request-id": ""}
            for stream in (known, nobody, nobody_restarts):
                assert await stream.frame(within=KEEPALIVE_SECONDS * 3) == ("keep-alive", [])
        too_long = "agt_" + "x" * 29 + "_vgpu_restart"
        for topic in (None, "", "agt_ x", "a" * 33, "agt_1/../2", too_long):
            headers = {} if topic is None else {"x-sse-topic": topic}
            response = await http.get(f"{live_server}/v1/stream", headers=headers)
            assert_error(response, 400, "validation_error")


async def test_restart_worker_reaches_the_restart_topic_with_the_worker_id(api, live_server):
    user = await api.user(plan="personal")
    agent = await register_agent(user, gpus=1)
    worker_id = await add_worker(user, agent, 9100)
    async with (
        asyncio.timeout(TIMEOUT),
        httpx.AsyncClient() as http,
        topic_stream(http, live_server, f"{agent.agent_id}_vgpu_restart") as restarts,
        topic_stream(http, live_server, agent.agent_id) as config,
    ):
        for gql in (await as_pat(user), await as_cookie(user)):
            assert await gql.data(RESTART, {"id": worker_id}) == {"restartWorker": True}
            # Within a second of the mutation's answer (its own time is not the channel's).
            assert await restarts.data(within=1) == [worker_id]
        # A restart is not a configuration change.
        await config.quiet(KEEPALIVE_SECONDS * 1.5)


async def test_only_the_owner_restarts_an_enabled_worker(api, live_server):
    owner = await api.user(plan="personal")
    agent = await register_agent(owner, gpus=1)
    worker_id = await add_worker(owner, agent, 9100)
    stranger = await as_pat(await api.user())
    async with (
        asyncio.timeout(TIMEOUT),
        httpx.AsyncClient() as http,
        topic_stream(http, live_server, f"{agent.agent_id}_vgpu_restart") as restarts,
    ):
        error(await stranger(RESTART, {"id": worker_id}), "not_found")
        error(await stranger(RESTART, {"id": "wkr_unknown"}), "not_found")
        owner_gql = await as_pat(owner)
        disabled = await owner.patch(f"/api/v1/workers/{worker_id}", json={"enabled": False})
        assert disabled.is_success
        error(await owner_gql(RESTART, {"id": worker_id}), "conflict")
        # An agent secret is no user.
        response = await agent.http.post(
            "/graphql", json={"query": RESTART, "variables": {"id": worker_id}}, headers=agent.auth
        )
        error(response, "unauthorized")
        await restarts.quiet(KEEPALIVE_SECONDS * 1.5)


async def test_streams_per_topic_are_bounded_the_oldest_closed_first(app, api, live_server):
    per_topic = app.state.ctx.settings.push_streams_per_topic
    user = await api.user(plan="personal")
    agent = await register_agent(user, gpus=1)
    topic = agent.agent_id
    streams = app.state.ctx.topic_streams
    async with asyncio.timeout(TIMEOUT), httpx.AsyncClient() as http:
        async with contextlib.AsyncExitStack() as stack:
            opened = [
                await stack.enter_async_context(topic_stream(http, live_server, topic))
                for _ in range(per_topic)
            ]
            assert streams.count(topic) == per_topic
            newest = await stack.enter_async_context(topic_stream(http, live_server, topic))
            # The oldest ends (the agent would reconnect); the others stay and are told.
            kind, _ = await opened[0].frame()
            while kind == "keep-alive":
                kind, _ = await opened[0].frame()
            assert kind == "end"
            assert streams.count(topic) == per_topic
            await add_worker(user, agent, 9100)
            for stream in [*opened[1:], newest]:
                assert await stream.data(within=1) == ["2"]
            # Another topic has its own bound.
            async with topic_stream(http, live_server, f"{topic}_vgpu_restart"):
                assert streams.count(f"{topic}_vgpu_restart") == 1
        # Closed streams leave nothing behind (the server notices the disconnect).
        for _ in range(250):
            if not streams.count(topic):
                break
            await asyncio.sleep(0.02)
        assert streams.count(topic) == 0


async def test_a_deleted_agents_topic_stream_ends(api, live_server):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    async with (
        asyncio.timeout(TIMEOUT),
        httpx.AsyncClient() as http,
        topic_stream(http, live_server, agent.agent_id) as stream,
    ):
        assert (await user.delete(f"/api/v1/agents/{agent.agent_id}")).status_code == 200
        kind, _ = await stream.frame()
        while kind == "keep-alive":
            kind, _ = await stream.frame()
        assert kind == "end"
