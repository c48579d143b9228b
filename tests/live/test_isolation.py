"""A subscriber only ever receives its own resources' events, with two users busy at once."""

from __future__ import annotations

import asyncio

import httpx

from tests.live.remote import new_user, report
from tests.live.scenarios import LIGHT_AGENT_EVENTS
from tests.live.support import graphql_ws, sse
from tests.support import PUBLIC_URL

ROUNDS = 5


async def test_interleaved_activity_of_two_users_never_crosses(app, live_server):
    bus = app.state.ctx.events
    async with asyncio.timeout(60), httpx.AsyncClient() as http:
        users = [await new_user(http, live_server, PUBLIC_URL) for _ in range(2)]
        agents = [await user.register_agent(live_server) for user in users]
        own_agent = {
            user.user_id: agent.agent_id for user, agent in zip(users, agents, strict=True)
        }
        async with (
            bus.subscribe(user_id=users[0].user_id) as bus_first,
            bus.subscribe(user_id=users[1].user_id) as bus_second,
            graphql_ws(live_server, init={"authorization": f"Bearer {users[0].pat}"}) as first,
            graphql_ws(live_server, init={"authorization": f"Bearer {users[1].pat}"}) as second,
            sse(http, live_server, agents[0].agent_id, agents[0].secret) as stream_first,
            sse(http, live_server, agents[1].agent_id, agents[1].secret) as stream_second,
        ):
            ops = [await socket.subscribe(LIGHT_AGENT_EVENTS) for socket in (first, second)]
            assert await stream_first.next_config() == 1
            assert await stream_second.next_config() == 1
            await asyncio.sleep(0.3)

            # Interleaved: both users act at the same time, round after round.
            async def act(user, agent, round_: int) -> None:
                created = await user.create_worker(live_server, agent, 9100 + round_)
                assert created.status_code in (201, 403), created.text  # free plan: 2 workers
                await report(http, live_server, agent)
                await http.get(
                    f"{live_server}/api/v1/agents/{agent.agent_id}/config", headers=agent.auth
                )

            for round_ in range(ROUNDS):
                await asyncio.gather(
                    *(act(user, agent, round_) for user, agent in zip(users, agents, strict=True))
                )
            # A last change of each user's own marks the end of what each may receive.
            for user, agent in zip(users, agents, strict=True):
                await http.delete(
                    f"{live_server}/api/v1/agents/{agent.agent_id}", headers=user.auth
                )

            for user, socket, op_id in zip(users, (first, second), ops, strict=True):
                while True:
                    message = await socket.receive()
                    assert message["id"] == op_id, message
                    event = message["payload"]["data"]["agentEvents"]
                    assert event["agentId"] == own_agent[user.user_id], event
                    if event["kind"] == "DELETED":
                        break
            for user, subscription in zip(users, (bus_first, bus_second), strict=True):
                while (event := await asyncio.wait_for(subscription.get(), 5)).kind.value != (
                    "agent.deleted"
                ):
                    assert event.user_id == user.user_id, event
                    assert event.agent_id in (own_agent[user.user_id], None), event
            # Each agent stream saw its own versions only (free plan: one more worker each).
            assert await stream_first.next_config() == 2
            assert await stream_second.next_config() == 2
            for stream in (stream_first, stream_second):
                kind, _ = await stream.next()
                while kind == "keep-alive":
                    kind, _ = await stream.next()
                assert kind == "end"
