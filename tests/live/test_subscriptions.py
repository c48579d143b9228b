"""GraphQL subscriptions over graphql-transport-ws on /graphql, against a real uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from gpugo import clock
from gpugo.auth.tokens import TokenKind, new_token
from gpugo.schema import context as graphql_context
from tests.live.support import graphql_ws
from tests.sql_counter import count_sql
from tests.support import (
    PUBLIC_URL,
    assert_error,
    go_time,
    gpu_infos,
    moment,
    out_time,
    register_agent,
)

TIMEOUT = 20
# Reports carry the server's now, as an agent with a correct clock sends them.
NOW = out_time(moment())

AGENT_EVENTS = """
subscription ($agentId: ID) {
  agentEvents(agentId: $agentId) {
    kind agentId workerId changed
    agent { id status configVersion fetchedConfigVersion workers { id name status } }
  }
}"""
INSTALL_TOKEN = """
subscription ($id: ID!) {
  installToken(id: $id) { token { id status } agentId agent { id hostname status } }
}"""
REFUSALS = """
subscription ($id: ID!) {
  installTokenRefusals(id: $id) { tokenId code message hostname }
}"""
METRICS = """
subscription ($agentId: ID!) {
  agentMetrics(agentId: $agentId) {
    agentId recordedAt cpuUsage memoryUsedMb gpus { gpuId utilization temperature }
  }
}"""


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def next_data(socket, op_id: str, within: float = 5.0) -> dict:
    message = await socket.receive(within)
    assert message["type"] == "next" and message["id"] == op_id, message
    assert "errors" not in message["payload"], message
    return message["payload"]["data"]


async def error_code(socket, op_id: str) -> str:
    message = await socket.receive()
    assert message["id"] == op_id, message
    if message["type"] == "error":
        return message["payload"][0]["extensions"]["code"]
    assert message["type"] == "next", message
    return message["payload"]["errors"][0]["extensions"]["code"]


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


async def test_agent_events_carry_the_kind_the_ids_and_the_fresh_agent(api, live_server):
    user = await api.user(plan="personal")
    pat = await user.create_pat()
    async with asyncio.timeout(TIMEOUT), graphql_ws(live_server, init=bearer(pat)) as socket:
        op = await socket.subscribe(AGENT_EVENTS)
        await asyncio.sleep(0.2)  # the subscription is registered server-side
        # Registered after subscribing: its event comes first, however late it arrives.
        agent = await register_agent(user, gpus=1)
        registered = (await next_data(socket, op))["agentEvents"]
        assert (registered["kind"], registered["agentId"]) == ("REGISTERED", agent.agent_id)
        worker_id = await add_worker(user, agent, 9100)
        created = (await next_data(socket, op, within=1))["agentEvents"]
        assert created["kind"] == "WORKER_CREATED"
        assert created["agentId"] == agent.agent_id and created["workerId"] == worker_id
        assert created["agent"]["configVersion"] == 2
        assert worker_id in [w["id"] for w in created["agent"]["workers"]]
        config = (await next_data(socket, op))["agentEvents"]
        assert (config["kind"], config["workerId"]) == ("CONFIG_CHANGED", None)

        await agent.report({"timestamp": NOW, "gpus": [], "workers": []})
        online = (await next_data(socket, op))["agentEvents"]
        assert (online["kind"], online["agent"]["status"]) == ("ONLINE", "ONLINE")
        await agent.config()
        fetched = (await next_data(socket, op))["agentEvents"]
        assert fetched["kind"] == "UPDATED" and fetched["changed"] == ["config_fetched"]
        assert fetched["agent"]["fetchedConfigVersion"] == 2

        # Silence: the sweeper announces it (the test moves the clock, not the wall).
        clock.advance(timedelta(seconds=api.app.state.ctx.settings.agent_offline_seconds + 1))
        offline = (await next_data(socket, op, within=2))["agentEvents"]
        assert (offline["kind"], offline["agent"]["status"]) == ("OFFLINE", "OFFLINE")

        await user.delete(f"/api/v1/agents/{agent.agent_id}")
        deleted = (await next_data(socket, op))["agentEvents"]
        assert (deleted["kind"], deleted["agent"]) == ("DELETED", None)


async def test_one_agents_events_need_that_agent_to_be_yours(api, live_server):
    user = await api.user(plan="personal")
    other_user = await api.user()
    agent = await register_agent(user, gpus=1)
    second = await register_agent(user, gpus=1, hostname="second")
    foreign = await register_agent(other_user, gpus=1, hostname="foreign")
    pat = await user.create_pat()
    async with asyncio.timeout(TIMEOUT), graphql_ws(live_server, init=bearer(pat)) as socket:
        refused = await socket.subscribe(AGENT_EVENTS, {"agentId": foreign.agent_id})
        assert await error_code(socket, refused) == "not_found"
        op = await socket.subscribe(AGENT_EVENTS, {"agentId": agent.agent_id})
        await asyncio.sleep(0.2)
        await add_worker(user, second, 9100)  # the user's other agent: not this stream
        await add_worker(user, agent, 9100)
        event = (await next_data(socket, op))["agentEvents"]
        assert (event["kind"], event["agentId"]) == ("WORKER_CREATED", agent.agent_id)
        await socket.complete(op)


async def test_install_token_fires_with_the_new_agent(api, live_server):
    user = await api.user()
    other_user = await api.user()
    pat = await user.create_pat()
    generated = (await user.post("/api/v1/tokens/generate", json={"type": "agent_install"})).json()
    foreign = (
        await other_user.post("/api/v1/tokens/generate", json={"type": "agent_install"})
    ).json()
    async with asyncio.timeout(TIMEOUT), graphql_ws(live_server, init=bearer(pat)) as socket:
        for token_id in (foreign["token_id"], "tok_doesnotexist"):
            refused = await socket.subscribe(INSTALL_TOKEN, {"id": token_id})
            assert await error_code(socket, refused) == "not_found"
        op = await socket.subscribe(INSTALL_TOKEN, {"id": generated["token_id"]})
        await asyncio.sleep(0.2)
        response = await user.http.post(
            "/api/v1/agents/register",
            json={
                "hostname": "fresh-rig",
                "os": "linux",
                "arch": "amd64",
                "gpus": [{"gpu_id": "GPU-0", "vendor": "nvidia", "model": "m", "vram_mb": 1}],
            },
            headers={"Authorization": f"Bearer {generated['token']}"},
        )
        assert response.status_code == 201, response.text
        outcome = (await next_data(socket, op, within=1))["installToken"]
        agent_id = response.json()["agent_id"]
        assert outcome["token"] == {"id": generated["token_id"], "status": "USED"}
        assert outcome["agentId"] == agent_id
        assert outcome["agent"] == {"id": agent_id, "hostname": "fresh-rig", "status": "PENDING"}
        assert (await socket.receive()) == {"id": op, "type": "complete"}
        # Subscribing after the fact answers at once.
        late = await socket.subscribe(INSTALL_TOKEN, {"id": generated["token_id"]})
        assert (await next_data(socket, late))["installToken"]["agentId"] == agent_id


async def test_every_refusal_of_ones_install_token_is_told_with_its_reason(api, live_server):
    user = await api.user()  # free: 2 GPUs
    other_user = await api.user()
    pat = await user.create_pat()
    generated = (await user.post("/api/v1/tokens/generate", json={"type": "agent_install"})).json()
    foreign = (
        await other_user.post("/api/v1/tokens/generate", json={"type": "agent_install"})
    ).json()
    agent_http = user.client_for_agent()

    async def register(token: str, hostname: str, gpus: list[dict], **change):
        body = {"hostname": hostname, "os": "linux", "arch": "amd64", "gpus": gpus, **change}
        return await agent_http.post(
            "/api/v1/agents/register", json=body, headers={"Authorization": f"Bearer {token}"}
        )

    duplicates = gpu_infos(2)
    duplicates[1]["gpu_id"] = "GPU-0"
    async with asyncio.timeout(TIMEOUT), graphql_ws(live_server, init=bearer(pat)) as socket:
        op = await socket.subscribe(REFUSALS, {"id": generated["token_id"]})
        await asyncio.sleep(0.2)

        async def refusal() -> dict:
            return (await next_data(socket, op, within=2))["installTokenRefusals"]

        # A caller without the token speaks to nobody: an unknown token is refused as a
        # credential before its body is looked at; another user's token is theirs to hear.
        unknown = await register(new_token(TokenKind.INSTALL), "dup-box", duplicates)
        assert_error(unknown, 401, "unauthorized")
        assert_error(
            await register(foreign["token"], "dup-box", duplicates), 400, "validation_error"
        )

        # The body is rejected before registering: the owner hears why, in words.
        rejected = await register(generated["token"], "dup-box", duplicates)
        assert_error(rejected, 400, "validation_error")
        assert await refusal() == {
            "tokenId": generated["token_id"],
            "code": "validation_error",
            "message": "The agent sent an invalid registration: gpus: Each gpu_id may appear "
            "only once.",
            "hostname": "dup-box",
        }
        bad_id = [{**gpu_infos(1)[0], "gpu_id": "GPU 0"}]
        assert (await register(generated["token"], "odd-box", bad_id)).status_code == 400
        told = await refusal()
        assert (told["hostname"], told["code"]) == ("odd-box", "validation_error")
        assert told["message"].startswith("The agent sent an invalid registration: gpus[0].gpu_id")
        missing = await agent_http.post(
            "/api/v1/agents/register",
            json={"gpus": "none"},
            headers={"Authorization": f"Bearer {generated['token']}"},
        )
        assert_error(missing, 400, "validation_error")
        told = await refusal()
        assert told["hostname"] == ""
        for field in ("hostname: This field is required.", "gpus: "):
            assert field in told["message"], told

        # Refused by the plan, as before.
        too_big = await register(generated["token"], "big-box", gpu_infos(4))
        assert_error(too_big, 403, "plan_limit_exceeded")
        told = await refusal()
        assert (told["code"], told["hostname"]) == ("plan_limit_exceeded", "big-box")

        # Used: a bad body with the spent token is refused as spent, and told as such.
        assert (await register(generated["token"], "fits", gpu_infos(1))).status_code == 201
        spent = await register(generated["token"], "late-box", duplicates)
        assert_error(spent, 401, "token_used")
        told = await refusal()
        assert (told["code"], told["hostname"]) == ("token_used", "late-box")
        await socket.complete(op)
    await agent_http.aclose()


async def test_agent_metrics_streams_reports_on_team_and_pro_only(api, live_server):
    free = await api.user()
    team = await api.user(plan="team")
    free_agent = await register_agent(free, gpus=1)
    agent = await register_agent(team, gpus=1)
    async with asyncio.timeout(TIMEOUT):
        async with graphql_ws(live_server, init=bearer(await free.create_pat())) as socket:
            refused = await socket.subscribe(METRICS, {"agentId": free_agent.agent_id})
            assert await error_code(socket, refused) == "plan_feature_unavailable"
        async with graphql_ws(live_server, init=bearer(await team.create_pat())) as socket:
            refused = await socket.subscribe(METRICS, {"agentId": free_agent.agent_id})
            assert await error_code(socket, refused) == "not_found"
            op = await socket.subscribe(METRICS, {"agentId": agent.agent_id})
            await asyncio.sleep(0.2)
            measured = moment()
            response = await agent.http.post(
                f"/api/v1/agents/{agent.agent_id}/metrics",
                headers=agent.auth,
                json={
                    "timestamp": go_time(measured, offset_hours=8, nanos=456789),
                    "system": {"cpu_usage": 12.5, "memory_used_mb": 1000, "memory_total_mb": 64000},
                    "gpus": [
                        {
                            "gpu_id": "GPU-0",
                            "utilization": 50,
                            "vram_used_mb": 100,
                            "vram_total_mb": 24564,
                            "temperature": 61.6,
                            "power_usage_w": 200.5,
                        }
                    ],
                },
            )
            assert response.status_code == 200, response.text
            report = (await next_data(socket, op, within=1))["agentMetrics"]
    assert report["agentId"] == agent.agent_id
    assert report["recordedAt"] == out_time(measured)
    assert (report["cpuUsage"], report["memoryUsedMb"]) == (12.5, 1000)
    assert report["gpus"] == [{"gpuId": "GPU-0", "utilization": 50.0, "temperature": 62}]


async def test_the_session_cookie_works_from_this_servers_pages_only(api, live_server):
    user = await api.user()
    cookie = f"gpugo_session={user.http.cookies['gpugo_session']}"
    async with asyncio.timeout(TIMEOUT):
        async with graphql_ws(live_server, headers={"Cookie": cookie, "Origin": PUBLIC_URL}):
            pass
        # Another site's page: refused at the handshake (before any GraphQL).
        with pytest.raises(InvalidStatus) as refused:
            async with graphql_ws(
                live_server, headers={"Cookie": cookie, "Origin": "https://evil.example"}
            ):
                pass
        assert refused.value.response.status_code == 403
        # A cookie without any Origin is not a page of ours either: closed with 4403.
        async with graphql_ws(live_server, headers={"Cookie": cookie}, expect_ack=False) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await ws.receive()
            assert closed.value.rcvd.code == 4403


@pytest.mark.parametrize("credential", ["none", "agent", "install", "garbage", "not-a-string"])
async def test_agents_install_tokens_and_nothing_are_refused(api, live_server, credential):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    init = {
        "none": {},
        "agent": bearer(agent.secret),
        "install": bearer(await user.install_token()),
        "garbage": {"authorization": "Basic abc"},
        "not-a-string": {"authorization": 42},
    }[credential]
    async with (
        asyncio.timeout(TIMEOUT),
        graphql_ws(live_server, init=init, expect_ack=False) as socket,
    ):
        with pytest.raises(ConnectionClosed) as closed:
            await socket.receive()
        assert closed.value.rcvd.code == 4403


async def test_a_revoked_pat_ends_the_flow(api, live_server, monkeypatch):
    user = await api.user(plan="personal")
    agent = await register_agent(user, gpus=1)
    pat = await user.create_pat()
    monkeypatch.setattr(graphql_context, "WEBSOCKET_PRINCIPAL_SECONDS", 0.0)
    async with asyncio.timeout(TIMEOUT), graphql_ws(live_server, init=bearer(pat)) as socket:
        op = await socket.subscribe(AGENT_EVENTS)
        await asyncio.sleep(0.2)
        await add_worker(user, agent, 9100)
        assert (await next_data(socket, op))["agentEvents"]["kind"] == "WORKER_CREATED"
        assert (await next_data(socket, op))["agentEvents"]["kind"] == "CONFIG_CHANGED"
        assert (await user.delete("/api/v1/tokens/pat")).status_code == 200
        await add_worker(user, agent, 9101)
        assert await error_code(socket, op) == "unauthorized"


async def test_sockets_on_one_pat_share_each_credential_recheck(api, live_server, monkeypatch):
    user = await api.user(plan="personal")
    agent = await register_agent(user, gpus=1)
    pat = await user.create_pat()
    monkeypatch.setattr(graphql_context, "WEBSOCKET_PRINCIPAL_SECONDS", 0.4)
    async with asyncio.timeout(TIMEOUT), contextlib.AsyncExitStack() as stack:
        sockets = [
            await stack.enter_async_context(graphql_ws(live_server, init=bearer(pat)))
            for _ in range(8)
        ]
        ops = [await socket.subscribe(AGENT_EVENTS) for socket in sockets]
        # Every socket's principal is older than its jittered limit (at most 0.5 s).
        await asyncio.sleep(0.8)
        with count_sql() as sql:
            await add_worker(user, agent, 9100)
            for socket, op in zip(sockets, ops, strict=True):
                assert (await next_data(socket, op))["agentEvents"]["kind"] == "WORKER_CREATED"
        # One look-up (and at most one last_used_at write) for all eight, not eight.
        pat_reads = [s for s in sql if "personal_access_tokens" in s and s.startswith("SELECT")]
        assert len(pat_reads) == 1, pat_reads


async def test_a_recheck_answer_is_shared_while_fresh(api, live_server, monkeypatch):
    user = await api.user(plan="personal")
    first = await register_agent(user, gpus=1, hostname="first")
    second = await register_agent(user, gpus=1, hostname="second")
    pat = await user.create_pat()
    monkeypatch.setattr(graphql_context, "WEBSOCKET_PRINCIPAL_SECONDS", 1.0)
    async with (
        asyncio.timeout(TIMEOUT),
        graphql_ws(live_server, init=bearer(pat)) as one,
        graphql_ws(live_server, init=bearer(pat)) as other,
    ):
        op_one = await one.subscribe(AGENT_EVENTS, {"agentId": first.agent_id})
        op_other = await other.subscribe(AGENT_EVENTS, {"agentId": second.agent_id})
        await asyncio.sleep(1.4)  # both older than their jittered limit (at most 1.25 s)
        with count_sql() as sql:
            # One socket re-checks; the other, a moment later, takes the same answer.
            await add_worker(user, first, 9100)
            assert (await next_data(one, op_one))["agentEvents"]["kind"] == "WORKER_CREATED"
            await add_worker(user, second, 9100)
            assert (await next_data(other, op_other))["agentEvents"]["kind"] == "WORKER_CREATED"
        pat_reads = [s for s in sql if "personal_access_tokens" in s and s.startswith("SELECT")]
        assert len(pat_reads) == 1, pat_reads


async def test_subscriptions_per_connection_are_limited(api, live_server):
    user = await api.user()
    pat = await user.create_pat()
    async with asyncio.timeout(TIMEOUT), graphql_ws(live_server, init=bearer(pat)) as socket:
        for _ in range(20):
            await socket.subscribe(AGENT_EVENTS)
        extra = await socket.subscribe(AGENT_EVENTS)
        message = await socket.receive()
        assert (message["id"], message["type"]) == (extra, "error")
        assert "limit" in message["payload"][0]["message"]


@pytest.mark.parametrize("bad", ["a" * 100_000, "agt_x\n2026-01-01 INFO forged", "agt_\u00e9"])
async def test_an_id_that_cannot_name_a_row_is_not_found(api, live_server, bad):
    user = await api.user(plan="pro")
    pat = await user.create_pat()
    for query, variables in (
        (AGENT_EVENTS, {"agentId": bad}),
        (INSTALL_TOKEN, {"id": bad}),
        (METRICS, {"agentId": bad}),
    ):
        async with asyncio.timeout(TIMEOUT), graphql_ws(live_server, init=bearer(pat)) as socket:
            op = await socket.subscribe(query, variables)
            assert await error_code(socket, op) == "not_found"


async def test_a_frame_nested_too_deeply_closes_the_connection_as_a_bad_message(api, live_server):
    user = await api.user()
    pat = await user.create_pat()
    async with asyncio.timeout(TIMEOUT), graphql_ws(live_server, init=bearer(pat)) as socket:
        await socket.ws.send("[" * 100_000)
        with pytest.raises(ConnectionClosed) as closed:
            await socket.receive()
        assert closed.value.rcvd.code == 4400
