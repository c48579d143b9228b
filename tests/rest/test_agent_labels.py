"""A machine's display name and tags over REST: set, read, validated, owner only."""

from __future__ import annotations

from gpugo.models import Agent
from tests.support import assert_error, register_agent


async def test_set_and_read_labels_the_hostname_stays(api):
    user = await api.user()
    agent = await register_agent(user, hostname="node-17")
    path = f"/api/v1/agents/{agent.agent_id}/labels"
    assert (await user.get(path)).json() == {
        "agent_id": agent.agent_id,
        "hostname": "node-17",
        "display_name": None,
        "tags": [],
    }
    response = await user.patch(
        path, json={"display_name": "  Training   box ", "tags": ["rack-3", "a100", "RACK-3"]}
    )
    assert response.status_code == 200, response.text
    assert response.json()["display_name"] == "Training box"
    assert response.json()["tags"] == ["rack-3", "a100"]
    # Absent keeps; blank removes the name; the spec's agent body is unchanged.
    kept = (await user.patch(path, json={"display_name": ""})).json()
    assert (kept["display_name"], kept["tags"]) == (None, ["rack-3", "a100"])
    detail = (await user.get(f"/api/v1/agents/{agent.agent_id}")).json()
    assert detail["hostname"] == "node-17" and "tags" not in detail
    assert (await Agent.get(id=agent.agent_id)).hostname == "node-17"


async def test_bad_labels_others_machines_and_agent_secrets_are_refused(api):
    user = await api.user()
    agent = await register_agent(user)
    path = f"/api/v1/agents/{agent.agent_id}/labels"
    for body, field in (
        ({"tags": ["has space"]}, "tags"),
        ({"tags": ["x" * 33]}, "tags"),
        ({"tags": [f"t{i}" for i in range(17)]}, "tags"),
        ({"display_name": "x" * 101}, "display_name"),
        ({"display_name": "bell\u0007"}, "display_name"),
        ({"tags": "a100"}, "tags"),
    ):
        error = assert_error(await user.patch(path, json=body), 400, "validation_error")
        assert error["details"][0]["field"].startswith(field), (body, error)
    stranger = await api.user()
    assert_error(await stranger.patch(path, json={"tags": ["mine"]}), 404, "not_found")
    assert_error(await stranger.get(path), 404, "not_found")
    secret = await agent.http.patch(path, json={"tags": ["x"]}, headers=agent.auth)
    assert_error(secret, 403, "forbidden")
    assert (await Agent.get(id=agent.agent_id)).tags is None
