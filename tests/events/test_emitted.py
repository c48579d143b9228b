"""Every kind of event is published, after its change, by an HTTP scenario; steady state is quiet.

The bus is the app's own (in-process on SQLite, LISTEN/NOTIFY on PostgreSQL), so
events may arrive a moment after the response: each check waits for them, and
"nothing else" is checked by publishing a marker and seeing it arrive next.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from gpugo import clock
from gpugo.auth.tokens import TokenKind, hash_token, new_token
from gpugo.events import Event, EventBus, EventKind, Subscription
from gpugo.models import Agent, InstallToken
from gpugo.services import presence
from tests.sql_counter import count_sql
from tests.support import flush_metrics, moment, out_time, register_agent

# Reports carry the server's now, as an agent with a correct clock sends them.
NOW = out_time(moment())
MARKER = "marker"


class Recorder:
    def __init__(self, bus: EventBus, user_id: str, subscription: Subscription) -> None:
        self.bus = bus
        self.user_id = user_id
        self.subscription = subscription

    async def next(self) -> Event:
        return await asyncio.wait_for(self.subscription.get(), timeout=5)

    async def until_quiet(self) -> list[Event]:
        """Everything published so far (in order), ending with the marker."""
        await self.bus.publish(
            Event(EventKind.WORKER_RESTART_REQUESTED, self.user_id, resource_id=MARKER)
        )
        received = []
        while (event := await self.next()).resource_id != MARKER:
            received.append(event)
        return received

    async def kinds(self) -> list[tuple[str, str | None]]:
        return [(e.kind.value, e.resource_id) for e in await self.until_quiet()]


@asynccontextmanager
async def recording(app, user) -> AsyncIterator[Recorder]:
    bus = app.state.ctx.events
    async with bus.subscribe(user_id=user.user_id) as subscription:
        recorder = Recorder(bus, user.user_id, subscription)
        # Through NOTIFY, events of earlier requests may still be on their way: drain them.
        await recorder.until_quiet()
        yield recorder


def report(workers: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    return {"timestamp": NOW, "gpus": [], "workers": workers or [], **extra}


async def default_worker(user, agent) -> str:
    body = (await user.get(f"/api/v1/agents/{agent.agent_id}")).json()
    return body["workers"][0]["worker_id"]


async def test_registration_publishes_the_agent_and_the_token_use_with_the_new_agent(api, app):
    user = await api.user()
    async with recording(app, user) as events:
        agent = await register_agent(user, gpus=1, hostname="rig-7")
        received = await events.until_quiet()
    assert [e.kind for e in received] == [EventKind.AGENT_REGISTERED, EventKind.INSTALL_TOKEN_USED]
    registered, used = received
    assert registered.agent_id == used.agent_id == agent.agent_id
    assert used.data == {"hostname": "rig-7"}
    [token_id] = await InstallToken.filter(agent_id=agent.agent_id).values_list("id", flat=True)
    assert used.resource_id == token_id


async def test_status_reports_publish_online_worker_connection_and_gpu_changes(api, app):
    user = await api.user()
    agent = await register_agent(user, gpus=2)
    worker_id = await default_worker(user, agent)
    running = {"worker_id": worker_id, "status": "running", "gpu_ids": ["GPU-0"]}
    connections = [{"client_ip": "10.0.0.5", "connected_at": NOW}]
    async with recording(app, user) as events:
        await agent.report(report([running]))
        assert await events.kinds() == [
            ("agent.online", None),
            ("worker.status_changed", worker_id),
        ]
        await agent.report(report([running]))  # steady: nothing
        assert await events.kinds() == []
        await agent.report(report([{**running, "connections": connections}]))
        assert await events.kinds() == [("worker.connections_changed", worker_id)]
        await agent.report(report([{**running, "pid": 4242}]))
        await agent.report(
            {**report([running]), "gpus": [{"gpu_id": "GPU-0", "used_by_worker": worker_id}]}
        )
        received = await events.until_quiet()
    assert [(e.kind, e.data) for e in received] == [
        (EventKind.AGENT_UPDATED, {"changed": ["workers"]}),
        (EventKind.AGENT_UPDATED, {"changed": ["gpus", "workers"]}),
    ]
    assert {e.agent_id for e in received} == {agent.agent_id}


async def test_worker_changes_publish_their_event_and_the_config_change(api, app):
    user = await api.user(plan="personal")
    agent = await register_agent(user, gpus=1)
    async with recording(app, user) as events:
        created = await user.post(
            "/api/v1/workers",
            json={
                "agent_id": agent.agent_id,
                "name": "w",
                "gpu_ids": ["GPU-0"],
                "listen_port": 9100,
            },
        )
        worker_id = created.json()["worker_id"]
        await user.patch(f"/api/v1/workers/{worker_id}", json={"enabled": False})
        await user.delete(f"/api/v1/workers/{worker_id}")
        received = await events.until_quiet()
    assert [(e.kind.value, e.resource_id) for e in received] == [
        ("worker.created", worker_id),
        ("agent.config_changed", None),
        ("worker.updated", worker_id),
        ("agent.config_changed", None),
        ("worker.deleted", worker_id),
        ("agent.config_changed", None),
    ]


async def test_a_config_pull_of_a_new_version_is_published_once(api, app):
    user = await api.user(plan="personal")
    agent = await register_agent(user, gpus=1)
    async with recording(app, user) as events:
        await agent.config()
        await agent.config()  # the same version again: nothing new to show
        received = await events.until_quiet()
        await user.post(
            "/api/v1/workers",
            json={
                "agent_id": agent.agent_id,
                "name": "w",
                "gpu_ids": ["GPU-0"],
                "listen_port": 9100,
            },
        )
        await agent.config()
        after_change = await events.until_quiet()
    assert [(e.kind, e.data) for e in received] == [
        (
            EventKind.AGENT_UPDATED,
            {"changed": ["config_fetched"], "fetched_config_version": 1},
        )
    ]
    assert after_change[-1].data == {"changed": ["config_fetched"], "fetched_config_version": 2}


async def test_metrics_and_deletion_are_published_and_a_share_use_is_not(api, app, client):
    user = await api.user(plan="team")
    agent = await register_agent(user, gpus=1)
    worker_id = await default_worker(user, agent)
    share = await user.post(
        "/api/v1/shares", json={"worker_id": worker_id, "connection_ip": "203.0.113.7"}
    )
    async with recording(app, user) as events:
        metrics = await agent.http.post(
            f"/api/v1/agents/{agent.agent_id}/metrics",
            headers=agent.auth,
            json={
                "timestamp": NOW,
                "system": {"cpu_usage": 12.5, "memory_used_mb": 1000, "memory_total_mb": 64000},
                "gpus": [
                    {
                        "gpu_id": "GPU-0",
                        "utilization": 50,
                        "vram_used_mb": 100,
                        "vram_total_mb": 24564,
                        "temperature": 60,
                        "power_usage_w": 200.5,
                    }
                ],
            },
        )
        assert metrics.status_code == 200, metrics.text
        # Told once the points are stored, so a live chart can read them back.
        assert await events.until_quiet() == []
        await flush_metrics(app)
        stored = await events.until_quiet()
        # No live view shows a share link's uses: they cost the bus nothing.
        assert (await client.get(f"/s/{share.json()['short_code']}")).status_code == 200
        after_use = await events.until_quiet()
        await user.delete(f"/api/v1/agents/{agent.agent_id}")
        deleted = await events.until_quiet()
    assert [e.kind for e in stored] == [EventKind.METRICS_REPORTED]
    assert stored[0].data == {"recorded_at": datetime.fromisoformat(NOW).isoformat()}
    assert after_use == []
    assert [e.kind for e in deleted] == [EventKind.AGENT_DELETED]


async def test_silence_is_announced_once_and_a_report_rearms_it(api, app):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    pending = await register_agent(user, gpus=1, hostname="never-reports")
    ctx = app.state.ctx
    state = presence.SweepState()
    await agent.report(report())
    async with recording(app, user) as events:
        assert await presence.sweep(ctx=ctx, state=state) == 0
        clock.advance(timedelta(seconds=ctx.settings.agent_offline_seconds + 1))
        assert await presence.sweep(ctx=ctx, state=state) == 1
        assert await presence.sweep(ctx=ctx, state=state) == 0
        # A second instance (its own state) finds nothing left to claim.
        assert await presence.sweep(ctx=ctx, state=presence.SweepState()) == 0
        offline = await events.until_quiet()
        await agent.report(report())
        online = await events.until_quiet()
        clock.advance(timedelta(seconds=ctx.settings.agent_offline_seconds + 1))
        assert await presence.sweep(ctx=ctx, state=state) == 1
        again = await events.until_quiet()
    assert [(e.kind, e.agent_id, e.data) for e in offline] == [
        (EventKind.AGENT_OFFLINE, agent.agent_id, {"reason": "silent"})
    ]
    assert [e.kind for e in online] == [EventKind.AGENT_ONLINE]
    assert [e.kind for e in again] == [EventKind.AGENT_OFFLINE]
    assert not await Agent.filter(id=pending.agent_id, offline_notified=True).exists()


async def test_a_shutdown_announces_itself_and_the_sweeper_does_not_repeat_it(api, app):
    user = await api.user()
    agent = await register_agent(user, gpus=1)
    ctx = app.state.ctx
    await agent.report(report())
    async with recording(app, user) as events:
        await agent.report(report(event="shutdown"))
        clock.advance(timedelta(seconds=ctx.settings.agent_offline_seconds + 1))
        assert await presence.sweep(ctx=ctx, state=presence.SweepState()) == 0
        received = await events.until_quiet()
    assert [e.kind for e in received] == [EventKind.AGENT_OFFLINE]


async def test_events_carry_no_secret(api, app):
    user = await api.user(plan="personal")
    pat = await user.create_pat()
    async with recording(app, user) as events:
        agent = await register_agent(user, gpus=1)
        await agent.report(report())
        await agent.config()
        received = await events.until_quiet()
    encoded = "".join(e.encode() for e in received)
    assert received
    for secret in (agent.secret, pat, "gpgo_inst_", "gpgo_agent_", "gpgo_pat_"):
        assert secret not in encoded


async def test_a_mass_silence_is_announced_in_batches_once_each(api, app):
    # A site losing its network: many agents fall silent together.
    user = await api.user()
    ctx = app.state.ctx
    now = clock.now()
    count = presence.BATCH * 2 + 7
    await Agent.bulk_create(
        [
            Agent(
                user_id=user.user_id,
                secret_hash=hash_token(new_token(TokenKind.AGENT)),
                hostname=f"rack-{i:04d}",
                os="linux",
                arch="amd64",
                last_seen_at=now,
                created_at=now,
                updated_at=now,
            )
            for i in range(count)
        ]
    )
    clock.advance(timedelta(seconds=ctx.settings.agent_offline_seconds + 1))
    async with recording(app, user) as events:
        with count_sql() as statements:
            assert await presence.sweep(ctx=ctx, state=presence.SweepState()) == count
        assert await presence.sweep(ctx=ctx, state=presence.SweepState()) == 0
        received = await events.until_quiet()
    # Two statements per batch, not per agent: the claim, and who listens to agent.offline
    # (webhooks; in the claim's transaction).
    assert len(statements) == 6, statements
    # A subscriber that does not keep up loses events beyond its queue (at most once);
    # what it got is each agent's silence, never one twice.
    assert received and {e.kind for e in received} == {EventKind.AGENT_OFFLINE}
    assert len({e.agent_id for e in received}) == len(received)
    assert await Agent.filter(user_id=user.user_id, offline_notified=False).count() == 0
