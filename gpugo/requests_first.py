"""Requests before live deliveries: an event waits, for a bounded time, while HTTP
requests of the same process are still waiting for their answer.

A fleet's reports often come in bursts (agents on synchronised timers, a network
coming back). Each changing report makes an event, and each event goes to every open
tab of its user: 50 reports can make 5,000 frames. Executed and written as they come,
those frames share the event loop with the reports still being answered, and every
report of the burst waits for the frames of those before it (5,000 tabs: the burst's
reports at p99 ~285 ms). Held until no request awaits its answer, the same frames leave
a few tens of milliseconds later and the agents are answered first.

A request counts from its arrival to the start of its response, so a stream (an agent's
event stream, the push channel) counts only until it starts. The wait is bounded
(``MAX_WAIT``): under a steady stream of requests that never leaves the process idle,
a delivery is late by at most that, never starved.
"""

from __future__ import annotations

import asyncio
import contextlib

# The most a live delivery waits for requests to be answered (deliveries stay live: the
# dashboard's budget from an agent's report to its tabs is one second).
MAX_WAIT = 0.25


class RequestsFirst:
    """HTTP requests of this process still waiting for their answer."""

    __slots__ = ("_all_answered", "max_wait", "unanswered")

    def __init__(self, max_wait: float = MAX_WAIT) -> None:
        self.max_wait = max_wait
        self.unanswered = 0
        # Made when a delivery first waits, set (and dropped) when the count reaches 0.
        self._all_answered: asyncio.Event | None = None

    def arrived(self) -> None:
        self.unanswered += 1

    def answered(self) -> None:
        self.unanswered -= 1
        if self.unanswered == 0 and self._all_answered is not None:
            self._all_answered.set()
            self._all_answered = None

    async def turn(self) -> None:
        """Return once no request waits for its answer, or after ``max_wait``."""
        if self.unanswered == 0:
            return
        if self._all_answered is None:
            self._all_answered = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.max_wait):
                await self._all_answered.wait()
