"""A stalled test shows where it waits before pytest-timeout fails it.

pytest-timeout prints the threads' stacks, which for an asyncio test is only the event
loop waiting in ``select``. Shortly before that, this prints the stack of every task on
the suite's event loop, the awaits that never finished, so a hang seen once in CI can be
read from its log.
"""

from __future__ import annotations

import asyncio
import faulthandler
import sys
import threading
from collections.abc import AsyncIterator, Iterator

import pytest

# Printed this long before pytest-timeout's own deadline.
LEAD_SECONDS = 15.0

_loop: asyncio.AbstractEventLoop | None = None


@pytest.fixture(scope="session", autouse=True)
async def _remember_the_event_loop() -> AsyncIterator[None]:
    global _loop  # one loop per session, read by the watch thread
    _loop = asyncio.get_running_loop()
    yield
    _loop = None


def _deadline(item: pytest.Item) -> float:
    marker = item.get_closest_marker("timeout")
    if marker is not None and marker.args:
        return float(marker.args[0])
    return float(item.config.getini("timeout") or 0)


def _dump(nodeid: str) -> None:
    err = sys.__stderr__
    if err is None:
        return
    print(f"\n==== stalled: {nodeid}; the event loop's tasks:", file=err, flush=True)
    loop = _loop
    if loop is not None:
        # Read from this thread on purpose: a loop that no longer runs callbacks is the
        # case worth seeing. all_tasks retries while the set changes under it.
        for task in list(asyncio.all_tasks(loop)):
            print(f"-- {task!r}", file=err)
            task.print_stack(file=err)
    print("==== threads:", file=err, flush=True)
    faulthandler.dump_traceback(file=err, all_threads=True)
    err.flush()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    deadline = _deadline(item)
    timer = None
    if deadline > LEAD_SECONDS:
        timer = threading.Timer(deadline - LEAD_SECONDS, _dump, args=(item.nodeid,))
        timer.daemon = True
        timer.start()
    try:
        yield
    finally:
        if timer is not None:
            timer.cancel()
