"""Identical subscriptions share one execution per event (schema/fanout.py), over real
sockets: the same events for every tab of a user, nothing across users or variables,
errors masked, and each socket's credential still its own."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

from gpugo.schema import context as graphql_context
from gpugo.services import agents as agent_service
from tests.live.support import GraphQLSocket, graphql_ws
from tests.sql_counter import count_sql
from tests.support import PUBLIC_URL, register_agent

TIMEOUT = 20
EVENTS = """
subscription ($agentId: ID) {
  agentEvents(agentId: $agentId) { kind agentId workerId agent { id configVersion } }
}"""


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def add_worker(user, agent, port: int) -> str:
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
    return response.json()["worker_id"]


async def next_message(socket: GraphQLSocket, op: str, within: float = 5.0) -> dict:
    message = await socket.receive(within)
    assert message["id"] == op, message
    return message


async def next_event(socket: GraphQLSocket, op: str, within: float = 5.0) -> dict:
    message = await next_message(socket, op, within)
    assert message["type"] == "next" and "errors" not in message["payload"], message
    return message["payload"]["data"]["agentEvents"]


async def nothing_within(socket: GraphQLSocket, seconds: float) -> None:
    try:
        message = await socket.receive(seconds)
    except TimeoutError:
        return
    raise AssertionError(f"unexpected message: {message}")


async def open_tabs(
    stack: AsyncExitStack, url: str, init: dict, tabs: int
) -> list[tuple[GraphQLSocket, list[str]]]:
    """``tabs`` sockets, each with two identical subscriptions."""
    opened = []
    for _ in range(tabs):
        socket = await stack.enter_async_context(graphql_ws(url, init=init))
        opened.append((socket, [await socket.subscribe(EVENTS) for _ in range(2)]))
    return opened


async def messages_of(socket: GraphQLSocket, ops: list[str], each: int) -> dict[str, list[dict]]:
    """The next ``each`` messages of every operation of the socket (they interleave)."""
    received: dict[str, list[dict]] = {op: [] for op in ops}
    for _ in range(each * len(ops)):
        message = await socket.receive()
        received[message["id"]].append(message)
    return received


def events(messages: list[dict]) -> list[dict]:
    for message in messages:
        assert message["type"] == "next" and "errors" not in message["payload"], message
    return [message["payload"]["data"]["agentEvents"] for message in messages]


def agent_reads(statements: list[str]) -> list[str]:
    """The reads of the ``agent`` field (services.agents.get_agent) among the statements."""
    return [s for s in statements if s.startswith('SELECT "id" "id","hostname" "hostname"')]


async def test_a_users_identical_subscriptions_share_each_execution(api, live_server):
    user = await api.user(plan="personal")
    agent = await register_agent(user, gpus=1)
    pat = await user.create_pat()
    alone_user = await api.user(plan="personal")
    alone_agent = await register_agent(alone_user, gpus=1)
    alone_pat = await alone_user.create_pat()
    async with asyncio.timeout(TIMEOUT), AsyncExitStack() as stack:
        tabs = await open_tabs(stack, live_server, bearer(pat), 3)
        alone = await stack.enter_async_context(graphql_ws(live_server, init=bearer(alone_pat)))
        alone_op = await alone.subscribe(EVENTS)
        await asyncio.sleep(0.3)  # the subscriptions are registered server-side

        with count_sql() as one:
            await add_worker(alone_user, alone_agent, 9100)
            events((await messages_of(alone, [alone_op], 2))[alone_op])
        with count_sql() as six:
            worker_id = await add_worker(user, agent, 9100)
            seen = [
                events(received)
                for socket, ops in tabs
                for received in (await messages_of(socket, ops, 2)).values()
            ]
        assert len(seen) == 6
        # Every subscription got the same events, in the same order.
        assert all(events == seen[0] for events in seen), seen
        created, config = seen[0]
        assert (created["kind"], created["workerId"]) == ("WORKER_CREATED", worker_id)
        assert created["agent"] == {"id": agent.agent_id, "configVersion": 2}
        assert config["kind"] == "CONFIG_CHANGED"
        # Six subscriptions read the agent as often as one: once per event.
        assert len(agent_reads(six)) == len(agent_reads(one)) == 2, (six, one)


async def test_users_with_the_same_document_never_see_each_others_events(api, live_server):
    first = await api.user(plan="personal")
    second = await api.user(plan="personal")
    first_agent = await register_agent(first, gpus=1)
    second_agent = await register_agent(second, gpus=1)
    first_pat, second_pat = await first.create_pat(), await second.create_pat()
    async with asyncio.timeout(TIMEOUT), AsyncExitStack() as stack:
        firsts = await open_tabs(stack, live_server, bearer(first_pat), 2)
        seconds = await open_tabs(stack, live_server, bearer(second_pat), 2)
        await asyncio.sleep(0.3)
        await add_worker(first, first_agent, 9100)
        for socket, ops in firsts:
            for received in (await messages_of(socket, ops, 2)).values():
                assert {e["agentId"] for e in events(received)} == {first_agent.agent_id}
        await nothing_within(seconds[0][0], 0.5)
        await add_worker(second, second_agent, 9100)
        for socket, ops in seconds:
            # The second user's own events come first: nothing of the first user's queued.
            for received in (await messages_of(socket, ops, 2)).values():
                created, config = events(received)
                assert created["kind"] == "WORKER_CREATED"
                assert created["agentId"] == created["agent"]["id"] == second_agent.agent_id
                assert config["kind"] == "CONFIG_CHANGED"


async def test_different_variables_are_executed_separately(api, live_server):
    user = await api.user(plan="personal")
    one = await register_agent(user, gpus=1, hostname="one")
    two = await register_agent(user, gpus=1, hostname="two")
    pat = await user.create_pat()
    async with asyncio.timeout(TIMEOUT), graphql_ws(live_server, init=bearer(pat)) as socket:
        of_one = await socket.subscribe(EVENTS, {"agentId": one.agent_id})
        of_two = await socket.subscribe(EVENTS, {"agentId": two.agent_id})
        of_all = await socket.subscribe(EVENTS)
        await asyncio.sleep(0.3)
        await add_worker(user, one, 9100)
        await add_worker(user, two, 9100)
        received: dict[str, list[tuple[str, str]]] = {of_one: [], of_two: [], of_all: []}
        for _ in range(8):  # two events per worker: 2 for each single agent, 4 for all
            message = await socket.receive()
            assert message["type"] == "next", message
            event = message["payload"]["data"]["agentEvents"]
            received[message["id"]].append((event["agentId"], event["agent"]["id"]))
        assert received[of_one] == [(one.agent_id, one.agent_id)] * 2
        assert received[of_two] == [(two.agent_id, two.agent_id)] * 2
        assert sorted(received[of_all]) == sorted(received[of_one] + received[of_two])


async def test_errors_stay_masked_for_every_subscriber(api, live_server, monkeypatch):
    user = await api.user(plan="personal")
    agent = await register_agent(user, gpus=1)
    pat = await user.create_pat()

    async def broken(**kwargs):
        raise RuntimeError("connection string postgres://secret@db")

    async with asyncio.timeout(TIMEOUT), AsyncExitStack() as stack:
        tabs = await open_tabs(stack, live_server, bearer(pat), 2)
        await asyncio.sleep(0.3)
        monkeypatch.setattr(agent_service, "get_agent", broken)
        await add_worker(user, agent, 9100)
        for socket, ops in tabs:
            for received in (await messages_of(socket, ops, 2)).values():
                message = received[0]  # then CONFIG_CHANGED, whose agent fails alike
                assert message["type"] == "next", message
                payload = message["payload"]
                assert payload["data"]["agentEvents"]["kind"] == "WORKER_CREATED"
                assert payload["data"]["agentEvents"]["agent"] is None
                [error] = payload["errors"]
                assert error["message"] == "Internal server error."
                assert error["extensions"] == {"code": "internal_error"}
                assert "secret" not in str(message)


async def test_a_revoked_credential_ends_its_own_sockets_flow_only(api, live_server, monkeypatch):
    user = await api.user(plan="personal")
    agent = await register_agent(user, gpus=1)
    pat = await user.create_pat()
    cookie = f"gpugo_session={user.http.cookies['gpugo_session']}"
    monkeypatch.setattr(graphql_context, "WEBSOCKET_PRINCIPAL_SECONDS", 0.0)
    async with (
        asyncio.timeout(TIMEOUT),
        graphql_ws(live_server, init=bearer(pat)) as by_pat,
        graphql_ws(live_server, headers={"Cookie": cookie, "Origin": PUBLIC_URL}) as by_cookie,
    ):
        pat_op = await by_pat.subscribe(EVENTS)
        cookie_op = await by_cookie.subscribe(EVENTS)
        await asyncio.sleep(0.3)
        assert (await user.delete("/api/v1/tokens/pat")).status_code == 200
        await add_worker(user, agent, 9100)
        refused = await next_message(by_pat, pat_op)
        assert refused["type"] == "next", refused
        assert refused["payload"]["errors"][0]["extensions"]["code"] == "unauthorized"
        assert (await next_message(by_pat, pat_op))["type"] == "complete"
        # The session's socket shares the run and keeps its flow.
        assert (await next_event(by_cookie, cookie_op))["kind"] == "WORKER_CREATED"
        assert (await next_event(by_cookie, cookie_op))["kind"] == "CONFIG_CHANGED"
        await add_worker(user, agent, 9101)
        assert (await next_event(by_cookie, cookie_op))["kind"] == "WORKER_CREATED"
        await nothing_within(by_pat, 0.3)
