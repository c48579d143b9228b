"""A log line for something that can happen on every request: counted, written at most
once per interval per key, so a misbehaving agent cannot flood the log."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from gpugo.logs import loggable


@dataclass(slots=True)
class _Tally:
    count: int
    last_logged: float


class CountedLog:
    def __init__(
        self, logger: logging.Logger, what: str, *, interval: float = 60.0, max_keys: int = 10_000
    ) -> None:
        self._logger = logger
        self._what = what
        self._interval = interval
        self._max_keys = max_keys
        self._tallies: dict[str, _Tally] = {}
        self.total = 0

    def add(self, key: str, detail: str = "", count: int = 1) -> None:
        """Count ``count`` occurrences for ``key``; log them if its interval has passed.

        ``key`` and ``detail`` go to the log (through ``loggable``): never pass a secret."""
        self.total += count
        now = time.monotonic()
        tally = self._tallies.get(key)
        if tally is None:
            if len(self._tallies) >= self._max_keys:
                self._forget_quiet(now)
            # The first occurrence is logged at once.
            tally = self._tallies[key] = _Tally(0, now - self._interval)
        tally.count += count
        if now - tally.last_logged >= self._interval:
            self._logger.warning(
                "%s: %d for %s in the last %.0f s%s",
                self._what,
                tally.count,
                loggable(key),
                self._interval,
                f" ({loggable(detail)})" if detail else "",
            )
            tally.count = 0
            tally.last_logged = now

    def _forget_quiet(self, now: float) -> None:
        # Keys whose count was logged and that stayed quiet since; at worst, all of them.
        quiet = [k for k, t in self._tallies.items() if now - t.last_logged >= self._interval]
        for key in quiet or list(self._tallies):
            del self._tallies[key]
