"""The shipped CLI on a registered host sends the host's agent secret to the user
endpoints: it acts for the owner within that one agent, and nowhere else."""

from __future__ import annotations

from typing import Any

from gpugo.models import Agent as AgentRow
from gpugo.models import Share, Worker
from tests.schema.support import error, post
from tests.support import assert_error, register_agent


async def scene(api) -> dict[str, Any]:
    """One user, two agents with a worker and a share each."""
    user = await api.user(plan="personal")
    here = await register_agent(user, gpus=2, hostname="here")
    there = await register_agent(user, gpus=2, hostname="there")
    ids: dict[str, Any] = {"user": user, "here": here, "there": there}
    for name, agent in (("here", here), ("there", there)):
        worker_id = (await Worker.get(agent_id=agent.agent_id)).id
        share = await user.post(
            "/api/v1/shares", json={"worker_id": worker_id, "connection_ip": "10.0.0.1"}
        )
        ids[f"{name}_worker"] = worker_id
        ids[f"{name}_share"] = share.json()["share_id"]
    return ids


async def test_an_agent_secret_reads_its_own_agent_and_nothing_else(api, client):
    s = await scene(api)
    auth = s["here"].auth
    listed = (await client.get("/api/v1/agents", headers=auth)).json()["agents"]
    assert [a["agent_id"] for a in listed] == [s["here"].agent_id]
    assert (await client.get(f"/api/v1/agents/{s['here'].agent_id}", headers=auth)).is_success
    there = await client.get(f"/api/v1/agents/{s['there'].agent_id}", headers=auth)
    assert_error(there, 404, "not_found")
    workers = (await client.get("/api/v1/workers", headers=auth)).json()["workers"]
    assert [w["worker_id"] for w in workers] == [s["here_worker"]]
    # A filter naming the other agent finds nothing rather than leaking it.
    query = f"/api/v1/workers?agent_id={s['there'].agent_id}"
    assert (await client.get(query, headers=auth)).json() == {"workers": []}
    for_there = await client.get(f"/api/v1/workers/{s['there_worker']}", headers=auth)
    assert_error(for_there, 404, "not_found")
    shares = (await client.get("/api/v1/shares", headers=auth)).json()["shares"]
    assert [x["share_id"] for x in shares] == [s["here_share"]]


async def test_an_agent_secret_changes_its_own_workers_and_shares_only(api, client):
    s = await scene(api)
    auth = s["here"].auth
    body = {"agent_id": s["here"].agent_id, "name": "w", "gpu_ids": ["GPU-1"], "listen_port": 9100}
    created = await client.post("/api/v1/workers", json=body, headers=auth)
    assert created.status_code == 201, created.text
    elsewhere = {**body, "agent_id": s["there"].agent_id}
    assert_error(
        await client.post("/api/v1/workers", json=elsewhere, headers=auth), 404, "not_found"
    )
    patched = await client.patch(
        f"/api/v1/workers/{created.json()['worker_id']}", json={"name": "w2"}, headers=auth
    )
    assert patched.json()["name"] == "w2"
    other = f"/api/v1/workers/{s['there_worker']}"
    assert_error(await client.patch(other, json={"name": "x"}, headers=auth), 404, "not_found")
    assert_error(await client.delete(other, headers=auth), 404, "not_found")
    share = await client.post(
        "/api/v1/shares",
        json={"worker_id": s["here_worker"], "connection_ip": "10.0.0.2"},
        headers=auth,
    )
    assert share.status_code == 201, share.text
    foreign = {"worker_id": s["there_worker"], "connection_ip": "10.0.0.2"}
    assert_error(await client.post("/api/v1/shares", json=foreign, headers=auth), 404, "not_found")
    there_share = f"/api/v1/shares/{s['there_share']}"
    assert_error(await client.delete(there_share, headers=auth), 404, "not_found")
    # Nothing of the other agent moved.
    assert await Worker.filter(agent_id=s["there"].agent_id).count() == 1
    assert await Share.filter(id=s["there_share"]).exists()
    assert (await Worker.get(id=s["there_worker"])).name == "default"
    # Its own: deleted, and the agent may delete itself (uninstall).
    assert (await client.delete(f"/api/v1/shares/{s['here_share']}", headers=auth)).is_success
    assert (await client.delete(f"/api/v1/agents/{s['here'].agent_id}", headers=auth)).is_success
    assert await AgentRow.filter(id=s["there"].agent_id).exists()


async def test_an_agent_secret_is_no_key_to_the_account(api, client):
    s = await scene(api)
    auth = s["here"].auth
    for method, url, body in (
        ("GET", "/api/v1/auth/me", None),
        ("POST", "/api/v1/auth/logout", None),
        ("GET", "/api/v1/tokens/pat", None),
        ("POST", "/api/v1/tokens/pat", {"expires_in_days": 30}),
        ("DELETE", "/api/v1/tokens/pat", None),
        ("POST", "/api/v1/tokens/generate", {"type": "agent_install"}),
    ):
        response = await client.request(method, url, json=body, headers=auth)
        assert_error(response, 403, "forbidden")
    # GraphQL never takes an agent secret.
    response = await post(client, "{ agents(first: 5) { totalCount } }", headers=auth)
    error(response, "unauthorized")
    # Once the agent is deleted its secret is nobody.
    await s["user"].delete(f"/api/v1/agents/{s['here'].agent_id}")
    assert_error(await client.get("/api/v1/agents", headers=auth), 401, "unauthorized")
    assert_error(await client.get("/api/v1/auth/me", headers=auth), 401, "unauthorized")
