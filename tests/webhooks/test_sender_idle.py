"""The sender leaves an endpoint alone while the head of its queue waits for a retry."""

from __future__ import annotations

import asyncio

import pytest

from gpugo.webhook_events import SUBSCRIBABLE
from tests.sql_counter import count_sql

API = "/api/v1/webhooks"


@pytest.fixture
def settings(settings):
    # A retry far off, and the sender looking for due deliveries often.
    return settings.replace(
        webhooks_allow_private=True,
        webhooks_backoff_seconds=300.0,
        webhooks_backoff_max_seconds=300.0,
        webhooks_timeout_seconds=2.0,
        webhooks_lease_seconds=5.0,
        webhooks_poll_seconds=0.2,
    )


async def test_later_due_deliveries_behind_a_waiting_head_do_not_spin_the_sender(api, receiver):
    user = await api.user()
    port = receiver.port
    receiver.stop()
    response = await user.post(
        API, json={"url": f"http://127.0.0.1:{port}/hook", "events": list(SUBSCRIBABLE)}
    )
    one = f"{API}/{response.json()['webhook_id']}"
    first = (await user.post(f"{one}/test")).json()["delivery_id"]

    async def tried() -> bool:
        deliveries = (await user.get(f"{one}/deliveries")).json()["deliveries"]
        return any(d["delivery_id"] == first and d["attempts"] >= 1 for d in deliveries)

    for _ in range(200):
        if await tried():
            break
        await asyncio.sleep(0.05)
    assert await tried()
    # Later deliveries, due at once, wait behind the head (order per endpoint).
    for _ in range(3):
        assert (await user.post(f"{one}/test")).status_code in (200, 201, 202)
    with count_sql() as sql:
        await asyncio.sleep(1.0)
    claims = [s for s in sql if "SET lease_owner" in s and "lease_until" in s]
    # The poll every 0.2 s may look; it must not claim the endpoint again and again.
    assert len(claims) <= 6, f"{len(claims)} claims in one second"
    deliveries = (await user.get(f"{one}/deliveries")).json()["deliveries"]
    assert sorted(d["attempts"] for d in deliveries) == [0, 0, 0, 1]
