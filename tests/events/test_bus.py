from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from gpugo.events import Event, EventBus, EventKind, PostgresEventBus
from gpugo.events.postgres import CHANNEL, asyncpg_dsn


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


async def test_each_event_reaches_every_matching_subscription_once():
    bus = EventBus()
    event = Event(EventKind.WORKER_CREATED, user_id="u1", agent_id="a1", resource_id="w1")
    async with (
        bus.subscribe() as everything,
        bus.subscribe(user_id="u1") as user,
        bus.subscribe(user_id="u1", agent_id="a1") as agent,
        bus.subscribe(agent_id="a1") as any_users_agent,
        bus.subscribe(user_id="u1", agent_id="a2") as other_agent,
        bus.subscribe(user_id="u2") as other_user,
    ):
        assert bus.subscriber_count == 6
        await bus.publish(event)
        for subscription in (everything, user, agent, any_users_agent):
            assert await _next(subscription) == event
            assert subscription.queue.empty()
        assert other_agent.queue.empty() and other_user.queue.empty()
    assert bus.subscriber_count == 0


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


@pytest.fixture
async def two_instances(database_url: str) -> AsyncIterator[tuple[PostgresEventBus, ...]]:
    """Two instances' buses on one PostgreSQL database, started."""
    if not database_url.startswith("postgres"):
        pytest.skip("LISTEN/NOTIFY needs PostgreSQL")
    buses = PostgresEventBus(database_url), PostgresEventBus(database_url)
    for bus in buses:
        await bus.start()
    yield buses
    for bus in buses:
        await bus.stop()


async def test_postgres_bus_delivers_every_event_to_every_instance(two_instances):
    first, second = two_instances
    async with (
        first.subscribe(user_id="u1") as on_first,
        second.subscribe(user_id="u1") as on_second,
    ):
        event = Event(EventKind.WORKER_CREATED, user_id="u1", agent_id="a1", resource_id="w1")
        await first.publish(event)
        assert await _next(on_first) == event
        assert await _next(on_second) == event


async def test_watchers_hear_each_event_once_their_own_when_published(two_instances):
    """A cache watching the bus (agent_states) drops an entry per event it hears; hearing
    its own process's event again when the NOTIFY comes back would drop an entry read
    after the change, and make the next heartbeat read the database for nothing."""
    first, second = two_instances
    heard: dict[str, list[Event]] = {"first": [], "second": []}
    first.watch(heard["first"].append)
    second.watch(heard["second"].append)
    async with (
        first.subscribe(user_id="u1") as on_first,
        second.subscribe(user_id="u1") as on_second,
    ):
        event = Event(EventKind.WORKER_UPDATED, user_id="u1", agent_id="a1", resource_id="w1")
        await first.publish(event)
        assert heard["first"] == [event]  # at once, before the NOTIFY goes out
        # Both instances' subscribers get it through PostgreSQL: the echo has arrived.
        assert await _next(on_first) == event
        assert await _next(on_second) == event
    assert heard == {"first": [event], "second": [event]}


async def test_postgres_bus_sends_bursts_in_order_and_keeps_identical_events(two_instances):
    first, second = two_instances
    async with second.subscribe(user_id="u1") as on_second:
        events = [
            Event(EventKind.CONFIG_CHANGED, user_id="u1", agent_id="a1", data={"n": i % 3})
            for i in range(200)  # fewer than a subscription holds
        ]
        # Published at once (as by concurrent requests): they share NOTIFY statements,
        # where PostgreSQL would fold identical payloads if nothing told them apart.
        await asyncio.gather(*(first.publish(event) for event in events))
        assert [await _next(on_second) for _ in events] == events


async def test_postgres_bus_packs_a_burst_into_notifications_of_the_allowed_size(two_instances):
    """A batch's events share notifications, up to PostgreSQL's payload limit in bytes:
    names of 2-byte characters make the bytes twice the characters."""
    first, second = two_instances
    async with first.subscribe(user_id="u1") as on_first, second.subscribe() as on_second:
        events = [
            Event(
                EventKind.AGENT_UPDATED, user_id="u1", agent_id="a1", data={"name": f"é{i}" * 700}
            )
            for i in range(60)
        ]
        for event in events:
            first.emit(event)
        assert [await _next(on_second) for _ in events] == events
        assert [await _next(on_first) for _ in events] == events


async def test_another_versions_event_kind_is_passed_over_quietly(
    two_instances, database_url, caplog
):
    """During a rolling upgrade an instance of another version sends kinds this one does
    not know (added since, or retired: ``share.used``); they are skipped without a
    warning per event, and the events beside them in the notification still arrive."""
    _, second = two_instances
    known = Event(EventKind.WORKER_CREATED, user_id="u1", agent_id="a1", resource_id="w1")
    retired = '{"kind": "share.used", "user_id": "u1", "resource_id": "s1"}'
    async with second.subscribe(user_id="u1") as on_second:
        connection = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            await connection.execute(
                "SELECT pg_notify($1, $2)", CHANNEL, f"{retired}\n{known.encode()}"
            )
        finally:
            await connection.close()
        assert await _next(on_second) == known
    assert "malformed" not in caplog.text


async def test_postgres_bus_flushes_what_was_published_before_it_stops(database_url):
    if not database_url.startswith("postgres"):
        pytest.skip("LISTEN/NOTIFY needs PostgreSQL")
    publisher, listener = PostgresEventBus(database_url), PostgresEventBus(database_url)
    await listener.start()
    await publisher.start()
    try:
        async with listener.subscribe(user_id="u1") as received:
            event = Event(EventKind.AGENT_OFFLINE, user_id="u1", agent_id="a1")
            await publisher.publish(event)
            await publisher.stop()
            assert await _next(received) == event
    finally:
        await listener.stop()


async def test_closing_the_streams_ends_every_subscription_now_and_later():
    bus = EventBus()
    async with bus.subscribe(user_id="u1") as open_before:
        await bus.publish(Event(EventKind.AGENT_ONLINE, user_id="u1", agent_id="a1"))
        bus.close_streams()
        # What was queued first is still delivered, then the end.
        assert (await _next(open_before)).kind is EventKind.AGENT_ONLINE
        assert await _next(open_before) is None
        assert await _next(open_before) is None
        await bus.publish(Event(EventKind.AGENT_OFFLINE, user_id="u1", agent_id="a1"))
        assert open_before.queue.empty()
        async with bus.subscribe(user_id="u1") as opened_after:
            assert [event async for event in opened_after] == []
    assert bus.subscriber_count == 0
