"""Fixtures for the dashboard in a real browser: a live gpugo, Chromium, HTTP clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.browser.support import Browser, Live, chromium, live_server, screenshot_dir


@pytest.fixture
async def live(database_url: str, data_dir: Path) -> AsyncIterator[Live]:
    async with live_server(database_url=database_url, data_dir=data_dir) as server:
        yield server


@pytest.fixture
def shots(database_url: str) -> Path:
    return screenshot_dir(database_url)


@pytest.fixture
async def browser(live: Live, shots: Path) -> AsyncIterator[Browser]:
    async with chromium(live.url, shots) as b:
        yield b
        # Nothing from elsewhere (CDN, fonts), no script errors, no CSP violations.
        assert b.foreign_requests == []
        assert b.problems == []


@pytest.fixture
async def http(live: Live) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live.url, timeout=10) as client:
        yield client
