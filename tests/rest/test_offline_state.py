"""What an offline agent last reported is shown as last known, never as current."""

from __future__ import annotations

from datetime import timedelta

from gpugo import clock
from tests.support import go_time, moment, register_agent


async def _running_with_a_client(user, gpus: int = 2):
    agent = await register_agent(user, gpus=gpus)
    detail = (await user.get(f"/api/v1/agents/{agent.agent_id}")).json()
    worker_id = detail["workers"][0]["worker_id"]
    response = await agent.report(
        {
            "timestamp": go_time(moment()),
            "gpus": [{"gpu_id": "GPU-0", "used_by_worker": worker_id}],
            "workers": [
                {
                    "worker_id": worker_id,
                    "status": "running",
                    "gpu_ids": ["GPU-0"],
                    "connections": [
                        {"client_ip": "10.0.0.9", "connected_at": go_time(moment())},
                    ],
                }
            ],
        }
    )
    assert response.status_code == 200, response.text
    return agent, worker_id


async def test_an_online_agent_state_is_current(api):
    user = await api.user()
    agent, worker_id = await _running_with_a_client(user)
    detail = (await user.get(f"/api/v1/agents/{agent.agent_id}")).json()
    assert detail["status"] == "online"
    [worker] = detail["workers"]
    assert (worker["agent_online"], worker["last_known_at"]) == (True, None)
    assert worker["live_connection_count"] == 1
    gpu = detail["gpus"][0]
    assert (gpu["used_by_worker"], gpu["agent_online"], gpu["last_known_at"]) == (
        worker_id,
        True,
        None,
    )
    one = (await user.get(f"/api/v1/workers/{worker_id}")).json()
    assert (one["agent_online"], one["last_known_at"], one["live_connection_count"]) == (
        True,
        None,
        1,
    )


async def test_a_silent_agent_state_is_last_known(api):
    user = await api.user()
    agent, worker_id = await _running_with_a_client(user)
    seen = (await user.get(f"/api/v1/agents/{agent.agent_id}")).json()["last_seen_at"]
    clock.advance(timedelta(seconds=api.app.state.ctx.settings.agent_offline_seconds + 1))

    detail = (await user.get(f"/api/v1/agents/{agent.agent_id}")).json()
    assert detail["status"] == "offline"
    [worker] = detail["workers"]
    # The status and the connections stay what the agent last said, marked as such.
    assert worker["status"] == "running"
    assert (worker["agent_online"], worker["last_known_at"]) == (False, seen)
    assert len(worker["connections"]) == 1
    assert worker["live_connection_count"] == 0
    gpu = detail["gpus"][0]
    assert (gpu["used_by_worker"], gpu["agent_online"], gpu["last_known_at"]) == (
        worker_id,
        False,
        seen,
    )

    one = (await user.get(f"/api/v1/workers/{worker_id}")).json()
    assert (one["agent_online"], one["last_known_at"], one["live_connection_count"]) == (
        False,
        seen,
        0,
    )
    [listed] = (await user.get("/api/v1/workers")).json()["workers"]
    assert (listed["agent_online"], listed["last_known_at"]) == (False, seen)
    [item] = (await user.get("/api/v1/agents")).json()["agents"]
    assert (item["workers"][0]["agent_online"], item["gpus"][0]["last_known_at"]) == (False, seen)

    # A report brings it back: current again.
    response = await agent.report({"timestamp": go_time(moment()), "gpus": [], "workers": []})
    assert response.status_code == 200
    one = (await user.get(f"/api/v1/workers/{worker_id}")).json()
    assert (one["agent_online"], one["last_known_at"], one["live_connection_count"]) == (
        True,
        None,
        1,
    )


async def test_a_shut_down_agent_state_is_last_known(api):
    user = await api.user()
    agent, worker_id = await _running_with_a_client(user)
    response = await agent.report(
        {"timestamp": go_time(moment()), "gpus": [], "workers": [], "event": "shutdown"}
    )
    assert response.status_code == 200
    one = (await user.get(f"/api/v1/workers/{worker_id}")).json()
    assert one["agent_online"] is False
    assert one["last_known_at"] is not None
    assert one["live_connection_count"] == 0


async def test_a_pending_agent_has_nothing_known(api):
    user = await api.user()
    agent = await register_agent(user)
    [worker] = (await user.get("/api/v1/workers")).json()["workers"]
    assert (worker["status"], worker["agent_online"], worker["last_known_at"]) == (
        "pending",
        False,
        None,
    )
    gpu = (await user.get(f"/api/v1/agents/{agent.agent_id}")).json()["gpus"][0]
    assert (gpu["agent_online"], gpu["last_known_at"]) == (False, None)
