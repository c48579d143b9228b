"""Workers-only changes of reports arriving together: one statement for all of them
(PostgreSQL), each report still told exactly which of its workers it wrote."""

from __future__ import annotations

import asyncio

import pytest

from gpugo.events import EventKind
from gpugo.services import worker_writes
from tests.rest.test_status_reports import detail, report_body, worker_ids
from tests.sql_counter import count_sql
from tests.support import register_agent

AGENTS = 12


@pytest.fixture
def postgres_only(is_postgres: bool) -> None:
    if not is_postgres:
        pytest.skip("SQLite applies every change in its own transaction")


async def agents_held(api, count: int):
    """``count`` agents of one user, each with a running worker, their states held."""
    user = await api.user(plan="pro")
    agents = []
    for _ in range(count):
        agent = await register_agent(user, gpus=1)
        [worker_id] = await worker_ids(agent)
        for _ in range(2):  # online, then steady (held)
            assert (await agent.report(body(worker_id, "running"))).is_success
        agents.append((agent, worker_id))
    return user, agents


def body(worker_id: str, status: str) -> dict:
    worker = {"worker_id": worker_id, "status": status, "gpu_ids": ["GPU-0"]}
    return report_body(workers=[worker])


def worker_statements(statements: list[str]) -> list[str]:
    return [s for s in statements if "UPDATE workers" in s]


async def test_changes_reported_together_are_written_by_one_statement(api, app, postgres_only):
    user, agents = await agents_held(api, AGENTS)
    async with app.state.ctx.events.subscribe(user_id=user.user_id) as events:
        with count_sql() as statements:
            replies = await asyncio.gather(
                *(agent.report(body(worker_id, "stopped")) for agent, worker_id in agents)
            )
        assert [r.status_code for r in replies] == [200] * AGENTS
        told = []
        while len(told) < AGENTS:  # (the set-up's own events may still come first)
            event = await asyncio.wait_for(events.get(), timeout=5)
            if event.kind is EventKind.WORKER_STATUS_CHANGED:
                told.append(event)
    # Reports handed over in one turn of the loop share a statement: far fewer than one
    # each (how many turns the test client spreads them over is its own affair).
    assert len(worker_statements(statements)) <= AGENTS // 3, statements
    assert len(statements) == len(worker_statements(statements)), statements
    assert sorted((e.kind, e.resource_id) for e in told) == sorted(
        (EventKind.WORKER_STATUS_CHANGED, worker_id) for _, worker_id in agents
    )
    for agent, _ in agents:
        assert [w["status"] for w in (await detail(user, agent))["workers"]] == ["stopped"]


async def test_two_changes_of_one_agent_at_once_leave_what_is_held_as_it_is_stored(
    api, postgres_only
):
    # Both are workers-only changes of the state held: they never share a statement; the
    # one that comes second finds the worker changed, and is applied the full way.
    user, [(agent, worker_id)] = await agents_held(api, 1)

    def worker(status: str, pid: int) -> dict:
        return report_body(
            workers=[{"worker_id": worker_id, "status": status, "pid": pid, "gpu_ids": ["GPU-0"]}]
        )

    bodies = {("stopped", 0): worker("stopped", 0), ("running", 2): worker("running", 2)}
    replies = await asyncio.gather(*(agent.report(b) for b in bodies.values()))
    assert [r.status_code for r in replies] == [200, 200]

    async def stored() -> tuple[str, int]:
        [w] = (await detail(user, agent))["workers"]
        return w["status"], w["pid"]

    first = await stored()
    assert first in bodies
    # What this process holds is what is stored: the other body is a change, written.
    [other] = [key for key in bodies if key != first]
    assert (await agent.report(bodies[other])).status_code == 200
    assert await stored() == other


async def test_a_batch_that_fails_is_written_one_report_at_a_time(api, postgres_only, monkeypatch):
    user, agents = await agents_held(api, 6)
    statement = worker_writes._statement
    sizes: list[int] = []

    async def only_alone(batch):
        sizes.append(len(batch))
        if len(batch) > 1:
            raise ConnectionResetError("the connection broke")
        return await statement(batch)

    monkeypatch.setattr(worker_writes, "_statement", only_alone)
    replies = await asyncio.gather(
        *(agent.report(body(worker_id, "stopped")) for agent, worker_id in agents)
    )
    assert [r.status_code for r in replies] == [200] * 6
    assert max(sizes) > 1, sizes  # some were sent together, then alone
    for agent, _ in agents:
        assert [w["status"] for w in (await detail(user, agent))["workers"]] == ["stopped"]
