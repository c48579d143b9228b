"""Full passes of the garbage collector, timed: a stop-the-world pause is logged.

A pass over the oldest generation visits every object the collector tracks and holds
up everything else in the process (requests, agents' reports, WebSocket frames) while
it runs; its length grows with what the process holds open. Each pass longer than
``SLOW_MS`` is logged on ``gpugo.gc`` (a warning from ``WARN_MS``), so a pause that
grows with the open connections shows in the log before it shows in latencies.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("gpugo.gc")

SLOW_MS = 20.0
WARN_MS = 100.0


class _Watch:
    def __init__(self) -> None:
        self.started = 0.0
        self.started_cpu = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self.started = time.perf_counter()
            self.started_cpu = time.thread_time()
            return
        if _freezer.enabled:
            # What survived a full pass is alive: frozen, the next pass walks only what
            # reached the oldest generation after this one, so passes stay short however
            # many connections are open (5,000 tabs: 30-155 ms passes every few seconds,
            # each stopping the agents' reports of that moment, with only the 30-s refreeze).
            gc.freeze()
        ms = (time.perf_counter() - self.started) * 1000
        if ms >= SLOW_MS:
            # The CPU time apart: on a busy machine, the process may also have waited
            # for a core in the middle of the pass.
            log.log(
                logging.WARNING if ms >= WARN_MS else logging.INFO,
                "full collection took %d ms, %d ms of CPU (%d objects collected, %d frozen)",
                ms,
                (time.thread_time() - self.started_cpu) * 1000,
                info["collected"],
                gc.get_freeze_count(),
            )


def watch_collections() -> None:
    """Time every full pass from now on (once per process)."""
    if not any(isinstance(callback, _Watch) for callback in gc.callbacks):
        gc.callbacks.append(_Watch())


# Freezing what live connections set up (see ``freeze_soon``).
FREEZE_DELAY = 1.0
# Once live connections exist, what they keep making (keep-alive timers, frames
# suspended between events) is frozen this often too.
REFREEZE_SECONDS = 30.0
# A compaction (unfreeze, full pass, freeze) at most this often, and only once the
# frozen objects have doubled since the last one.
COMPACT_SECONDS = 600.0


class _Freezer:
    """Moves what long-lived connections set up out of the collector's sight.

    A WebSocket with its subscriptions holds a few hundred objects for as long as it is
    open; every full pass visits all of them, so with thousands open each pass stops
    the process for longer. ``gc.freeze()`` moves every tracked object to the permanent
    generation, which passes never visit (freezing costs no walk). Objects frozen stay
    freed by their reference counts when a connection ends; only reference cycles among
    them would wait, so when the frozen set has doubled, at most every
    ``COMPACT_SECONDS``, one full pass over everything reclaims them.

    Open sockets keep making objects that outlive a young pass (each keep-alive ping's
    timer and context, handlers suspended between events): left alone they fill the
    oldest generation again and its passes grow with the sockets. So from the first
    set-up on, a freeze also comes every ``REFREEZE_SECONDS``.
    """

    def __init__(self) -> None:
        self.enabled = False
        self._pending: asyncio.TimerHandle | None = None
        self._periodic: asyncio.TimerHandle | None = None
        self._compacted_at = time.monotonic()
        self._frozen_after_compaction = 0

    def soon(self) -> None:
        if not self.enabled:
            return
        loop = asyncio.get_running_loop()
        if self._periodic is None:
            self._periodic = loop.call_later(REFREEZE_SECONDS, self._refreeze)
        if self._pending is None:
            self._pending = loop.call_later(FREEZE_DELAY, self._freeze)

    def _refreeze(self) -> None:
        self._periodic = asyncio.get_running_loop().call_later(REFREEZE_SECONDS, self._refreeze)
        self._freeze()

    def _freeze(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        now = time.monotonic()
        frozen = gc.get_freeze_count()
        if (
            frozen > 2 * self._frozen_after_compaction
            and now - self._compacted_at > COMPACT_SECONDS
        ):
            gc.unfreeze()
            gc.collect()
            self._compacted_at = now
            gc.freeze()
            self._frozen_after_compaction = gc.get_freeze_count()
            return
        gc.collect(1)  # the young generations' garbage first (a short pass)
        gc.freeze()


_freezer = _Freezer()


def freeze_after_setup() -> None:
    """Freeze what live connections set up from now on (``gpugo serve`` only: a test
    process keeps its collector as it is)."""
    _freezer.enabled = True
    _freezer._frozen_after_compaction = gc.get_freeze_count()


def freeze_soon() -> None:
    """A long-lived connection has set itself up: freeze within a second (once for all
    the set-ups of that second)."""
    _freezer.soon()


# How often a full pass runs once passes are timed by ``collect_between_requests``.
FULL_PASS_SECONDS = 10.0
# A full pass waits for a moment without requests at most this long.
IDLE_WAIT_SECONDS = 2.0
_IDLE_POLL_SECONDS = 0.02
# The oldest generation's threshold that leaves its passes to the timer alone.
_NEVER = 1_000_000_000
# The youngest generation's threshold (Python's default: 700 allocations). A request
# makes thousands of objects that die with it; at 700, young passes visit them while
# the request still holds them and move them on to the middle generation, visited
# again. At 20,000 most are freed before a pass comes. Measured with `gpugo serve`
# under wrk, 4 alternating pairs: a status report's server CPU 6-12% lower, the
# dashboard query's about 5%, share uses unchanged; a young pass stays a millisecond
# or two.
YOUNG_THRESHOLD = 20_000


class _BetweenRequests:
    """Full passes at moments without requests, instead of when the allocation counts
    say: a pass stops the process for tens of milliseconds, and one falling in the
    middle of a burst of agents' reports delays every report of that burst.

    The moment preferred is the end of a burst (requests were seen waiting, and now
    none is): bursts of agents on synchronised timers come a period apart, so the
    longest quiet follows one. A quiet moment with no burst seen since the pass fell
    due may be the one just before a burst: taken only once the bound is reached.
    """

    def __init__(self, idle: Callable[[], bool]) -> None:
        self._idle = idle
        self._waiting_since: float | None = None
        self._seen_busy = False

    def start(self) -> None:
        _, middle, _ = gc.get_threshold()
        gc.set_threshold(YOUNG_THRESHOLD, middle, _NEVER)
        asyncio.get_running_loop().call_later(FULL_PASS_SECONDS, self._due)

    def _due(self) -> None:
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        if self._waiting_since is None:
            self._waiting_since, self._seen_busy = now, False
        if not self._idle():
            self._seen_busy = True
            wait = True
        else:
            wait = not self._seen_busy
        if wait and now - self._waiting_since < IDLE_WAIT_SECONDS:
            loop.call_later(_IDLE_POLL_SECONDS, self._due)
            return
        self._waiting_since = None
        gc.collect()
        loop.call_later(FULL_PASS_SECONDS, self._due)


def collect_between_requests(idle: Callable[[], bool]) -> None:
    """From now on, young passes every ``YOUNG_THRESHOLD`` allocations, and full passes
    every ``FULL_PASS_SECONDS`` at the end of a burst (``idle()``, no request waiting for
    its answer, after some did) or after ``IDLE_WAIT_SECONDS`` of waiting for that
    (``gpugo serve`` only, on its event loop)."""
    _BetweenRequests(idle).start()
