"""Fixtures for the dashboard in a real browser: a live gpugo, Chromium, HTTP clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.browser.support import (
    Browser,
    Live,
    _skip_reason,
    chromium,
    launch_chromium,
    live_server,
    screenshot_dir,
)


@pytest.fixture
async def live(database_url: str, data_dir: Path) -> AsyncIterator[Live]:
    async with live_server(database_url=database_url, data_dir=data_dir) as server:
        yield server


@pytest.fixture
def shots(database_url: str) -> Path:
    return screenshot_dir(database_url)


@pytest.fixture(scope="session")
async def chromium_process() -> AsyncIterator[object]:
    """One Chromium for the whole run (launching one per test costs a second each)."""
    reason = _skip_reason()
    if reason is not None:
        pytest.skip(reason)
    async with launch_chromium() as process:
        yield process


@pytest.fixture
async def browser(chromium_process, live: Live, shots: Path) -> AsyncIterator[Browser]:
    async with chromium(chromium_process, live.url, shots) as b:
        yield b
        # Nothing from elsewhere (CDN, fonts), no script errors, no CSP violations.
        assert b.foreign_requests == []
        assert b.problems == []


@pytest.fixture
async def http(live: Live) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live.url, timeout=10) as client:
        yield client
