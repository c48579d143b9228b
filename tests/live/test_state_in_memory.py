"""The status-report state each instance holds in memory stays exact across instances.

Two `gpugo serve` processes on one PostgreSQL database. Instance B answers an agent's
steady heartbeats from memory (shown by a write made behind its back, with no event,
that B does not see); then a change made through instance A (or the command line) is
seen by the very next report to B: no retry, only the window the design allows
(docs/decisions.md: from A's commit to its NOTIFY reaching B's listener, which goes
through B's own PostgreSQL backend; a millisecond on an idle machine, more when the
CPUs are saturated).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from gpugo.events.postgres import asyncpg_dsn
from tests.live.remote import (
    NOW,
    RemoteAgent,
    RemoteUser,
    ServerProcess,
    new_user,
    server_pair,
)
from tests.support import eventually

BEHIND_ITS_BACK = 1000
# The window allowed between a change answered by A and a report to B (see above).
NOTIFY_WINDOW = 0.2


@pytest.fixture(scope="module")
def servers(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[ServerProcess]]:
    if not database_url.startswith("postgres"):
        pytest.skip("several instances share a PostgreSQL database")
    # Webhooks to 127.0.0.1: an endpoint nothing answers on (its deliveries wait).
    env = {"GPUGO_WEBHOOKS_ALLOW_PRIVATE": "true"}
    pair = server_pair(tmp_path_factory.mktemp("cache"), database_url, env)
    try:
        for server in pair:
            server.start()
        yield pair
    finally:
        for server in pair:
            server.stop()


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        yield connection
    finally:
        await connection.close()


def body(workers: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"timestamp": NOW, "gpus": [], "workers": workers or []}


async def status(
    http: httpx.AsyncClient, base_url: str, agent: RemoteAgent, workers: list[dict[str, Any]]
) -> httpx.Response:
    return await http.post(
        f"{base_url}/api/v1/agents/{agent.agent_id}/status", json=body(workers), headers=agent.auth
    )


async def warm(
    http: httpx.AsyncClient,
    b: str,
    agent: RemoteAgent,
    database: asyncpg.Connection,
    workers: list[dict[str, Any]] | None = None,
) -> int:
    """Report to ``b`` until it answers from memory; the config_version it holds."""
    workers = workers or []
    # The first brings the agent online (written, and its event comes back to B as well);
    # the next ones are steady: read from the database, then kept (a read that the first
    # one's event overtook is not kept, hence one more).
    replies = [await status(http, b, agent, workers) for _ in range(3)]
    assert [r.status_code for r in replies] == [200] * 3, replies[-1].text
    held = replies[-1].json()["config_version"]
    # A write no event tells of: B, answering from memory, does not see it.
    await database.execute(
        "UPDATE agents SET config_version = config_version + $2 WHERE id = $1",
        agent.agent_id,
        BEHIND_ITS_BACK,
    )
    third = await status(http, b, agent, workers)
    assert third.status_code == 200, third.text
    assert third.json()["config_version"] == held, "B did not answer from memory"
    return held


async def setup(http: httpx.AsyncClient, a: ServerProcess) -> tuple[RemoteUser, RemoteAgent]:
    user = await new_user(http, a.url, a.url)
    return user, await user.register_agent(a.url)


async def test_an_agent_deleted_through_one_instance_is_refused_by_the_other(servers, database):
    a, b = servers
    async with asyncio.timeout(60), httpx.AsyncClient() as http:
        await asyncio.gather(a.wait_ready(), b.wait_ready())
        user, agent = await setup(http, a)
        await warm(http, b.url, agent, database)
        deleted = await http.delete(f"{a.url}/api/v1/agents/{agent.agent_id}", headers=user.auth)
        assert deleted.status_code == 200, deleted.text
        await asyncio.sleep(NOTIFY_WINDOW)
        after = await status(http, b.url, agent, [])
    assert after.status_code == 401, after.text


async def test_a_worker_created_through_one_instance_reaches_the_others_next_reply(
    servers, database
):
    a, b = servers
    async with asyncio.timeout(60), httpx.AsyncClient() as http:
        await asyncio.gather(a.wait_ready(), b.wait_ready())
        user, agent = await setup(http, a)
        held = await warm(http, b.url, agent, database)
        created = await user.create_worker(a.url, agent, 9400)
        assert created.status_code == 201, created.text
        await asyncio.sleep(NOTIFY_WINDOW)
        after = await status(http, b.url, agent, [])
    assert after.status_code == 200, after.text
    # Read again: the write behind B's back and the worker's config bump.
    assert after.json()["config_version"] == held + BEHIND_ITS_BACK + 1


def set_plan(
    email: str, plan: str, database_url: str, data_dir: Path
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "gpugo", "user", "set-plan", email, plan],
        env={**os.environ, "GPUGO_DATABASE_URL": database_url, "GPUGO_DATA_DIR": str(data_dir)},
        capture_output=True,
        timeout=60,
        check=False,
    )


async def test_a_plan_changed_from_the_command_line_reaches_every_instance(
    servers, database, database_url, tmp_path
):
    a, b = servers
    async with asyncio.timeout(60), httpx.AsyncClient() as http:
        await asyncio.gather(a.wait_ready(), b.wait_ready())
        user, agent = await setup(http, a)
        me = await http.get(f"{a.url}/api/v1/auth/me", headers=user.auth)
        held = await warm(http, b.url, agent, database)
        changed = await asyncio.to_thread(
            set_plan, me.json()["email"], "team", database_url, tmp_path
        )
        assert changed.returncode == 0, changed.stderr
        # No license_expiration held: the reply carries a fresh license, of the new plan.
        after = await status(http, b.url, agent, [])
    assert after.status_code == 200, after.text
    assert after.json()["config_version"] == held + BEHIND_ITS_BACK + 1
    assert after.json()["license"]["plain"].split("|")[1] == "team"


async def test_a_worker_reported_stopped_to_one_instance_is_running_again_through_the_other(
    servers, database
):
    a, b = servers
    async with asyncio.timeout(60), httpx.AsyncClient() as http:
        await asyncio.gather(a.wait_ready(), b.wait_ready())
        user, agent = await setup(http, a)
        detail = await http.get(f"{a.url}/api/v1/agents/{agent.agent_id}", headers=user.auth)
        worker_id = detail.json()["workers"][0]["worker_id"]
        worker = {"worker_id": worker_id, "status": "running", "pid": 4242, "gpu_ids": ["GPU-0"]}
        await warm(http, b.url, agent, database, [worker])
        stopped = await status(http, a.url, agent, [{**worker, "status": "stopped", "pid": 0}])
        assert stopped.status_code == 200, stopped.text
        await asyncio.sleep(NOTIFY_WINDOW)
        # B held "running": unless it heard A's change, it would take this for a heartbeat.
        running = await status(http, b.url, agent, [worker])
        assert running.status_code == 200, running.text
        detail = await http.get(f"{a.url}/api/v1/agents/{agent.agent_id}", headers=user.auth)
    shown = detail.json()["workers"][0]
    assert (shown["status"], shown["pid"]) == ("running", 4242), shown


async def test_a_worker_change_is_written_from_memory_and_held_as_written(servers, database):
    a, b = servers
    async with asyncio.timeout(60), httpx.AsyncClient() as http:
        await asyncio.gather(a.wait_ready(), b.wait_ready())
        user, agent = await setup(http, a)
        detail = await http.get(f"{a.url}/api/v1/agents/{agent.agent_id}", headers=user.auth)
        worker_id = detail.json()["workers"][0]["worker_id"]
        worker = {"worker_id": worker_id, "status": "running", "pid": 4242, "gpu_ids": ["GPU-0"]}
        held = await warm(http, b.url, agent, database, [worker])
        # Stopped, then running again, through B: written (A shows it) without B reading
        # the agent again (it still answers the config_version it held).
        for changed in ({**worker, "status": "stopped", "pid": 0}, worker):
            reply = await status(http, b.url, agent, [changed])
            assert reply.status_code == 200, reply.text
            assert reply.json()["config_version"] == held, "B read the agent again"
            shown = await http.get(f"{a.url}/api/v1/agents/{agent.agent_id}", headers=user.auth)
            got = shown.json()["workers"][0]
            assert (got["status"], got["pid"]) == (changed["status"], changed["pid"]), got
        # What B holds is the row as written: the same report again is a heartbeat.
        again = await status(http, b.url, agent, [worker])
        assert again.status_code == 200, again.text
        assert again.json()["config_version"] == held
        # A change through A still reaches B's next reply.
        created = await user.create_worker(a.url, agent, 9401)
        assert created.status_code == 201, created.text
        await asyncio.sleep(NOTIFY_WINDOW)
        after = await status(http, b.url, agent, [{**worker, "status": "stopped", "pid": 0}])
    assert after.status_code == 200, after.text
    assert after.json()["config_version"] == held + BEHIND_ITS_BACK + 1


async def test_a_webhook_listening_through_one_instance_hears_the_others_next_failure(
    servers, database
):
    a, b = servers
    async with asyncio.timeout(60), httpx.AsyncClient() as http:
        await asyncio.gather(a.wait_ready(), b.wait_ready())
        user, agent = await setup(http, a)
        await database.execute(
            "UPDATE users SET plan = 'pro' WHERE id = (SELECT user_id FROM agents WHERE id = $1)",
            agent.agent_id,
        )
        detail = await http.get(f"{a.url}/api/v1/agents/{agent.agent_id}", headers=user.auth)
        worker_id = detail.json()["workers"][0]["worker_id"]
        worker = {"worker_id": worker_id, "status": "running", "pid": 4242, "gpu_ids": ["GPU-0"]}
        await warm(http, b.url, agent, database, [worker])
        # B holds "nobody listens to worker.failed" (which would let it write the stop
        # from memory, with no alert); the endpoint created through A must reach it.
        hook = await http.post(
            f"{a.url}/api/v1/webhooks",
            json={"url": "http://127.0.0.1:9/hook", "events": ["worker.failed"]},
            headers=user.auth,
        )
        assert hook.status_code == 201, hook.text
        await asyncio.sleep(NOTIFY_WINDOW)
        stopped = await status(http, b.url, agent, [{**worker, "status": "stopped", "pid": 0}])
        assert stopped.status_code == 200, stopped.text
        deliveries = await http.get(
            f"{a.url}/api/v1/webhooks/{hook.json()['webhook_id']}/deliveries", headers=user.auth
        )
    assert deliveries.status_code == 200, deliveries.text
    assert [d["event_type"] for d in deliveries.json()["deliveries"]] == ["worker.failed"]


async def test_while_the_bus_is_down_reports_read_the_database(servers, database):
    a, b = servers
    async with asyncio.timeout(60), httpx.AsyncClient() as http:
        await asyncio.gather(a.wait_ready(), b.wait_ready())
        _, agent = await setup(http, a)
        held = await warm(http, b.url, agent, database)
        # Every instance's listening connection is cut: what they hold may go stale.
        cut = await database.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND query LIKE 'LISTEN%'"
        )
        assert cut, "no listening connection found"
        # B notices its connection closed (it reconnects a second later, and then drops
        # all it held as well).
        await asyncio.sleep(0.3)
        # The next report reads the database: the write behind B's back shows.
        after = await status(http, b.url, agent, [])
    assert after.status_code == 200, after.text
    assert after.json()["config_version"] == held + BEHIND_ITS_BACK


async def test_an_instance_started_later_holds_the_online_agents_and_hears_changes(
    servers, database, database_url
):
    a, _ = servers
    workdir = a.log.parent
    async with asyncio.timeout(90), httpx.AsyncClient() as http:
        await a.wait_ready()
        user = await new_user(http, a.url, a.url)
        kept, deleted = [await user.register_agent(a.url) for _ in range(2)]
        for agent in (kept, deleted):
            assert (await status(http, a.url, agent, [])).status_code == 200
        [c] = server_pair(workdir, database_url, {"GPUGO_LOG_LEVEL": "INFO"}, names=("c",))
        c.start()
        try:
            await c.wait_ready()
            await eventually(lambda: "held the states of" in c.output())
            held = (await status(http, a.url, kept, [])).json()["config_version"]
            # A write no event tells of: C, answering from what it warmed, does not see it.
            await database.execute(
                "UPDATE agents SET config_version = config_version + $2 WHERE id = $1",
                kept.agent_id,
                BEHIND_ITS_BACK,
            )
            first = await status(http, c.url, kept, [])
            assert first.status_code == 200, first.text
            assert first.json()["config_version"] == held, "C read the agent"
            removed = await http.delete(
                f"{a.url}/api/v1/agents/{deleted.agent_id}", headers=user.auth
            )
            assert removed.status_code == 200, removed.text
            await asyncio.sleep(NOTIFY_WINDOW)
            after = await status(http, c.url, deleted, [])
        finally:
            c.stop()
    assert after.status_code == 401, after.text
