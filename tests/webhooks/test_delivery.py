"""Deliveries end to end: a real receiver on 127.0.0.1 gets each event from the real
action, signed; retries while it is down, in order, without duplicates; 410 disables;
a delivery that never succeeds is marked failed; a redelivery."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from gpugo import clock
from gpugo.models import Share
from gpugo.services import presence, shares
from gpugo.webhook_events import SUBSCRIBABLE
from tests.support import ISO_MS, eventually, moment, register_agent
from tests.webhooks.receiver import Receiver
from tests.webhooks.support import docs_verify

API = "/api/v1/webhooks"


@pytest.fixture
def settings(settings):
    return settings.replace(
        webhooks_allow_private=True,
        webhooks_backoff_seconds=0.1,
        webhooks_backoff_max_seconds=0.4,
        webhooks_timeout_seconds=2.0,
        webhooks_lease_seconds=5.0,
    )


async def subscribe(user, url: str, events: list[str] | None = None) -> dict[str, Any]:
    response = await user.post(API, json={"url": url, "events": events or list(SUBSCRIBABLE)})
    assert response.status_code == 201, response.text
    return response.json()


def report(**extra: Any) -> dict[str, Any]:
    return {"timestamp": moment().isoformat(), "gpus": [], "workers": [], **extra}


def check_signed(received, secret: str) -> None:
    verify = docs_verify()
    now = clock.now().timestamp()
    assert verify(secret, received.headers, received.body, now=now)
    assert not verify(secret, received.headers, received.body + b" ", now=now)
    assert not verify("gpgo_whsec_wrong", received.headers, received.body, now=now)
    # Replayed an hour later: refused.
    assert not verify(secret, received.headers, received.body, now=now + 3600)


async def test_each_event_from_its_real_action(api, app, receiver):
    ctx = app.state.ctx
    user = await api.user(plan="free")  # 2 GPUs, 2 workers
    hook = await subscribe(user, receiver.url())
    # agent.registered (1 GPU, the default worker: no limit filled yet)
    agent = await register_agent(user, gpus=1)
    # agent.online: its first report
    assert (await agent.report(report())).status_code == 200
    [worker_id] = [w["worker_id"] for w in (await user.get("/api/v1/workers")).json()["workers"]]
    # worker.failed: the running worker is reported stopped while enabled (it crashed)
    running = {"worker_id": worker_id, "status": "running", "gpu_ids": ["GPU-0"], "pid": 7}
    assert (await agent.report(report(workers=[running]))).status_code == 200
    stopped = {**running, "status": "stopped", "pid": 0}
    assert (await agent.report(report(workers=[stopped]))).status_code == 200
    # plan.limit_reached: the second worker fills the free plan's two
    second = await user.post(
        "/api/v1/workers",
        json={"agent_id": agent.agent_id, "name": "w2", "gpu_ids": ["GPU-0"], "listen_port": 9100},
    )
    assert second.status_code == 201, second.text
    # share.used_up: a one-use link used once
    share = await user.post(
        "/api/v1/shares", json={"worker_id": worker_id, "connection_ip": "10.0.0.1", "max_uses": 1}
    )
    code = share.json()["short_code"]
    assert (await user.http.get(f"/s/{code}")).status_code == 200
    # Delivered before the test moves the clock (a lease is measured by that clock).
    await eventually(lambda: len(receiver.snapshot()) == 5)
    # share.expired: a link past its expiry, found by the sweeper
    expiring = await user.post(
        "/api/v1/shares",
        json={
            "worker_id": worker_id,
            "connection_ip": "10.0.0.2",
            "expires_at": moment(timedelta(seconds=30)).isoformat(),
        },
    )
    assert expiring.status_code == 201, expiring.text
    clock.advance(timedelta(minutes=1))
    assert await shares.withdraw_expired(ctx=ctx) == 1
    # agent.offline: its shutdown report
    assert (await agent.report(report(event="shutdown"))).status_code == 200
    # agent.deleted
    assert (await user.delete(f"/api/v1/agents/{agent.agent_id}")).status_code == 200

    expected = [
        "agent.registered",
        "agent.online",
        "worker.failed",
        "plan.limit_reached",
        "share.used_up",
        "share.expired",
        "agent.offline",
        "agent.deleted",
    ]
    got = await eventually(
        lambda: len(receiver.snapshot()) >= len(expected) and receiver.snapshot()
    )
    assert [r.headers["x-gpugo-event"] for r in got] == expected
    for r in got:
        check_signed(r, hook["secret"])
        body = r.json
        assert set(body) == {"id", "type", "created_at", "data"}
        assert body["id"] == r.delivery and body["type"] == r.headers["x-gpugo-event"]
        assert ISO_MS.match(body["created_at"])
        assert r.headers["content-type"] == "application/json"
    data = {r.json["type"]: r.json["data"] for r in got}
    assert data["agent.registered"]["agent"]["agent_id"] == agent.agent_id
    assert data["agent.registered"]["agent"]["status"] == "pending"
    assert data["agent.online"]["agent"]["status"] == "online"
    assert data["worker.failed"]["reason"] == "stopped"
    assert data["worker.failed"]["worker"]["worker_id"] == worker_id
    assert data["worker.failed"]["worker"]["status"] == "stopped"
    assert data["plan.limit_reached"] == {"limit": "workers", "plan": "free", "max": 2, "used": 2}
    assert data["share.used_up"]["share"]["share_id"] == share.json()["share_id"]
    assert data["share.used_up"]["share"]["used_count"] == 1
    assert "short_code" not in data["share.used_up"]["share"]
    assert data["share.expired"]["share"]["share_id"] == expiring.json()["share_id"]
    assert data["agent.offline"] == {
        "agent": {**data["agent.offline"]["agent"], "status": "offline"},
        "reason": "shutdown",
    }
    assert data["agent.deleted"]["agent"]["hostname"] == "gpu-host-1"
    # Every delivery is marked delivered with its status and timing.
    listed = (await user.get(f"{API}/{hook['webhook_id']}/deliveries")).json()["deliveries"]
    assert {d["status"] for d in listed} == {"delivered"}
    assert all(d["response_status"] == 200 and d["attempts"] == 1 for d in listed)
    assert all(isinstance(d["duration_ms"], int) and d["error"] is None for d in listed)


async def test_a_silent_agent_found_by_the_sweeper_and_a_restart(api, app, receiver):
    user = await api.user(plan="pro")
    hook = await subscribe(user, receiver.url(), ["agent.offline", "worker.failed"])
    agent = await register_agent(user, gpus=1)
    assert (await agent.report(report())).status_code == 200
    [worker_id] = [w["worker_id"] for w in (await user.get("/api/v1/workers")).json()["workers"]]
    running = {"worker_id": worker_id, "status": "running", "gpu_ids": ["GPU-0"], "pid": 7}
    assert (await agent.report(report(workers=[running]))).status_code == 200
    # restarts rising is a failure too
    again = report(workers=[{**running, "restarts": 1}])
    assert (await agent.report(again)).status_code == 200
    # A disabled worker stopping is no failure.
    assert (await user.patch(f"/api/v1/workers/{worker_id}", json={"enabled": False})).is_success
    stopped = report(workers=[{**running, "restarts": 1, "status": "stopped", "pid": 0}])
    assert (await agent.report(stopped)).status_code == 200
    await eventually(lambda: len(receiver.snapshot()) == 1)
    clock.advance(timedelta(minutes=4))
    state = presence.SweepState()
    assert await presence.sweep(ctx=app.state.ctx, state=state) == 1
    assert await presence.sweep(ctx=app.state.ctx, state=state) == 0
    got = await eventually(lambda: len(receiver.snapshot()) >= 2 and receiver.snapshot())
    assert [(r.json["type"], r.json["data"]["reason"]) for r in got] == [
        ("worker.failed", "restarted"),
        ("agent.offline", "silent"),
    ]
    for r in got:
        check_signed(r, hook["secret"])


@pytest.mark.parametrize("how", ["created", "events changed", "enabled"])
async def test_an_endpoint_added_while_the_agent_reports_hears_its_next_failure(api, receiver, how):
    # The agent's state is held in memory (steady reports) when the endpoint starts
    # listening; whether anyone listens is held with that state (and a change of the
    # workers alone is then written from it, on PostgreSQL), so the change must not be
    # missed.
    user = await api.user(plan="pro")
    agent = await register_agent(user, gpus=1)
    if how == "events changed":
        hook = await subscribe(user, receiver.url(), ["agent.online"])
    elif how == "enabled":
        hook = await subscribe(user, receiver.url(), ["worker.failed"])
        changed = await user.patch(f"{API}/{hook['webhook_id']}", json={"enabled": False})
        assert changed.status_code == 200, changed.text
    assert (await agent.report(report())).status_code == 200
    [worker_id] = [w["worker_id"] for w in (await user.get("/api/v1/workers")).json()["workers"]]
    running = {"worker_id": worker_id, "status": "running", "gpu_ids": ["GPU-0"], "pid": 7}
    for _ in range(3):
        assert (await agent.report(report(workers=[running]))).status_code == 200
    if how == "created":
        hook = await subscribe(user, receiver.url(), ["worker.failed"])
    else:
        change = {"events": ["worker.failed"]} if how == "events changed" else {"enabled": True}
        changed = await user.patch(f"{API}/{hook['webhook_id']}", json=change)
        assert changed.status_code == 200, changed.text
    stopped = report(workers=[{**running, "status": "stopped", "pid": 0}])
    assert (await agent.report(stopped)).status_code == 200
    failed = "worker.failed"
    [got] = await eventually(
        lambda: len(receiver.of_type(failed)) == 1 and receiver.of_type(failed)
    )
    assert (got.json["type"], got.json["data"]["reason"]) == ("worker.failed", "stopped")
    check_signed(got, hook["secret"])


async def test_down_then_up_every_delivery_arrives_in_order_once(api, receiver):
    user = await api.user()
    port = receiver.port
    receiver.stop()
    hook = await subscribe(user, f"http://127.0.0.1:{port}/hook")
    one = f"{API}/{hook['webhook_id']}"
    ids = [(await user.post(f"{one}/test")).json()["delivery_id"] for _ in range(5)]

    async def retried() -> bool:
        deliveries = (await user.get(f"{one}/deliveries")).json()["deliveries"]
        first = next(d for d in deliveries if d["delivery_id"] == ids[0])
        return first["attempts"] >= 3

    for _ in range(200):
        if await retried():
            break
        await asyncio_sleep(0.05)
    deliveries = (await user.get(f"{one}/deliveries")).json()["deliveries"]
    by_id = {d["delivery_id"]: d for d in deliveries}
    # The first waits for its retry; the later ones wait behind it, never tried.
    assert by_id[ids[0]]["status"] == "pending" and "ConnectError" in by_id[ids[0]]["error"]
    assert all(by_id[i]["attempts"] == 0 for i in ids[1:])

    up = Receiver(port).start()
    try:
        got = await eventually(lambda: len(up.snapshot()) >= 5 and up.snapshot())
        await asyncio_sleep(0.5)
        got = up.snapshot()
        assert [r.delivery for r in got] == ids
        deliveries = (await user.get(f"{one}/deliveries")).json()["deliveries"]
        assert {d["status"] for d in deliveries} == {"delivered"}
    finally:
        up.stop()


async def test_410_disables_the_endpoint(api, receiver):
    user = await api.user()
    receiver.behaviour.status = 410
    hook = await subscribe(user, receiver.url())
    one = f"{API}/{hook['webhook_id']}"
    await user.post(f"{one}/test")

    async def disabled() -> dict | None:
        body = (await user.get(one)).json()
        return body if not body["enabled"] else None

    body = None
    for _ in range(200):
        if body := await disabled():
            break
        await asyncio_sleep(0.05)
    assert body is not None and "410" in body["disabled_reason"]
    [delivery] = (await user.get(f"{one}/deliveries")).json()["deliveries"]
    assert delivery["status"] == "failed" and delivery["response_status"] == 410
    assert len(receiver.snapshot()) == 1


async def test_a_delivery_never_accepted_is_marked_failed_and_can_be_redelivered(
    api, app, receiver
):
    ctx = app.state.ctx
    ctx.webhooks.settings = ctx.webhooks.settings.replace(webhooks_retry_window_seconds=1.0)
    user = await api.user()
    receiver.behaviour.status = 500
    hook = await subscribe(user, receiver.url())
    one = f"{API}/{hook['webhook_id']}"
    first = (await user.post(f"{one}/test")).json()

    async def failed() -> dict | None:
        [d] = (await user.get(f"{one}/deliveries")).json()["deliveries"]
        return d if d["status"] == "failed" else None

    delivery = None
    for _ in range(200):
        if delivery := await failed():
            break
        await asyncio_sleep(0.05)
    assert delivery is not None
    assert delivery["response_status"] == 500 and delivery["attempts"] >= 2
    assert delivery["error"] == "The endpoint answered 500."
    # Every attempt was the same delivery: one id, one body.
    sent = receiver.snapshot()
    assert {r.delivery for r in sent} == {first["delivery_id"]}
    assert len({r.body for r in sent}) == 1

    receiver.behaviour.status = 204
    again = await user.post(f"{one}/deliveries/{first['delivery_id']}/redeliver")
    assert again.status_code == 200, again.text
    redelivered = again.json()
    assert redelivered["delivery_id"] != first["delivery_id"]
    assert redelivered["status"] == "pending"
    await eventually(
        lambda: any(r.delivery == redelivered["delivery_id"] for r in receiver.snapshot())
    )
    last = next(r for r in receiver.snapshot() if r.delivery == redelivered["delivery_id"])
    assert last.json["data"] == sent[0].json["data"]
    assert last.json["created_at"] == sent[0].json["created_at"]


async def test_a_rolled_back_change_sends_nothing(api, receiver):
    """An outbox row commits with its cause: a registration refused by the plan queues
    nothing (agent.registered and plan.limit_reached would both have been written)."""
    user = await api.user(plan="free")
    await subscribe(user, receiver.url())
    token = await user.install_token()
    http = user.client_for_agent()
    from tests.support import gpu_infos

    response = await http.post(
        "/api/v1/agents/register",
        json={"hostname": "big", "os": "linux", "arch": "amd64", "gpus": gpu_infos(3)},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 403
    from gpugo.models import WebhookDelivery

    assert await WebhookDelivery.all().count() == 0
    assert await Share.all().count() == 0


async def asyncio_sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


async def test_a_users_deliveries_per_minute_are_limited_and_wait(api, app, receiver):
    from gpugo.ratelimit import RateLimiter

    ctx = app.state.ctx
    limited = ctx.settings.replace(
        rate_limits_enabled=True, rate_limit_webhook_deliveries="2/minute"
    )
    ctx.webhooks.rate_limiter = RateLimiter(limited)
    user = await api.user()
    hook = await subscribe(user, receiver.url())
    one = f"{API}/{hook['webhook_id']}"
    ids = [(await user.post(f"{one}/test")).json()["delivery_id"] for _ in range(3)]
    await eventually(lambda: len(receiver.snapshot()) == 2)
    await asyncio_sleep(0.5)
    assert [r.delivery for r in receiver.snapshot()] == ids[:2]
    deliveries = {
        d["delivery_id"]: d for d in (await user.get(f"{one}/deliveries")).json()["deliveries"]
    }
    # The third waits (not dropped, not failed) for the next minute.
    assert deliveries[ids[2]]["status"] == "pending" and deliveries[ids[2]]["attempts"] == 0
