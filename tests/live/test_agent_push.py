"""GET /api/v1/agents/{id}/events: the agent's config_version pushed over Server-Sent Events."""

from __future__ import annotations

import asyncio

import httpx

from tests.live.support import sse
from tests.support import assert_error, moment, out_time, register_agent

TIMEOUT = 20


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


async def test_the_stream_starts_with_the_current_version_and_follows_changes(api, live_server):
    user = await api.user(plan="personal")
    agent = await register_agent(user, gpus=1)
    async with asyncio.timeout(TIMEOUT), httpx.AsyncClient() as http:
        async with sse(http, live_server, agent.agent_id, agent.secret) as stream:
            assert stream.response.headers["content-type"].startswith("text/event-stream")
            assert stream.response.headers["cache-control"] == "no-store"
            assert await stream.next_config() == 1
            worker_id = await add_worker(user, agent, 9100)
            assert await stream.next_config(within=1) == 2
            await user.patch(f"/api/v1/workers/{worker_id}", json={"enabled": False})
            assert await stream.next_config(within=1) == 3
            await user.delete(f"/api/v1/workers/{worker_id}")
            assert await stream.next_config(within=1) == 4
            # Idle: a keep-alive comment, not a repeated version.
            assert await stream.next(within=3) == ("keep-alive", None)
        # A reconnect gets the current version first, whatever it missed.
        await add_worker(user, agent, 9101)
        async with sse(http, live_server, agent.agent_id, agent.secret) as stream:
            assert await stream.next_config() == 5


async def test_other_activity_of_the_agent_is_not_pushed(api, live_server):
    user = await api.user(plan="team")
    agent = await register_agent(user, gpus=1)
    other = await register_agent(user, gpus=1, hostname="other")
    async with (
        asyncio.timeout(TIMEOUT),
        httpx.AsyncClient() as http,
        sse(http, live_server, agent.agent_id, agent.secret) as stream,
    ):
        assert await stream.next_config() == 1
        await agent.report({"timestamp": out_time(moment()), "gpus": [], "workers": []})
        await agent.config()
        await add_worker(user, other, 9100)  # another agent's config
        assert await stream.next(within=3) == ("keep-alive", None)


async def test_a_deleted_agents_stream_ends(api, live_server):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    async with asyncio.timeout(TIMEOUT), httpx.AsyncClient() as http:
        async with sse(http, live_server, agent.agent_id, agent.secret) as stream:
            assert await stream.next_config() == 1
            assert (await user.delete(f"/api/v1/agents/{agent.agent_id}")).status_code == 200
            kind, _ = await stream.next(within=2)
            while kind == "keep-alive":
                kind, _ = await stream.next(within=2)
            assert kind == "end"
        response = await http.get(
            f"{live_server}/api/v1/agents/{agent.agent_id}/events", headers=agent.auth
        )
        assert_error(response, 401, "unauthorized")


async def test_only_the_agents_own_secret_opens_its_stream(api, client):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    other = await register_agent(user, gpus=1, hostname="other")
    pat = await user.create_pat()
    url = f"/api/v1/agents/{agent.agent_id}/events"
    assert_error(await client.get(url), 401, "unauthorized")
    assert_error(await client.get(url, headers=other.auth), 403, "forbidden")
    for token in (pat, await user.install_token()):
        response = await client.get(url, headers={"Authorization": f"Bearer {token}"})
        assert_error(response, 401, "unauthorized")
    # A user's session is no agent either.
    assert_error(await user.get(url), 401, "unauthorized")


async def test_the_agent_detail_shows_desired_and_fetched_config(api):
    user = await api.user(plan="personal")
    agent = await register_agent(user, gpus=1)
    url = f"/api/v1/agents/{agent.agent_id}"

    async def sync_state() -> tuple[int, int | None, bool, bool]:
        body = (await user.get(url)).json()
        return (
            body["config_version"],
            body["fetched_config_version"],
            body["config_in_sync"],
            body["config_fetched_at"] is not None,
        )

    pat = await user.create_pat()

    async def graphql_state() -> tuple[int, int | None, bool, list[bool]]:
        query = """query ($id: ID!) {
          agent(id: $id) { configVersion fetchedConfigVersion configInSync }
          agents { edges { node { configInSync } } }
        }"""
        response = await user.http.post(
            "/graphql",
            json={"query": query, "variables": {"id": agent.agent_id}},
            headers={"Authorization": f"Bearer {pat}"},
        )
        data = response.json()["data"]
        detail = data["agent"]
        listed = [edge["node"]["configInSync"] for edge in data["agents"]["edges"]]
        return (
            detail["configVersion"],
            detail["fetchedConfigVersion"],
            detail["configInSync"],
            listed,
        )

    assert await sync_state() == (1, None, False, False)
    assert await graphql_state() == (1, None, False, [False])
    await agent.config()
    assert await sync_state() == (1, 1, True, True)
    assert await graphql_state() == (1, 1, True, [True])
    await add_worker(user, agent, 9100)
    assert await sync_state() == (2, 1, False, True)
    assert await graphql_state() == (2, 1, False, [False])
    await agent.config()
    assert await sync_state() == (2, 2, True, True)
