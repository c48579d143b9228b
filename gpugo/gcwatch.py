"""Full passes of the garbage collector, timed: a stop-the-world pause is logged.

A pass over the oldest generation visits every object the collector tracks and holds
up everything else in the process (requests, agents' reports, WebSocket frames) while
it runs; its length grows with what the process holds open. Each pass longer than
``SLOW_MS`` is logged on ``gpugo.gc`` (a warning from ``WARN_MS``), so a pause that
grows with the open connections shows in the log before it shows in latencies.
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any

log = logging.getLogger("gpugo.gc")

SLOW_MS = 20.0
WARN_MS = 100.0


class _Watch:
    def __init__(self) -> None:
        self.started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self.started = time.perf_counter()
            return
        ms = (time.perf_counter() - self.started) * 1000
        if ms >= SLOW_MS:
            log.log(
                logging.WARNING if ms >= WARN_MS else logging.INFO,
                "full collection took %d ms (%d objects collected, %d frozen)",
                ms,
                info["collected"],
                gc.get_freeze_count(),
            )


def watch_collections() -> None:
    """Time every full pass from now on (once per process)."""
    if not any(isinstance(callback, _Watch) for callback in gc.callbacks):
        gc.callbacks.append(_Watch())
