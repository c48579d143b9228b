from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from gpugo import clock
from gpugo.events import EventKind
from gpugo.models import Agent, Gpu, Worker, WorkerConnection
from gpugo.services import status_reports
from tests.sql_counter import count_sql
from tests.support import BAD_GPU_IDS, assert_error, moment, out_time, register_agent

# Reports carry the server's now, as an agent with a correct clock sends them.
NOW = out_time(moment())


def report_body(
    gpus: list[dict[str, Any]] | None = None,
    workers: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {"timestamp": NOW, "gpus": gpus or [], "workers": workers or [], **extra}


async def worker_ids(agent) -> list[str]:
    rows = Worker.filter(agent_id=agent.agent_id).order_by("created_at", "id")
    return await rows.values_list("id", flat=True)


async def add_worker(user, agent, *, port: int, gpu_ids: list[str]) -> str:
    response = await user.post(
        "/api/v1/workers",
        json={
            "agent_id": agent.agent_id,
            "name": f"w{port}",
            "gpu_ids": gpu_ids,
            "listen_port": port,
        },
    )
    assert response.status_code == 201, response.text
    return response.json()["worker_id"]


async def detail(user, agent) -> dict[str, Any]:
    response = await user.get(f"/api/v1/agents/{agent.agent_id}")
    assert response.status_code == 200, response.text
    return response.json()


async def snapshot(agent_id: str) -> dict[str, Any]:
    """Every row a refused or foreign report must leave untouched."""
    return {
        "agent": await Agent.filter(id=agent_id).values(),
        "gpus": await Gpu.filter(agent_id=agent_id).order_by("id").values(),
        "workers": await Worker.filter(agent_id=agent_id).order_by("id").values(),
        "connections": await WorkerConnection.filter(worker__agent_id=agent_id)
        .order_by("id")
        .values(),
    }


async def test_a_report_answers_success_config_version_and_a_license(api):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    response = await agent.report(report_body())
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"success", "config_version", "license", "worker_share_codes"}
    assert body["worker_share_codes"] == {}
    assert body["success"] is True
    assert type(body["config_version"]) is int and body["config_version"] == 1
    assert set(body["license"]) == {"plain", "encrypted"}
    assert body["license"]["plain"].startswith("GPU-0|free|")
    assert isinstance(body["license"]["encrypted"], str)


async def test_a_report_updates_last_seen_and_makes_the_agent_online(api):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    before = await detail(user, agent)
    assert before["status"] == "pending" and before["last_seen_at"] is None
    assert (await agent.report(report_body())).status_code == 200
    after = await detail(user, agent)
    assert after["status"] == "online"
    assert after["last_seen_at"] is not None


async def test_a_steady_heartbeat_is_written_by_the_next_flush(api, app):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    assert (await agent.report(report_body())).status_code == 200
    first = await Agent.get(id=agent.agent_id).values_list("last_seen_at", flat=True)
    clock.advance(timedelta(seconds=30))
    with count_sql() as steady:
        assert (await agent.report(report_body())).status_code == 200
    assert len(steady) == 1, steady  # the read; last_seen_at waits for the flush
    assert await Agent.get(id=agent.agent_id).values_list("last_seen_at", flat=True) == first
    assert await app.state.ctx.last_seen.flush() == 1
    written = await Agent.get(id=agent.agent_id).values_list("last_seen_at", flat=True)
    assert timedelta(seconds=30) <= written - first < timedelta(seconds=40)
    # A flush never moves last_seen_at back, e.g. behind a report written at once since.
    app.state.ctx.last_seen.touch(agent.agent_id, first)
    await app.state.ctx.last_seen.flush()
    assert await Agent.get(id=agent.agent_id).values_list("last_seen_at", flat=True) == written


async def test_a_stale_agent_is_written_at_once(api):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    assert (await agent.report(report_body())).status_code == 200
    # Past half the offline threshold a deferred write could let the agent look offline.
    clock.advance(timedelta(seconds=100))
    first = await Agent.get(id=agent.agent_id).values_list("last_seen_at", flat=True)
    with count_sql() as sql:
        assert (await agent.report(report_body())).status_code == 200
    assert len(sql) == 2, sql
    seen = await Agent.get(id=agent.agent_id).values_list("last_seen_at", flat=True)
    assert seen - first >= timedelta(seconds=100)


async def test_a_deleted_agents_secret_is_refused_at_once(api):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    assert (await agent.report(report_body())).status_code == 200
    response = await user.delete(f"/api/v1/agents/{agent.agent_id}")
    assert response.status_code == 200, response.text
    assert_error(await agent.report(report_body()), 401, "unauthorized")


async def test_worker_status_pid_and_restarts_are_stored(api):
    user = await api.user()
    agent = await register_agent(user, gpus=2)
    [worker_id] = await worker_ids(agent)
    report = {"worker_id": worker_id, "status": "running", "pid": 4242, "gpu_ids": ["GPU-0"]}
    response = await agent.report(report_body(workers=[{**report, "restarts": 3}]))
    assert response.status_code == 200
    [worker] = (await detail(user, agent))["workers"]
    assert (worker["status"], worker["pid"], worker["restarts"]) == ("running", 4242, 3)
    # The real agent omits a zero pid and restart count (Go omitempty): absent means 0.
    stopped = {"worker_id": worker_id, "status": "stopped", "gpu_ids": ["GPU-0"]}
    await agent.report(report_body(workers=[stopped]))
    [worker] = (await detail(user, agent))["workers"]
    assert (worker["status"], worker["pid"], worker["restarts"]) == ("stopped", 0, 0)


async def test_gpu_used_by_worker_is_stored_and_cleared(api):
    user = await api.user()
    agent = await register_agent(user, gpus=2)
    [worker_id] = await worker_ids(agent)
    gpus = [
        {"gpu_id": "GPU-0", "used_by_worker": worker_id},
        {"gpu_id": "GPU-1", "used_by_worker": None},
    ]
    assert (await agent.report(report_body(gpus=gpus))).status_code == 200
    found = {g["gpu_id"]: g["used_by_worker"] for g in (await detail(user, agent))["gpus"]}
    assert found == {"GPU-0": worker_id, "GPU-1": None}
    # GPUs left out keep their worker; a reported null clears it.
    await agent.report(report_body(gpus=[{"gpu_id": "GPU-1", "used_by_worker": worker_id}]))
    found = {g["gpu_id"]: g["used_by_worker"] for g in (await detail(user, agent))["gpus"]}
    assert found == {"GPU-0": worker_id, "GPU-1": worker_id}
    await agent.report(report_body(gpus=[{"gpu_id": "GPU-0", "used_by_worker": None}]))
    found = {g["gpu_id"]: g["used_by_worker"] for g in (await detail(user, agent))["gpus"]}
    assert found == {"GPU-0": None, "GPU-1": worker_id}


async def test_connections_are_replaced_by_a_list_and_kept_without_one(api):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    [worker_id] = await worker_ids(agent)
    worker = {"worker_id": worker_id, "status": "running", "gpu_ids": ["GPU-0"]}
    first = [
        {"client_ip": "10.0.0.5", "connected_at": "2026-11-25T17:30:00Z"},
        {"client_ip": "10.0.0.6", "connected_at": "2026-11-25T17:31:00.250+08:00"},
    ]
    await agent.report(report_body(workers=[{**worker, "connections": first}]))
    [shown] = (await detail(user, agent))["workers"]
    assert [(c["client_ip"], c["connected_at"]) for c in shown["connections"]] == [
        ("10.0.0.6", "2026-11-25T09:31:00.250Z"),
        ("10.0.0.5", "2026-11-25T17:30:00.000Z"),
    ]
    # Absent and null keep them.
    await agent.report(report_body(workers=[worker]))
    await agent.report(report_body(workers=[{**worker, "connections": None}]))
    [shown] = (await detail(user, agent))["workers"]
    assert len(shown["connections"]) == 2
    # A list replaces them; an empty list empties them.
    second = [{"client_ip": "10.0.0.7", "connected_at": "2026-11-25T17:40:00Z"}]
    await agent.report(report_body(workers=[{**worker, "connections": second}]))
    [shown] = (await detail(user, agent))["workers"]
    assert [c["client_ip"] for c in shown["connections"]] == ["10.0.0.7"]
    await agent.report(report_body(workers=[{**worker, "connections": []}]))
    [shown] = (await detail(user, agent))["workers"]
    assert shown["connections"] == []


async def test_connection_changed_flag_of_the_real_agent(api):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    [worker_id] = await worker_ids(agent)
    worker = {"worker_id": worker_id, "status": "running", "gpu_ids": ["GPU-0"]}
    conn = {"client_ip": "10.0.0.5", "connected_at": "2026-11-25T17:30:00Z"}
    await agent.report(
        report_body(workers=[{**worker, "connections": [conn], "connection_changed": True}])
    )
    # Unchanged: the agent re-stamps connected_at with its clock; the first-seen time stays.
    restamped = {**conn, "connected_at": "2026-11-25T17:31:00Z"}
    await agent.report(
        report_body(workers=[{**worker, "connections": [restamped], "connection_changed": False}])
    )
    [shown] = (await detail(user, agent))["workers"]
    assert [c["connected_at"] for c in shown["connections"]] == ["2026-11-25T17:30:00.000Z"]
    # Changed, with the list left out (Go's omitempty of an empty slice): no connections.
    await agent.report(report_body(workers=[{**worker, "connection_changed": True}]))
    [shown] = (await detail(user, agent))["workers"]
    assert shown["connections"] == []


async def test_other_agents_workers_and_gpus_are_ignored(api):
    user = await api.user(plan="personal")
    mine = await register_agent(user, gpus=1, hostname="mine")
    theirs_user = await api.user()
    theirs = await register_agent(theirs_user, gpus=1, hostname="theirs")
    [my_worker] = await worker_ids(mine)
    [their_worker] = await worker_ids(theirs)
    await WorkerConnection.create(
        worker_id=their_worker, client_ip="192.0.2.1", connected_at=clock.now()
    )
    before = await snapshot(theirs.agent_id)
    response = await mine.report(
        report_body(
            gpus=[{"gpu_id": "GPU-0", "used_by_worker": their_worker}],
            workers=[
                {"worker_id": their_worker, "status": "running", "pid": 1, "gpu_ids": ["GPU-0"]},
                {
                    "worker_id": their_worker,
                    "status": "stopped",
                    "gpu_ids": [],
                    "connections": [],
                },
                {"worker_id": "wkr_doesnotexist", "status": "running", "gpu_ids": []},
                {"worker_id": my_worker, "status": "running", "gpu_ids": ["GPU-0"]},
            ],
        )
    )
    assert response.status_code == 200, response.text
    assert await snapshot(theirs.agent_id) == before
    shown = await detail(user, mine)
    # A used_by_worker that is not one of this agent's workers is stored as null.
    assert shown["gpus"][0]["used_by_worker"] is None
    assert shown["workers"][0]["status"] == "running"


async def test_another_agents_secret_is_forbidden_and_changes_nothing(api, client):
    user = await api.user(plan="personal")
    target = await register_agent(user, gpus=1, hostname="target")
    other = await register_agent(user, gpus=1, hostname="other")
    before = await snapshot(target.agent_id)
    response = await client.post(
        f"/api/v1/agents/{target.agent_id}/status", json=report_body(), headers=other.auth
    )
    assert_error(response, 403, "forbidden")
    assert await snapshot(target.agent_id) == before


@pytest.mark.parametrize(
    "credential",
    [
        "none",
        "garbage",
        "pat",
        "install_token",
        "malformed_agent_secret",
        "non_ascii_agent_secret",
        "unknown_agent_secret",
    ],
)
async def test_a_report_needs_the_agents_own_secret(api, client, credential):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    # Its last character changed (to one it does not already end with): the checksum fails.
    altered = agent.secret[:-1] + ("y" if agent.secret.endswith("x") else "x")
    headers = {
        "none": {},
        "garbage": {"Authorization": "Bearer nope"},
        "pat": {"Authorization": f"Bearer {await user.create_pat()}"},
        "install_token": {"Authorization": f"Bearer {await user.install_token()}"},
        "malformed_agent_secret": {"Authorization": f"Bearer {altered}"},
        "non_ascii_agent_secret": {
            "Authorization": ("Bearer " + _non_ascii_agent_secret()).encode("latin-1")
        },
        "unknown_agent_secret": {"Authorization": "Bearer " + _unknown_agent_secret()},
    }[credential]
    before = await snapshot(agent.agent_id)
    with count_sql() as statements:
        response = await client.post(
            f"/api/v1/agents/{agent.agent_id}/status", json=report_body(), headers=headers
        )
    assert_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"
    assert await snapshot(agent.agent_id) == before
    # Only a well-formed agent secret is looked up.
    assert (statements != []) == (credential == "unknown_agent_secret"), statements


def _non_ascii_agent_secret() -> str:
    """Well-formed but for a letter outside ASCII (which str.isalnum takes; a header
    carries it as Latin-1), with a checksum that matches: refused by its form, before
    any query."""
    from gpugo.auth.tokens import CHECKSUM_LENGTH, TokenKind, _checksum, new_token

    body = new_token(TokenKind.AGENT)[:-CHECKSUM_LENGTH]
    body = body[:-1] + "é"
    return body + _checksum(body)


def _unknown_agent_secret() -> str:
    from gpugo.auth.tokens import TokenKind, new_token

    return new_token(TokenKind.AGENT)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"timestamp": None}, "timestamp"),
        ({"gpus": "GPU-0"}, "gpus"),
        (
            {"workers": [{"worker_id": "w", "status": "exploded", "gpu_ids": []}]},
            "workers[0].status",
        ),
        ({"workers": [{"worker_id": "w", "status": "running", "pid": "1"}]}, "workers[0].pid"),
        (
            {
                "workers": [
                    {
                        "worker_id": "w",
                        "status": "running",
                        "connections": [{"client_ip": "1.2.3.4"}],
                    }
                ]
            },
            "workers[0].connections[0].connected_at",
        ),
        ({"gpus": [{"used_by_worker": None}]}, "gpus[0].gpu_id"),
    ],
)
async def test_a_bad_report_is_refused_with_details_and_changes_nothing(api, change, field):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    before = await snapshot(agent.agent_id)
    response = await agent.report({**report_body(), **change})
    error = assert_error(response, 400, "validation_error")
    assert field in [d["field"] for d in error["details"]], error
    assert await snapshot(agent.agent_id) == before


@pytest.mark.parametrize("gpu_id", BAD_GPU_IDS)
async def test_gpu_ids_outside_the_rule_are_refused_in_gpus_and_workers(api, gpu_id):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    (worker_id,) = await worker_ids(agent)
    before = await snapshot(agent.agent_id)
    reports = {
        "gpus[0].gpu_id": report_body(gpus=[{"gpu_id": gpu_id}]),
        "workers[0].gpu_ids[0]": report_body(
            workers=[{"worker_id": worker_id, "status": "running", "gpu_ids": [gpu_id]}]
        ),
    }
    for field, body in reports.items():
        error = assert_error(await agent.report(body), 400, "validation_error")
        assert [d["field"] for d in error["details"]] == [field]
    assert await snapshot(agent.agent_id) == before


async def test_a_report_without_its_lists_is_refused(api):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    error = assert_error(await agent.report({"timestamp": NOW}), 400, "validation_error")
    assert {d["field"] for d in error["details"]} == {"gpus", "workers"}
    bad_json = await agent.http.post(
        f"/api/v1/agents/{agent.agent_id}/status",
        content=b"{not json",
        headers={**agent.auth, "Content-Type": "application/json"},
    )
    assert_error(bad_json, 400, "validation_error")


async def test_the_offline_rule_is_three_minutes(api):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    await agent.report(report_body())
    # The real clock moves too while the test runs: a little margin on each side.
    clock.advance(timedelta(minutes=2, seconds=58))
    assert (await detail(user, agent))["status"] == "online"
    clock.advance(timedelta(seconds=3))
    shown = await detail(user, agent)
    assert shown["status"] == "offline"
    assert "3 minutes" in shown["status_reason"]
    await agent.report(report_body())
    assert (await detail(user, agent))["status"] == "online"


async def test_a_shutdown_event_makes_the_agent_offline_at_once(api):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    await agent.report(report_body())
    assert (await agent.report(report_body(event="shutdown"))).status_code == 200
    shown = await detail(user, agent)
    assert shown["status"] == "offline"
    assert "shutting down" in shown["status_reason"]
    [listed] = (await user.get("/api/v1/agents")).json()["agents"]
    assert listed["status"] == "offline"
    # The next ordinary report brings it back; unknown events are just reports.
    await agent.report(report_body(event="something-new"))
    assert (await detail(user, agent))["status"] == "online"


async def test_a_deleted_agents_secret_stops_working_at_once(api):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    assert (await user.delete(f"/api/v1/agents/{agent.agent_id}")).status_code == 200
    assert_error(await agent.report(report_body()), 401, "unauthorized")
    assert_error(await agent.config(), 401, "unauthorized")


async def test_config_version_follows_worker_changes(api):
    user = await api.user()
    agent = await register_agent(user, gpus=2)
    assert (await agent.report(report_body())).json()["config_version"] == 1
    await add_worker(user, agent, port=9100, gpu_ids=["GPU-1"])
    assert (await agent.report(report_body())).json()["config_version"] == 2


async def test_changes_are_published_and_a_steady_heartbeat_publishes_nothing(api, app):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    [worker_id] = await worker_ids(agent)
    worker = {"worker_id": worker_id, "status": "running", "gpu_ids": ["GPU-0"]}
    conns = [{"client_ip": "10.0.0.5", "connected_at": NOW}]
    async with app.state.ctx.events.subscribe(user_id=user.user_id) as events:
        await agent.report(report_body(workers=[{**worker, "connections": conns}]))
        await agent.report(report_body(workers=[{**worker, "connections": conns}]))
        await agent.report(report_body(event="shutdown"))
        # In order (PostgreSQL delivers through NOTIFY, a moment later): had the steady
        # second report published anything, it would come before the shutdown's event.
        received = [await asyncio.wait_for(events.get(), timeout=5) for _ in range(4)]
    assert [(e.kind, e.resource_id) for e in received] == [
        (EventKind.AGENT_ONLINE, None),
        (EventKind.WORKER_STATUS_CHANGED, worker_id),
        (EventKind.CONNECTIONS_CHANGED, worker_id),
        (EventKind.AGENT_OFFLINE, None),
    ]
    assert all(e.agent_id == agent.agent_id for e in received)


async def test_statements_of_a_report_with_two_workers_and_four_gpus(api, is_postgres):
    user = await api.user(plan="personal")
    agent = await register_agent(user, gpus=4)
    [default] = await worker_ids(agent)
    second = await add_worker(user, agent, port=9100, gpu_ids=["GPU-2", "GPU-3"])

    def body(status: str, ip: str) -> dict[str, Any]:
        return report_body(
            gpus=[
                {"gpu_id": f"GPU-{i}", "used_by_worker": default if i < 2 else second}
                for i in range(4)
            ],
            workers=[
                {
                    "worker_id": worker_id,
                    "status": status,
                    "pid": 100 + n,
                    "gpu_ids": gpu_ids,
                    "connections": [{"client_ip": ip, "connected_at": NOW}],
                }
                for n, (worker_id, gpu_ids) in enumerate(
                    [(default, ["GPU-0", "GPU-1"]), (second, ["GPU-2", "GPU-3"])]
                )
            ],
        )

    with count_sql() as changing:
        assert (await agent.report(body("running", "10.0.0.5"))).status_code == 200
    with count_sql() as steady:
        assert (await agent.report(body("running", "10.0.0.5"))).status_code == 200
    with count_sql() as from_memory:
        assert (await agent.report(body("running", "10.0.0.5"))).status_code == 200
    with count_sql() as worker_change:
        assert (await agent.report(body("stopped", "10.0.0.5"))).status_code == 200
    with count_sql() as changed_back:
        assert (await agent.report(body("running", "10.0.0.5"))).status_code == 200
    with count_sql() as steady_again:
        assert (await agent.report(body("running", "10.0.0.5"))).status_code == 200
    # The agent by its secret with its GPUs, workers and connections; the agent's UPDATE;
    # the workers with their connections again, under that lock; then one bulk statement
    # each for workers, GPUs, old and new connections. (The first report brings the agent
    # online: whether its owner's webhooks listen to agent.online came with the first
    # read, and nobody listens.)
    assert len(changing) == 7, changing
    # A heartbeat that changes nothing only reads: its last_seen_at is written by the next
    # coalesced flush (one statement for every agent seen meanwhile).
    assert len(steady) == 1, steady
    # Then the row it read is held in memory: the next steady heartbeat costs no statement
    # (on SQLite, whether another process wrote the file: PRAGMA data_version, no page read).
    other_writers = [] if is_postgres else ["PRAGMA data_version"]
    assert from_memory == other_writers, from_memory
    # Running workers reported stopped may have failed, but nobody listens to
    # worker.failed (held with the state): no statement more. Only the workers change:
    # on PostgreSQL one statement writes the agent's row and them, compared with the
    # state held (no read), and the state as written is held in its place; SQLite's
    # transaction has the agent's UPDATE, the workers' read and their UPDATE (after the
    # read: the state is held only for steady heartbeats).
    # (On SQLite, nothing is held after a change: no PRAGMA before the next one.)
    assert len(worker_change) == (1 if is_postgres else 4 + len(other_writers)), worker_change
    assert len(changed_back) == (1 if is_postgres else 4), changed_back
    # PostgreSQL answers the next heartbeat from the row it wrote; SQLite reads it.
    assert len(steady_again) == (0 if is_postgres else 1), steady_again
    assert not any(
        "SAVEPOINT" in s.upper() for s in changing + steady + worker_change + changed_back
    )
    shown = await detail(user, agent)
    assert [w["status"] for w in shown["workers"]] == ["running", "running"]
    assert [g["used_by_worker"] for g in shown["gpus"]] == [default, default, second, second]
    assert [len(w["connections"]) for w in shown["workers"]] == [1, 1]


async def test_the_same_report_again_is_answered_as_the_state_is_now(api):
    """Most reports repeat the last one but for their readings; they are answered from
    memory, and must still see what changed meanwhile and refuse what is wrong."""
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    [worker_id] = await worker_ids(agent)

    held = license_expiry(agent.license)

    def body(status: str = "running", **readings: Any) -> dict[str, Any]:
        worker = {"worker_id": worker_id, "status": status, "pid": 7, "gpu_ids": ["GPU-0"]}
        report = report_body(gpus=[{"gpu_id": "GPU-0"}], workers=[worker])
        return {**report, "license_expiration": held, **readings}

    first = (await agent.report(body())).json()  # brings the agent online
    assert (await agent.report(body())).json() == first  # a heartbeat: remembered
    assert (await agent.report(body(timestamp=out_time(moment())))).json() == first

    # The owner changes the worker: the same report now answers the new config version.
    response = await user.patch(f"/api/v1/workers/{worker_id}", json={"listen_port": 9444})
    assert response.status_code == 200, response.text
    again = (await agent.report(body())).json()
    assert again["config_version"] == first["config_version"] + 1

    # Its readings are read all the same: a bad time is refused, a held license kept or
    # renewed.
    response = await agent.report(body(timestamp="yesterday"))
    error = assert_error(response, 400, "validation_error")
    assert "timestamp" in [d["field"] for d in error["details"]]
    assert "license" not in again
    assert "license" in (await agent.report(body(license_expiration=1))).json()

    # Anything else that differs is a change.
    assert (await agent.report(body("stopped"))).status_code == 200
    assert (await detail(user, agent))["workers"][0]["status"] == "stopped"
    assert (await agent.report(body("running"))).status_code == 200
    assert (await detail(user, agent))["workers"][0]["status"] == "running"

    # Deleted: the same report is refused at once.
    assert (await user.delete(f"/api/v1/agents/{agent.agent_id}")).status_code == 200
    assert_error(await agent.report(body()), 401, "unauthorized")


async def test_concurrent_reports_of_one_agent_leave_a_consistent_state(api):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    [worker_id] = await worker_ids(agent)

    def body(n: int) -> dict[str, Any]:
        conns = [{"client_ip": f"10.0.0.{n}", "connected_at": NOW}]
        worker = {"worker_id": worker_id, "status": "running", "pid": n, "gpu_ids": ["GPU-0"]}
        return report_body(workers=[{**worker, "connections": conns}])

    responses = await asyncio.gather(*(agent.report(body(n)) for n in range(1, 11)))
    assert [r.status_code for r in responses] == [200] * 10
    [worker] = (await detail(user, agent))["workers"]
    # Whichever report was last, its worker and its connections belong together.
    assert [c["client_ip"] for c in worker["connections"]] == [f"10.0.0.{worker['pid']}"]


async def test_an_agent_deleted_while_its_report_is_on_the_way_gets_401(api, monkeypatch):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    read = status_reports._read_row

    async def read_then_delete(secret_hash: str):
        row = await read(secret_hash)
        await Agent.filter(id=agent.agent_id).delete()
        return row

    monkeypatch.setattr(status_reports, "_read_row", read_then_delete)
    assert_error(await agent.report(report_body()), 401, "unauthorized")
    assert not await Agent.exists(id=agent.agent_id)


async def test_a_worker_deleted_between_read_and_write_is_retried_not_a_500(api, monkeypatch):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    [worker_id] = await worker_ids(agent)
    read = status_reports._current_workers
    calls = 0

    async def read_then_lose_the_worker(agent_id: str, *, with_connections: bool):
        nonlocal calls
        calls += 1
        current = await read(agent_id, with_connections=with_connections)
        if calls == 1:
            # As if the user's DELETE committed right after the read: the connection
            # INSERT then breaks the foreign key and the attempt rolls back.
            await Worker.filter(id=worker_id).delete()
        return current

    monkeypatch.setattr(status_reports, "_current_workers", read_then_lose_the_worker)
    conns = [{"client_ip": "10.0.0.5", "connected_at": NOW}]
    worker = {"worker_id": worker_id, "status": "running", "gpu_ids": [], "connections": conns}
    response = await agent.report(report_body(workers=[worker]))
    assert response.status_code == 200, response.text
    assert calls == 2


def license_expiry(license: dict[str, str]) -> int:
    return int(license["plain"].split("|")[2])


async def test_a_license_goes_out_only_when_the_one_held_is_near_its_expiry(api):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    held = license_expiry(agent.license)
    # The agent reports the license it holds: nothing new to write to its config file.
    body = (await agent.report(report_body(license_expiration=held))).json()
    assert "license" not in body and body["success"] is True
    # Ten minutes before its expiry, a new one.
    clock.advance(timedelta(milliseconds=held) - timedelta(seconds=clock.now().timestamp()))
    clock.advance(-status_reports.LICENSE_RENEWAL_MARGIN + timedelta(seconds=1))
    renewed = (await agent.report(report_body(license_expiration=held))).json()["license"]
    assert license_expiry(renewed) > held
    # No license held (an older agent), or one this server never issued: a new one.
    assert "license" in (await agent.report(report_body())).json()
    far = license_expiry(renewed) + 365 * 24 * 3600 * 1000
    assert "license" in (await agent.report(report_body(license_expiration=far))).json()


async def test_gpu_use_follows_the_running_workers_when_the_agent_says_null(api):
    user = await api.user(plan="personal")
    agent = await register_agent(user, gpus=3)
    [default_id] = await worker_ids(agent)
    await user.patch(f"/api/v1/workers/{default_id}", json={"gpu_ids": ["GPU-0", "GPU-1"]})
    # The real agent always sends null: the running worker over a GPU is its user.
    nulls = [{"gpu_id": f"GPU-{i}", "used_by_worker": None} for i in range(3)]
    running = {"worker_id": default_id, "status": "running", "gpu_ids": ["GPU-0", "GPU-1"]}
    await agent.report(report_body(gpus=nulls, workers=[running]))
    shown = await detail(user, agent)
    assert [g["used_by_worker"] for g in shown["gpus"]] == [default_id, default_id, None]
    # The same again is a steady heartbeat: nothing written.
    with count_sql() as steady:
        assert (await agent.report(report_body(gpus=nulls, workers=[running]))).is_success
    assert len(steady) == 1, steady
    # Stopped, it uses none.
    stopped = {**running, "status": "stopped"}
    await agent.report(report_body(gpus=nulls, workers=[stopped]))
    assert [g["used_by_worker"] for g in (await detail(user, agent))["gpus"]] == [None] * 3
    # Without a worker in the report, the stored status decides: still stopped.
    await agent.report(report_body(gpus=nulls))
    assert [g["used_by_worker"] for g in (await detail(user, agent))["gpus"]] == [None] * 3
    # A worker the agent names is taken at its word.
    named = [{"gpu_id": "GPU-2", "used_by_worker": default_id}]
    await agent.report(report_body(gpus=named, workers=[stopped]))
    assert (await detail(user, agent))["gpus"][2]["used_by_worker"] == default_id


async def test_the_reply_carries_the_live_share_codes_of_the_agents_workers(api, client):
    user = await api.user(plan="personal")
    agent = await register_agent(user, gpus=2)
    [default_id] = await worker_ids(agent)
    other_id = await add_worker(user, agent, port=9100, gpu_ids=["GPU-1"])

    async def share(worker_id: str, **extra: Any) -> str:
        body = {"worker_id": worker_id, "connection_ip": "203.0.113.7", **extra}
        response = await user.post("/api/v1/shares", json=body)
        assert response.status_code == 201, response.text
        return response.json()["short_code"]

    async def codes() -> dict[str, list[str]]:
        return (await agent.report(report_body())).json()["worker_share_codes"]

    kept = await share(default_id)
    once = await share(default_id, max_uses=1)
    soon = await share(other_id, expires_at=out_time(moment(timedelta(minutes=5))))
    assert await codes() == {default_id: sorted([kept, once]), other_id: [soon]}
    # Used up: gone from the next reply.
    assert (await client.get(f"/s/{once}")).status_code == 200
    assert await codes() == {default_id: [kept], other_id: [soon]}
    # Expired: gone.
    clock.advance(timedelta(minutes=6))
    assert await codes() == {default_id: [kept]}
    # A deleted worker's codes go with it.
    assert (await user.delete(f"/api/v1/workers/{default_id}")).status_code == 200
    assert await codes() == {}


@pytest.mark.parametrize("held", [False, True], ids=["read", "held"])
@pytest.mark.parametrize("raced", [0, 1, 2])
async def test_a_worker_changed_between_the_read_and_the_write_is_applied_as_it_is_now(
    api, app, monkeypatch, raced, held
):
    # Another writer (a report of the same agent answered by another instance) changes
    # `raced` of the two workers after this report read them and before it writes (or,
    # `held`, while their state is held here and before its event arrives): those are
    # written from what they are then, the others as read, and every status change of
    # this report is told once.
    user = await api.user()
    agent = await register_agent(user, gpus=2)
    [first] = await worker_ids(agent)
    second = await add_worker(user, agent, port=9100, gpu_ids=["GPU-1"])

    def workers(status: str, pid: int) -> list[dict[str, Any]]:
        return [
            {"worker_id": first, "status": status, "gpu_ids": ["GPU-0"], "pid": pid},
            {"worker_id": second, "status": status, "gpu_ids": ["GPU-1"], "pid": pid},
        ]

    for _ in range(2):  # online, then its state held
        assert (await agent.report(report_body(workers=workers("running", 10)))).is_success
    read_row = status_reports._read_row

    async def read_then_another_writer(secret_hash: str):
        row = await read_row(secret_hash)
        monkeypatch.setattr(status_reports, "_read_row", read_row)
        for worker_id in (first, second)[:raced]:
            await Worker.filter(id=worker_id).update(pid=99)  # a new process, still running
        return row

    if held:
        # No event of it reaches the held state (PostgreSQL's change goes unheard here).
        for worker_id in (first, second)[:raced]:
            await Worker.filter(id=worker_id).update(pid=99)
    else:
        app.state.ctx.agent_states.clear()
        monkeypatch.setattr(status_reports, "_read_row", read_then_another_writer)
    async with app.state.ctx.events.subscribe(user_id=user.user_id) as events:
        answer = await agent.report(report_body(workers=workers("stopped", 0)))
        assert answer.status_code == 200, answer.text
        received = [await asyncio.wait_for(events.get(), timeout=5) for _ in range(2)]
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(events.get(), timeout=0.3)
    assert sorted((e.kind, e.resource_id) for e in received) == sorted(
        [(EventKind.WORKER_STATUS_CHANGED, first), (EventKind.WORKER_STATUS_CHANGED, second)]
    )
    shown = await detail(user, agent)
    assert [(w["status"], w["pid"]) for w in shown["workers"]] == [("stopped", 0)] * 2


async def test_the_report_gets_what_every_response_gets(api, client, settings):
    """The status report is answered ahead of the router (gpugo.app.App): its size
    limit, media type, method and headers are those of every other request."""
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    path = f"/api/v1/agents/{agent.agent_id}/status"
    json_type = {"Content-Type": "application/json"}

    oversized = b'{"timestamp": "' + b"a" * settings.max_body_bytes + b'"}'
    response = await client.post(path, content=oversized, headers={**agent.auth, **json_type})
    assert_error(response, 413, "payload_too_large")

    async def chunks():
        for _ in range(settings.max_body_bytes // 65536 + 1):
            yield b"x" * 65536

    response = await client.post(path, content=chunks(), headers={**agent.auth, **json_type})
    assert_error(response, 413, "payload_too_large")
    # Without a well-formed secret the body is never read.
    assert_error(await client.post(path, content=oversized, headers=json_type), 401, "unauthorized")

    form = {**agent.auth, "Content-Type": "application/x-www-form-urlencoded"}
    response = await client.post(path, content=b"timestamp=now", headers=form)
    assert_error(response, 415, "unsupported_media_type")
    assert_error(await client.get(path, headers=agent.auth), 405, "method_not_allowed")

    first = await agent.report(report_body())
    second = await agent.report(report_body())
    assert first.status_code == second.status_code == 200
    assert first.headers["content-type"] == "application/json"
    assert first.headers["x-content-type-options"] == "nosniff"
    assert first.headers["x-frame-options"] == "DENY"
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    assert "referrer-policy" not in first.headers
