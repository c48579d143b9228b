"""Live deliveries let the process's HTTP requests be answered first, for a bounded time
(gpugo/requests_first.py): a burst of agents' reports is not held up by the frames
their own events make."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

from gpugo.requests_first import MAX_WAIT, RequestsFirst
from tests.live.support import graphql_ws
from tests.live.test_fanout import EVENTS, add_worker, bearer, next_event, nothing_within
from tests.support import Agent, register_agent


async def test_a_turn_is_immediate_when_no_request_waits():
    waiting = RequestsFirst(max_wait=5)
    started = time.monotonic()
    await waiting.turn()
    assert time.monotonic() - started < 1


async def test_a_turn_comes_when_the_last_waiting_request_is_answered():
    waiting = RequestsFirst(max_wait=5)
    waiting.arrived()
    waiting.arrived()
    turn = asyncio.create_task(waiting.turn())
    await asyncio.sleep(0.05)
    waiting.answered()
    await asyncio.sleep(0.05)
    assert not turn.done()  # one is still waiting for its answer
    waiting.answered()
    await asyncio.wait_for(turn, 1)


async def test_a_turn_never_waits_longer_than_its_bound():
    waiting = RequestsFirst(max_wait=0.1)
    waiting.arrived()  # never answered
    started = time.monotonic()
    await asyncio.wait_for(waiting.turn(), 2)
    assert 0.09 <= time.monotonic() - started < 2


async def hold_a_request(url: str, agent: Agent) -> asyncio.StreamWriter:
    """An agent's status report whose body has not all arrived: a request still to be
    answered."""
    address = urlsplit(url)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    writer.write(
        f"POST /api/v1/agents/{agent.agent_id}/status HTTP/1.1\r\nHost: {address.netloc}\r\n"
        f"Authorization: Bearer {agent.secret}\r\nContent-Type: application/json\r\n"
        "Content-Length: 100\r\n\r\n{".encode()
    )
    await writer.drain()
    writer.reader = reader  # type: ignore[attr-defined]
    return writer


@asynccontextmanager
async def a_tab_and_a_held_request(api, live_server) -> AsyncIterator[tuple]:
    """A user's tab on agentEvents, and one of their agent's reports not yet answered."""
    user = await api.user(plan="personal")
    agent = await register_agent(user, gpus=1)
    pat = await user.create_pat()
    async with asyncio.timeout(20), graphql_ws(live_server, init=bearer(pat)) as tab:
        op = await tab.subscribe(EVENTS)
        await asyncio.sleep(0.3)  # the subscription is registered server-side
        held = await hold_a_request(live_server, agent)
        try:
            yield user, agent, tab, op, held
        finally:
            held.close()


async def test_an_event_waits_while_a_request_is_being_answered(api, app, live_server):
    # A bound far above the test's waits: the event can only come from the answer.
    app.state.ctx.requests_first.max_wait = 30
    async with a_tab_and_a_held_request(api, live_server) as (user, agent, tab, op, held):
        await add_worker(user, agent, 9100)  # answered; its events wait for the held one
        await nothing_within(tab, 1.0)
        # The held request answered (a bad body: 400), the events go out at once.
        held.write(b"}" * 99)
        await held.drain()
        status_line = await held.reader.readline()  # type: ignore[attr-defined]
        assert status_line.startswith(b"HTTP/1.1 400"), status_line
        answered_at = time.monotonic()
        created = await next_event(tab, op, within=5)
        assert created["kind"] == "WORKER_CREATED"
        assert time.monotonic() - answered_at < MAX_WAIT


async def test_a_request_that_is_never_answered_delays_events_by_the_bound_only(api, live_server):
    async with a_tab_and_a_held_request(api, live_server) as (user, agent, tab, op, _):
        added_at = time.monotonic()
        await add_worker(user, agent, 9100)
        created = await next_event(tab, op, within=5)
        assert created["kind"] == "WORKER_CREATED"
        assert MAX_WAIT / 2 <= time.monotonic() - added_at < 5
        assert (await next_event(tab, op, within=5))["kind"] == "CONFIG_CHANGED"
