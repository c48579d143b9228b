"""At start, the states of the agents online, read in batches and held in memory.

After a restart every agent's next report would find no state held and read its own
row: a round of single-row statements at the fleet's full rate, each a round trip,
that the steady rounds behind it queue on (bench/README.md, "Sustained"). The
warm-up reads the same rows a thousand at a time in the background, agents seen
within ``GPUGO_AGENT_OFFLINE_SECONDS`` only (the others are not reporting), up to
``GPUGO_AGENT_STATE_CACHE_ENTRIES``. A report that comes first reads its own row as
before, and the warm-up leaves the row that report holds. Exactness is the reports':
each batch takes its ``begin()`` token before its read, so a row changed meanwhile
(an event heard) is not held.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from gpugo import clock, sql
from gpugo.context import ServerContext
from gpugo.services.status_reports import STATE_FROM, held_row

log = logging.getLogger("gpugo.agent_states")

BATCH = 1000
# Keyset over the agents' ids, so a batch costs the same however far the warm-up is.
_ONLINE = sql.per_dialect(
    STATE_FROM + "WHERE a.last_seen_at > $1 AND a.id > $2 ORDER BY a.id LIMIT $3"
)


async def warm_up(ctx: ServerContext) -> int:
    """Hold the states of the agents online; how many were stored. A database error
    ends it with a warning: the reports read their rows themselves, as without it."""
    if not ctx.agent_states.holding:
        return 0
    started = time.monotonic()
    try:
        stored = await _hold_online(ctx)
    except Exception as error:  # nothing is lost, only speed
        log.warning("the agent states' warm-up stopped: %s", error)
        return 0
    log.info("held the states of %d online agents in %.1f s", stored, time.monotonic() - started)
    return stored


async def _hold_online(ctx: ServerContext) -> int:
    states = ctx.agent_states
    since = clock.now() - timedelta(seconds=ctx.settings.agent_offline_seconds)
    after = ""
    stored = 0
    # Nothing read is kept while the bus is not delivering: the reports read then.
    while stored < states.max_entries and states.holding:
        token = states.begin()
        rows = await sql.fetch(_ONLINE, [since, after, min(BATCH, states.max_entries - stored)])
        for row in rows:
            # A report that came first read its row itself (and may hold its body's
            # fingerprint with it): that one stays.
            if row["secret_hash"] not in states and states.store(
                row["secret_hash"],
                agent_id=row["id"],
                user_id=row["user_id"],
                row=held_row(row),
                last_seen_at=None,
                token=token,
            ):
                stored += 1
        if len(rows) < BATCH:
            break
        after = rows[-1]["id"]
    return stored
