"""The live scenarios run against one process (in-process bus) and two (PostgreSQL NOTIFY).

Mutations go to ``a``, streams are held on ``b`` (the same server in the one-process
runs), so the only path between them is the event bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import httpx

from tests.live.remote import RemoteAgent, RemoteUser, report
from tests.live.support import GraphQLSocket, graphql_ws, sse

LIGHT_AGENT_EVENTS = """
subscription ($agentId: ID) { agentEvents(agentId: $agentId) { kind agentId workerId } }"""


async def next_event(socket: GraphQLSocket, op_id: str, within: float = 5.0) -> dict[str, Any]:
    message = await socket.receive(within)
    assert message["type"] == "next" and message["id"] == op_id, message
    assert "errors" not in message["payload"], message
    return message["payload"]["data"]["agentEvents"]


async def until_kind(socket: GraphQLSocket, op_id: str, kind: str, within: float) -> None:
    deadline = time.monotonic() + within
    while (await next_event(socket, op_id, max(deadline - time.monotonic(), 0.01)))["kind"] != kind:
        pass


async def subscribe_live(
    socket: GraphQLSocket, user: RemoteUser, agent: RemoteAgent, *, warm_up: Any
) -> str:
    """Subscribe to the agent's events and return once one has come through.

    A subscribe has no acknowledgement: ``warm_up()`` causes an event; seeing it proves
    the subscription is registered (and the bus path works).
    """
    op_id = await socket.subscribe(LIGHT_AGENT_EVENTS, {"agentId": agent.agent_id})
    for _ in range(50):
        await warm_up()
        try:
            await next_event(socket, op_id, within=0.3)
        except TimeoutError:
            continue
        # Drain what the warm-ups caused before the subscription caught one.
        while True:
            try:
                await next_event(socket, op_id, within=0.3)
            except TimeoutError:
                return op_id
    raise AssertionError("the subscription never received an event")


async def worker_reaches_streams(
    http: httpx.AsyncClient, *, a: str, b: str, user: RemoteUser, agent: RemoteAgent
) -> tuple[float, float]:
    """Seconds from a worker POST through ``a`` to its SSE frame and its GraphQL event on ``b``."""

    detail = await http.get(f"{a}/api/v1/agents/{agent.agent_id}", headers=user.auth)
    default_worker = detail.json()["workers"][0]["worker_id"]
    pids = iter(range(1000, 2000))

    async def new_pid() -> None:
        # Each report gives the worker another pid: an agent event, never a config change.
        worker = {"worker_id": default_worker, "status": "running", "gpu_ids": ["GPU-0"]}
        await report(http, a, agent, workers=[{**worker, "pid": next(pids)}])

    async with (
        sse(http, b, agent.agent_id, agent.secret) as stream,
        graphql_ws(b, init={"authorization": f"Bearer {user.pat}"}) as socket,
    ):
        version = await stream.next_config()
        op_id = await subscribe_live(socket, user, agent, warm_up=new_pid)
        started = time.perf_counter()

        async def sse_arrival() -> float:
            assert await stream.next_config(within=5) == version + 1
            return time.perf_counter() - started

        async def graphql_arrival() -> float:
            event = await next_event(socket, op_id, within=5)
            assert (event["kind"], event["agentId"]) == ("WORKER_CREATED", agent.agent_id)
            return time.perf_counter() - started

        waiting = asyncio.gather(sse_arrival(), graphql_arrival())
        created = await user.create_worker(a, agent, 9100)
        assert created.status_code == 201, created.text
        sse_seconds, graphql_seconds = await waiting
        return sse_seconds, graphql_seconds


async def silence_is_announced_once(
    http: httpx.AsyncClient,
    *,
    servers: list[str],
    user: RemoteUser,
    agent: RemoteAgent,
    offline_seconds: float,
) -> list[list[str]]:
    """Agent events seen on each server from just after the agent's first report until
    well after it fell silent (the threshold, then time for several sweeps of each)."""
    async with contextlib.AsyncExitStack() as stack:
        init = {"authorization": f"Bearer {user.pat}"}
        sockets = [await stack.enter_async_context(graphql_ws(url, init=init)) for url in servers]
        ops = [
            await socket.subscribe(LIGHT_AGENT_EVENTS, {"agentId": agent.agent_id})
            for socket in sockets
        ]
        await asyncio.sleep(0.3)  # subscriptions registered
        await report(http, servers[0], agent)  # pending -> online: one event everywhere
        for socket, op_id in zip(sockets, ops, strict=True):
            await until_kind(socket, op_id, "ONLINE", within=5)
        # Silence: offline after the threshold, announced by the first sweep past it.
        await asyncio.sleep(offline_seconds + 1.5)
        seen: list[list[str]] = []
        for socket, op_id in zip(sockets, ops, strict=True):
            kinds = []
            while True:
                try:
                    kinds.append((await next_event(socket, op_id, within=0.3))["kind"])
                except TimeoutError:
                    break
            seen.append(kinds)
        return seen
