from __future__ import annotations

import asyncio

import pytest

from gpugo.events import Event, EventBus, EventKind, PostgresEventBus


async def _next(subscription) -> Event:
    return await asyncio.wait_for(subscription.get(), 2.0)


async def test_subscribers_receive_only_their_own_users_events():
    bus = EventBus()
    async with bus.subscribe(user_id="u1") as mine, bus.subscribe(user_id="u2") as theirs:
        await bus.publish(Event(EventKind.WORKER_CREATED, user_id="u1", agent_id="a1"))
        await bus.publish(Event(EventKind.WORKER_CREATED, user_id="u2", agent_id="a2"))
        assert (await _next(mine)).agent_id == "a1"
        assert (await _next(theirs)).agent_id == "a2"
        assert mine.queue.empty() and theirs.queue.empty()
    assert bus.subscriber_count == 0


async def test_agent_filter_narrows_a_users_events():
    bus = EventBus()
    async with bus.subscribe(user_id="u1", agent_id="a2") as one_agent:
        await bus.publish(Event(EventKind.CONFIG_CHANGED, user_id="u1", agent_id="a1"))
        await bus.publish(Event(EventKind.CONFIG_CHANGED, user_id="u1", agent_id="a2"))
        assert (await _next(one_agent)).agent_id == "a2"
        assert one_agent.queue.empty()


async def test_a_slow_subscriber_keeps_the_newest_events_within_its_bound():
    bus = EventBus()
    async with bus.subscribe(user_id="u1") as slow:
        for version in range(1000):
            await bus.publish(
                Event(EventKind.CONFIG_CHANGED, user_id="u1", data={"config_version": version})
            )
        assert slow.queue.qsize() == slow.queue.maxsize
        last = None
        while not slow.queue.empty():
            last = slow.queue.get_nowait()
        assert last is not None and last.data["config_version"] == 999


async def test_postgres_bus_delivers_every_event_to_every_instance(database_url):
    if not database_url.startswith("postgres"):
        pytest.skip("LISTEN/NOTIFY needs PostgreSQL")
    first, second = PostgresEventBus(database_url), PostgresEventBus(database_url)
    await first.start()
    await second.start()
    try:
        async with (
            first.subscribe(user_id="u1") as on_first,
            second.subscribe(user_id="u1") as on_second,
        ):
            event = Event(EventKind.WORKER_CREATED, user_id="u1", agent_id="a1", resource_id="w1")
            await first.publish(event)
            assert await _next(on_first) == event
            assert await _next(on_second) == event
    finally:
        await first.stop()
        await second.stop()
