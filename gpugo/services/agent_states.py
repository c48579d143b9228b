"""What a status report is compared against, held in memory: a steady heartbeat
answered without a database round trip.

An entry is the row ``status_reports`` reads for an agent (agent, plan, GPUs, workers,
connections, shares), keyed by the agent's secret hash. It is kept exact by the event
bus: every change to what the row holds publishes an event naming the agent (or, for
a plan, the user) after its commit, and every process drops the entry when it hears it
(the writer's own process synchronously, in ``publish``). An entry is used only
while the bus delivers (the listener connected, no gap in a sender's sequence since
the entry was read: ``EventBus.epoch``); otherwise the report reads the database.

A read racing a change cannot leave a stale entry behind: ``begin()`` notes the
invalidation count before the read, and ``store()`` refuses the row if an
invalidation for that agent (or its user, or all) came in since. Entries older than
``GPUGO_AGENT_STATE_CACHE_SECONDS`` are read again whatever the bus says (a bound for
what no event reports: a process that died before sending its events, an SQLite
database changed by another process). At most ``GPUGO_AGENT_STATE_CACHE_ENTRIES``
entries, the least recently used dropped first. docs/decisions.md has the window.
"""

from __future__ import annotations

import sys
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise import connections

from gpugo.events import Event, EventBus, EventKind

# Events that change nothing a report is compared against.
_HARMLESS = frozenset(
    {
        EventKind.METRICS_REPORTED,
        EventKind.INSTALL_TOKEN_USED,
        # A request only; the restarted worker's new pid comes in the agent's next report.
        EventKind.WORKER_RESTART_REQUESTED,
        EventKind.AGENT_REGISTERED,
    }
)
# Invalidations remembered for reads in flight; a read older than all of them is not stored.
_RECENT = 4096


@dataclass(slots=True)
class CachedState:
    agent_id: str
    user_id: str
    # The row's columns as read (status_reports._STATE); parsed on each use.
    row: tuple[Any, ...]
    # The newest last_seen_at this process wrote or handed to the LastSeenWriter.
    last_seen_at: datetime | None
    epoch: int
    loaded_at: float
    # The fingerprint of a report body (all but its readings) found to change nothing of
    # ``row``: the same body again is a heartbeat without being compared (row is never
    # changed in place; any change drops the whole entry).
    unchanged_digest: bytes | None = None


@dataclass(frozen=True, slots=True)
class ReadToken:
    generation: int
    epoch: int


class AgentStates:
    def __init__(self, bus: EventBus, *, max_entries: int, ttl_seconds: float) -> None:
        self._bus = bus
        self.max_entries = max_entries
        self.ttl_seconds = ttl_seconds
        self._entries: OrderedDict[str, CachedState] = OrderedDict()
        self._by_agent: dict[str, str] = {}
        self._generation = 0
        # (generation, agent_id, user_id) of recent invalidations; (g, None, None): all.
        self._recent: deque[tuple[int, str | None, str | None]] = deque(maxlen=_RECENT)
        # SQLite: PRAGMA data_version as last read (see other_writers).
        self._data_version: int | None = None
        bus.watch(self.on_event)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, secret_hash: str) -> bool:
        return secret_hash in self._entries

    @property
    def enabled(self) -> bool:
        return self.max_entries > 0

    @property
    def holding(self) -> bool:
        """Whether a row read now may be kept: on, and the bus delivering its events."""
        return self.enabled and self._bus.delivering

    def get(self, secret_hash: str) -> CachedState | None:
        """The entry, if it may be trusted now; None sends the report to the database."""
        if not self._entries or not self._bus.delivering:
            return None
        entry = self._entries.get(secret_hash)
        if entry is None:
            return None
        if entry.epoch != self._bus.epoch or time.monotonic() - entry.loaded_at > self.ttl_seconds:
            self._drop(secret_hash)
            return None
        self._entries.move_to_end(secret_hash)
        return entry

    async def other_writers(self) -> None:
        """SQLite has no bus between processes, yet the command line (``user set-plan``)
        writes the same file: ``PRAGMA data_version`` changes when another connection
        committed (not this process's own writes; it reads no page). Then everything held
        is dropped. On PostgreSQL every writer notifies instead: nothing to do."""
        if not self._entries:
            return
        client = connections.get("default")
        if client.capabilities.dialect != "sqlite":
            return
        _, rows = await client.execute_query("PRAGMA data_version")
        version = int(rows[0][0])
        if self._data_version is not None and version != self._data_version:
            self.clear()
        self._data_version = version

    def begin(self) -> ReadToken:
        """Call before reading the row that ``store`` may keep."""
        return ReadToken(self._generation, self._bus.epoch)

    def store(
        self,
        secret_hash: str,
        *,
        agent_id: str,
        user_id: str,
        row: tuple[Any, ...],
        last_seen_at: datetime | None,
        token: ReadToken,
        unchanged_digest: bytes | None = None,
        ours_since: ReadToken | None = None,
    ) -> bool:
        """Keep a row read (or written) after ``begin()``, unless something changed since;
        whether it was kept.

        ``ours_since``: a writer keeping the row it wrote, after telling its own events
        (which drop the agent's entry here at once): invalidations from that ``begin()``
        on are those events, told synchronously before this call, and do not count.
        """
        if not self.holding or token.epoch != self._bus.epoch:
            return False
        until = self._generation
        if ours_since is not None:
            if ours_since.epoch != token.epoch:
                return False
            until = ours_since.generation
        if self._changed_since(token.generation, agent_id, user_id, until):
            return False
        self._drop(secret_hash)
        stale = self._by_agent.get(agent_id)
        if stale is not None:
            self._drop(stale)  # the agent's previous secret
        self._entries[secret_hash] = CachedState(
            agent_id=agent_id,
            user_id=sys.intern(user_id),
            row=row,
            last_seen_at=last_seen_at,
            epoch=token.epoch,
            loaded_at=time.monotonic(),
            unchanged_digest=unchanged_digest,
        )
        self._by_agent[agent_id] = secret_hash
        while len(self._entries) > self.max_entries:
            _, entry = self._entries.popitem(last=False)
            self._by_agent.pop(entry.agent_id, None)
        return True

    def _changed_since(self, generation: int, agent_id: str, user_id: str, until: int) -> bool:
        """Whether an invalidation after ``generation``, up to ``until``, concerns it."""
        if generation == until:
            return False
        if not self._recent or self._recent[0][0] > generation + 1:
            return True  # too many since: cannot tell
        for seen, agent, user in reversed(self._recent):
            if seen <= generation:
                break
            if seen > until:
                continue
            if agent == agent_id or (agent is None and user in (None, user_id)):
                return True
        return False

    def forget_agent(self, agent_id: str) -> None:
        self._invalidated(agent_id, None)
        secret_hash = self._by_agent.get(agent_id)
        if secret_hash is not None:
            self._drop(secret_hash)

    def forget_user(self, user_id: str) -> None:
        """Every agent of the user (a plan change: rare, so a scan)."""
        self._invalidated(None, user_id)
        for secret_hash in [h for h, e in self._entries.items() if e.user_id == user_id]:
            self._drop(secret_hash)

    def clear(self) -> None:
        self._invalidated(None, None)
        self._entries.clear()
        self._by_agent.clear()

    def on_event(self, event: Event) -> None:
        if event.kind in _HARMLESS:
            return
        if event.agent_id is not None:
            self.forget_agent(event.agent_id)
        else:
            self.forget_user(event.user_id)

    def _invalidated(self, agent_id: str | None, user_id: str | None) -> None:
        self._generation += 1
        self._recent.append((self._generation, agent_id, user_id))

    def _drop(self, secret_hash: str) -> None:
        entry = self._entries.pop(secret_hash, None)
        if entry is not None and self._by_agent.get(entry.agent_id) == secret_hash:
            del self._by_agent[entry.agent_id]
