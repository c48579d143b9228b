"""Presence: telling live views when an agent falls silent.

An agent is offline once its last report is older than ``agent_offline_seconds``
(``agents.agent_state``); nothing happens at that moment, so a sweeper asks
the database every few seconds. Each silence is announced once, however many
instances sweep: the claim is one conditional UPDATE of ``offline_notified``
that only one instance can win. The next status report clears the mark.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from gpugo import clock
from gpugo.context import ServerContext
from gpugo.events import Event, EventKind
from gpugo.models import Agent

# Candidates read per statement, and statements per sweep (the rest waits for the next).
BATCH = 500
MAX_BATCHES = 20
# How far back a sweep looks again before the previous sweep's cutoff: instances whose
# clocks differ by less than this still announce every silence.
OVERLAP = timedelta(minutes=5)


@dataclass(slots=True)
class SweepState:
    """Where the previous sweep stopped; a fresh process starts with no floor (catch-up)."""

    floor: datetime | None = None


async def sweep(*, ctx: ServerContext, state: SweepState) -> int:
    """Announce every agent that fell silent since the last sweep; the number announced.

    Reads through the ``last_seen_at`` index, only over the window that the cutoff
    crossed since the previous sweep (widened by ``OVERLAP``). The first sweep of a
    process has no lower bound, so silences that began while no instance ran are
    announced too. On a database error the floor stays put and the next sweep
    covers the window again.
    """
    now = clock.now()
    cutoff = now - timedelta(seconds=ctx.settings.agent_offline_seconds)
    announced = 0
    query = Agent.filter(last_seen_at__lt=cutoff, offline_notified=False)
    if state.floor is not None:
        query = query.filter(last_seen_at__gte=state.floor)
    for _ in range(MAX_BATCHES):
        # A row read here leaves the query's result once handled (claimed here or by
        # another instance, or seen again), so the same query reads the next batch.
        rows = await query.order_by("last_seen_at").limit(BATCH).values("id", "user_id")
        for row in rows:
            announced += await _announce(
                ctx=ctx, agent_id=row["id"], user_id=row["user_id"], cutoff=cutoff
            )
        if len(rows) < BATCH:
            state.floor = cutoff - OVERLAP
            break
    return announced


async def _announce(*, ctx: ServerContext, agent_id: str, user_id: str, cutoff: datetime) -> int:
    # The one-winner rule: of all instances (and against a report arriving meanwhile,
    # which moves last_seen_at past the cutoff) exactly one UPDATE matches the row.
    claimed = await Agent.filter(
        id=agent_id, offline_notified=False, last_seen_at__lt=cutoff
    ).update(offline_notified=True)
    if not claimed:
        return 0
    await ctx.events.publish(
        Event(EventKind.AGENT_OFFLINE, user_id, agent_id, data={"reason": "silent"})
    )
    return 1
