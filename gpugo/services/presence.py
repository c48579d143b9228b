"""Presence: telling live views when an agent falls silent.

An agent is offline once its last report is older than ``agent_offline_seconds``
(``agents.agent_state``); nothing happens at that moment, so a sweeper asks
the database every few seconds. Each silence is announced once, however many
instances sweep: the claim is a conditional UPDATE of ``offline_notified`` (a
batch at a time) that only one instance can win per agent. The next status report
clears the mark.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.transactions import in_transaction

from gpugo import clock, sql
from gpugo.context import ServerContext
from gpugo.events import Event, EventKind
from gpugo.services import alerts, webhooks

# Agents claimed per statement, and statements per sweep (the rest waits for the next).
BATCH = 500
MAX_BATCHES = 20
# How far back a sweep looks again before the previous sweep's cutoff: instances whose
# clocks differ by less than this still announce every silence.
OVERLAP = timedelta(minutes=5)


@dataclass(slots=True)
class SweepState:
    """Where the previous sweep stopped; a fresh process starts with no floor (catch-up)."""

    floor: datetime | None = None


def _claim_sql(*, with_floor: bool) -> dict[str, str]:
    """Claim a batch of silent agents in one statement; built from constants only.

    The inner SELECT picks the batch (through the ``last_seen_at`` index); the outer
    UPDATE re-checks each row under its lock, so of all instances (and against a
    report arriving meanwhile, which moves last_seen_at past the cutoff) exactly one
    claims it. PostgreSQL skips rows another instance is claiming right now.
    """
    floor = " AND last_seen_at >= $2" if with_floor else ""
    n = 3 if with_floor else 2
    return sql.per_dialect(
        "UPDATE agents SET offline_notified = true WHERE id IN ("  # noqa: S608 (constants)
        f"SELECT id FROM agents WHERE last_seen_at < $1 AND offline_notified = false{floor}"
        f" ORDER BY last_seen_at LIMIT ${n} FOR UPDATE SKIP LOCKED)"
        f" AND offline_notified = false AND last_seen_at < ${n + 1}"
        " RETURNING id, user_id"
    )


_CLAIM = {with_floor: _claim_sql(with_floor=with_floor) for with_floor in (False, True)}


async def sweep(*, ctx: ServerContext, state: SweepState) -> int:
    """Announce every agent that fell silent since the last sweep; the number announced.

    Reads through the ``last_seen_at`` index, only over the window that the cutoff
    crossed since the previous sweep (widened by ``OVERLAP``). The first sweep of a
    process has no lower bound, so silences that began while no instance ran are
    announced too. On a database error the floor stays put and the next sweep
    covers the window again. A batch is one statement, however many agents fell
    silent together (a site losing its network).
    """
    now = clock.now()
    cutoff = now - timedelta(seconds=ctx.settings.agent_offline_seconds)
    announced = 0
    floor = state.floor
    params = [cutoff, BATCH, cutoff] if floor is None else [cutoff, floor, BATCH, cutoff]
    for _ in range(MAX_BATCHES):
        # Claimed rows leave the SELECT's result, so the same statement reads the next batch.
        # The claim and its webhook deliveries commit together (an outbox).
        async with in_transaction():
            rows = await sql.fetch(_CLAIM[floor is not None], params)
            queued = await alerts.agents_offline(
                owners={row["id"]: row["user_id"] for row in rows}, reason=alerts.SILENT, now=now
            )
        webhooks.wake_sender(ctx, queued)
        for row in rows:
            ctx.events.emit(
                Event(EventKind.AGENT_OFFLINE, row["user_id"], row["id"], data={"reason": "silent"})
            )
        announced += len(rows)
        if len(rows) < BATCH:
            state.floor = cutoff - OVERLAP
            break
    return announced
