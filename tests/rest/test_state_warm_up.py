"""A restarted server holds the states of the agents online before their next reports:
their first reports after the restart read nothing, and what it holds stays exact.
(Across two running instances: tests/live/test_state_in_memory.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from starlette.applications import Starlette

from gpugo import clock, sql
from gpugo.app import create_app
from gpugo.auth.tokens import hash_token
from gpugo.services import agent_state_warm_up
from gpugo.settings import Settings
from tests.conftest import make_client
from tests.sql_counter import count_sql
from tests.support import Agent, Api, assert_error, out_time, register_agent


def heartbeat() -> dict[str, object]:
    return {"timestamp": out_time(clock.now()), "gpus": [], "workers": []}


@asynccontextmanager
async def running(settings: Settings, *, warm_up: bool) -> AsyncIterator[Starlette]:
    """An instance on the test's database; with the warm-up, once it is done."""
    app = create_app(settings.replace(agent_state_warm_up=warm_up), auto_migrate=False)
    async with app.router.lifespan_context(app):
        if warm_up:
            [task] = [t for t in asyncio.all_tasks() if t.get_name() == "agent-state-warm-up"]
            await asyncio.wait_for(task, timeout=10)
        yield app


def through(app: Starlette, agent: Agent) -> Agent:
    return Agent(make_client(app), agent.agent_id, agent.secret, agent.license)


async def test_after_a_restart_only_online_agents_are_held_and_their_reports_read_nothing(
    app, settings, is_postgres
):
    # `app` only empties the database; the server stops, then starts again.
    async with running(settings, warm_up=False) as before:
        api = Api(before, make_client)
        user = await api.user(plan="pro")
        silent = await register_agent(user, gpus=1, hostname="silent")
        assert (await silent.report(heartbeat())).status_code == 200
        clock.advance(timedelta(seconds=settings.agent_offline_seconds + 20))
        online = [await register_agent(user, gpus=2, hostname=f"host-{i}") for i in range(3)]
        for agent in online:
            assert (await agent.report(heartbeat())).status_code == 200
        never_reported = await register_agent(user, gpus=1, hostname="new")
        await api.aclose()

    async with running(settings, warm_up=True) as after:
        states = after.state.ctx.agent_states
        assert len(states) == 3
        # Held by their secrets: the online agents, not the silent or never reported one.
        assert all(hash_token(agent.secret) in states for agent in online)
        assert not any(hash_token(a.secret) in states for a in (silent, never_reported))
        clock.advance(timedelta(seconds=30))
        for agent in online:
            with count_sql() as statements:
                response = await through(after, agent).report(heartbeat())
            assert response.status_code == 200, response.text
            # No read: on SQLite only whether another process wrote the file.
            assert statements == ([] if is_postgres else ["PRAGMA data_version"]), statements
        # Agents not online were not held: their reports read their rows (and write them:
        # each comes online).
        for agent in (silent, never_reported):
            with count_sql() as statements:
                response = await through(after, agent).report(heartbeat())
            assert response.status_code == 200, response.text
            assert len(statements) > 1, statements


async def test_an_agent_deleted_while_its_batch_is_read_is_not_held(
    api, app, is_postgres, monkeypatch: pytest.MonkeyPatch
):
    user = await api.user(plan="pro")
    kept, deleted = [await register_agent(user, gpus=1, hostname=f"h{i}") for i in range(2)]
    for agent in (kept, deleted):
        assert (await agent.report(heartbeat())).status_code == 200
    read = sql.fetch

    async def read_then_delete(
        statements: sql.Statements, params: Sequence[Any]
    ) -> list[dict[str, Any]]:
        rows = await read(statements, params)
        monkeypatch.setattr(sql, "fetch", read)
        response = await user.delete(f"/api/v1/agents/{deleted.agent_id}")
        assert response.status_code == 200, response.text
        return rows

    monkeypatch.setattr(sql, "fetch", read_then_delete)
    states = app.state.ctx.agent_states
    assert await agent_state_warm_up.warm_up(app.state.ctx) == 1
    assert len(states) == 1
    assert_error(await deleted.report(heartbeat()), 401, "unauthorized")
    with count_sql() as statements:
        assert (await kept.report(heartbeat())).status_code == 200
    # Held: no read (on SQLite only whether another process wrote the file).
    assert statements == ([] if is_postgres else ["PRAGMA data_version"]), statements
