"""A machine that falls silent: its workers, GPUs and configuration turn grey ("last known")
on the open machine page, without a reload, within the offline threshold."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import expect

from tests.browser.support import (
    Browser,
    Live,
    live_server,
    login,
    now_iso,
    requires_browser,
    signup,
)

pytestmark = requires_browser

# Short thresholds so the test waits seconds, not minutes.
OFFLINE_SECONDS = 5
SWEEP_SECONDS = 0.5


@pytest.fixture
async def live(database_url: str, data_dir: Path) -> AsyncIterator[Live]:
    async with live_server(
        database_url=database_url,
        data_dir=data_dir,
        agent_offline_seconds=OFFLINE_SECONDS,
        offline_sweep_seconds=SWEEP_SECONDS,
    ) as server:
        yield server


async def test_a_silent_machine_greys_its_workers_without_a_reload(browser: Browser, http):
    account = await signup(http, "grace@example.com", plan="pro")
    agent = await account.agent(hostname="llama-box", gpus=2)
    [worker] = (await agent.config())["workers"]
    running = {
        "worker_id": worker["worker_id"],
        "status": "running",
        "gpu_ids": worker["gpu_ids"],
        "connections": [
            {"client_ip": "127.0.0.1", "client_port": 41000, "connected_at": now_iso()}
        ],
    }
    page = browser.page
    await login(browser, "grace@example.com")
    await agent.report(
        workers=[running], gpus=[{"gpu_id": "GPU-0", "used_by_worker": worker["worker_id"]}]
    )
    await browser.open(f"/#/agents/{agent.agent_id}")
    await expect(page.locator("[data-live]")).to_have_attribute("data-live", "live")

    # A fresh report: everything current.
    await agent.report(workers=[running])
    heard = time.monotonic()
    row = page.locator(f'tr[data-worker="{worker["worker_id"]}"]')
    await expect(row).to_have_attribute("data-agent-online", "true")
    await expect(row.locator(".badge")).to_have_text("Running")
    await expect(row).to_contain_text("1 client")
    await expect(page.locator("#config-sync")).not_to_have_attribute("data-sync", "stale")
    await expect(page.locator("#offline-notice")).to_have_count(0)

    # Silence: past the threshold the page greys what it shows, by itself.
    budget_ms = (OFFLINE_SECONDS + 4) * 1000
    await expect(row).to_have_attribute("data-agent-online", "false", timeout=budget_ms)
    took = time.monotonic() - heard
    assert OFFLINE_SECONDS <= took <= OFFLINE_SECONDS + 4, took
    await expect(row).to_have_class("stale")
    await expect(row.locator(".badge")).to_have_class("badge badge-running badge-stale")
    await expect(row).to_contain_text("Last known")
    await expect(row).to_contain_text("None live")
    await expect(row).to_contain_text("1 client when last heard")
    gpu = page.locator('#gpus-table tr[data-gpu="GPU-0"]')
    await expect(gpu).to_have_class("stale")
    await expect(gpu).to_contain_text("Last known")
    await expect(page.locator("#config-sync")).to_have_attribute("data-sync", "stale")
    await expect(page.locator("#config-sync")).to_contain_text("Last known")
    await expect(page.locator("#offline-notice")).to_contain_text("llama-box is offline")
    # The docs show this one (docs/machine-offline.png).
    await browser.shot("machine-offline")

    # It reports again: current again, without a reload.
    await agent.report(workers=[running])
    await expect(row).to_have_attribute("data-agent-online", "true")
    await expect(row).not_to_have_class("stale")
    await expect(row).to_contain_text("1 client")
    await expect(page.locator("#offline-notice")).to_have_count(0)
