"""The one clock of the server. Tests move it; nothing else reads the system time."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta


def _configured_offset() -> timedelta:
    # GPUGO_TEST_CLOCK_OFFSET_DAYS runs the server as if that many days later. It exists
    # for the test suite's date guard (.ci/run): a test that sends a fixed date the server
    # compares with its clock fails under it instead of expiring with the calendar.
    return timedelta(days=float(os.environ.get("GPUGO_TEST_CLOCK_OFFSET_DAYS") or 0))


_base = _configured_offset()
_offset = _base


def now() -> datetime:
    return datetime.now(UTC) + _offset


def advance(delta: timedelta) -> None:
    """Move the clock forward (tests only: expiry, offline detection)."""
    global _offset
    _offset += delta


def reset() -> None:
    """Back to the configured clock (tests only)."""
    global _offset
    _offset = _base
