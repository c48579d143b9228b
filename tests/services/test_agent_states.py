"""The in-memory state of status reports: what invalidates it, its bound, its lifetime."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from gpugo.events import Event, EventBus, EventKind
from gpugo.services.agent_states import AgentStates

ROW = ("agt", "usr", "free", 1, None, None, False, None, None, None, None)


class CutBus(EventBus):
    """The in-process bus whose delivery can be cut, as a lost LISTEN connection does."""

    def __init__(self) -> None:
        super().__init__()
        self.up = True
        self.generation = 0

    @property
    def delivering(self) -> bool:
        return self.up

    @property
    def epoch(self) -> int:
        return self.generation


def keep(states: AgentStates, secret: str, agent: str, user: str = "usr", token=None) -> None:
    states.store(
        secret,
        agent_id=agent,
        user_id=user,
        row=ROW,
        last_seen_at=None,
        token=token or states.begin(),
    )


@pytest.fixture
def bus() -> CutBus:
    return CutBus()


@pytest.fixture
def states(bus: CutBus) -> AgentStates:
    return AgentStates(bus, max_entries=100, ttl_seconds=60)


def test_an_event_naming_the_agent_drops_it_and_only_it(bus, states):
    keep(states, "h1", "a1")
    keep(states, "h2", "a2")
    bus.dispatch(Event(EventKind.WORKER_UPDATED, "usr", "a1", resource_id="w"))
    assert states.get("h1") is None
    assert states.get("h2") is not None


def test_metrics_and_token_events_change_nothing_held(bus, states):
    keep(states, "h1", "a1")
    bus.dispatch(Event(EventKind.METRICS_REPORTED, "usr", "a1"))
    bus.dispatch(Event(EventKind.INSTALL_TOKEN_USED, "usr", "a1", resource_id="t"))
    assert states.get("h1") is not None


def test_an_event_of_the_user_drops_all_its_agents(bus, states):
    keep(states, "h1", "a1", "u1")
    keep(states, "h2", "a2", "u1")
    keep(states, "h3", "a3", "u2")
    bus.dispatch(Event(EventKind.AGENT_UPDATED, "u1"))
    assert [states.get(h) is not None for h in ("h1", "h2", "h3")] == [False, False, True]


def test_a_read_that_raced_a_change_is_not_kept(bus, states):
    token = states.begin()
    # The change commits and its event arrives while the row is on its way.
    bus.dispatch(Event(EventKind.AGENT_DELETED, "usr", "a1"))
    keep(states, "h1", "a1", token=token)
    assert states.get("h1") is None
    # Another agent's change does not spoil this read, nor a later read.
    token = states.begin()
    bus.dispatch(Event(EventKind.AGENT_DELETED, "usr", "a2"))
    keep(states, "h1", "a1", token=token)
    assert states.get("h1") is not None


def test_a_writer_keeps_what_it_wrote_despite_its_own_events_and_only_those(bus, states):
    def write_then_keep(before_own_events: list[Event]) -> bool:
        token = states.begin()  # before the write
        for event in before_own_events:  # heard while the write was on its way
            bus.dispatch(event)
        ours = states.begin()
        bus.dispatch(Event(EventKind.WORKER_STATUS_CHANGED, "usr", "a1", resource_id="w"))
        states.store(
            "h1",
            agent_id="a1",
            user_id="usr",
            row=ROW,
            last_seen_at=None,
            token=token,
            ours_since=ours,
        )
        return states.get("h1") is not None

    assert write_then_keep([])
    # Another agent's change, the same agent's harmless event: still kept.
    assert write_then_keep(
        [
            Event(EventKind.AGENT_UPDATED, "usr", "a2"),
            Event(EventKind.METRICS_REPORTED, "usr", "a1"),
        ]
    )
    # A change of the agent (or of its user) by someone else, heard between the write and
    # its own events: what it wrote may be stale, not kept.
    assert not write_then_keep([Event(EventKind.WORKER_UPDATED, "usr", "a1", resource_id="w")])
    assert not write_then_keep([Event(EventKind.WEBHOOKS_CHANGED, "usr")])
    # Events missed meanwhile (a new epoch): not kept either.
    token = states.begin()
    bus.generation += 1
    states.store(
        "h2",
        agent_id="a2",
        user_id="usr",
        row=ROW,
        last_seen_at=None,
        token=token,
        ours_since=states.begin(),
    )
    assert states.get("h2") is None


def test_a_read_older_than_every_remembered_change_is_not_kept(bus, states):
    token = states.begin()
    for n in range(5000):
        bus.dispatch(Event(EventKind.AGENT_UPDATED, "usr", f"other{n}"))
    keep(states, "h1", "a1", token=token)
    assert states.get("h1") is None


def test_nothing_is_used_or_kept_while_the_bus_is_cut(bus, states):
    keep(states, "h1", "a1")
    bus.up = False
    assert states.get("h1") is None
    keep(states, "h2", "a2")
    bus.up = True
    assert states.get("h2") is None


def test_what_was_read_before_events_were_missed_is_dropped(bus, states):
    keep(states, "h1", "a1")
    token = states.begin()
    bus.generation += 1  # a reconnect, or a gap in a sender's sequence
    assert states.get("h1") is None
    keep(states, "h2", "a2", token=token)
    assert states.get("h2") is None


def test_at_most_max_entries_the_least_recently_used_go_first(bus):
    states = AgentStates(bus, max_entries=2, ttl_seconds=60)
    keep(states, "h1", "a1")
    keep(states, "h2", "a2")
    assert states.get("h1") is not None  # h2 is now the least recent
    keep(states, "h3", "a3")
    assert len(states) == 2
    assert states.get("h2") is None
    assert states.get("h1") is not None and states.get("h3") is not None


def test_a_new_secret_replaces_the_agents_entry(states):
    keep(states, "old", "a1")
    keep(states, "new", "a1")
    assert states.get("old") is None and states.get("new") is not None
    assert len(states) == 1


def test_an_entry_is_read_again_after_its_lifetime(bus, monkeypatch):
    states = AgentStates(bus, max_entries=10, ttl_seconds=5)
    keep(states, "h1", "a1")
    later = time.monotonic() + 6
    monkeypatch.setattr(time, "monotonic", lambda: later)
    assert states.get("h1") is None


def test_zero_entries_keeps_nothing(bus):
    states = AgentStates(bus, max_entries=0, ttl_seconds=5)
    keep(states, "h1", "a1")
    assert len(states) == 0


def test_memory_is_bounded_by_the_entries(bus):
    states = AgentStates(bus, max_entries=1000, ttl_seconds=60)
    tracemalloc.start()
    try:
        for n in range(3000):
            keep(states, f"{n:064x}", f"agt_{n:022d}")
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(states) == 1000
    # The shared row aside, an entry is its key, its index and its slots: well under 1 KB.
    assert held < 1000 * 1024, held
