"""Onboarding: the install command, and the machine appearing without a reload."""

from __future__ import annotations

import re

import httpx
from playwright.async_api import expect

from tests.browser.support import (
    LIVE_MS,
    Browser,
    chromium,
    live_server,
    login,
    now_iso,
    register,
    requires_browser,
    signup,
    token_from_command,
)

pytestmark = requires_browser


async def test_add_a_machine_and_watch_it_register_and_come_online(browser: Browser, http):
    await signup(http, "grace@example.com")
    page = browser.page
    await login(browser, "grace@example.com")
    # A mark that a reload would wipe: everything below happens in this one page load.
    await page.evaluate("window.__sameLoad = true")

    await page.get_by_role("button", name="Add a GPU machine").click()
    await expect(page.get_by_role("heading", name="Add a GPU machine")).to_be_visible()
    command = page.locator("#install-command")
    await expect(command).to_contain_text("GPU_GO_TOKEN=")
    text = await command.inner_text()
    assert f'GPU_GO_ENDPOINT="{browser.base_url}"' in text
    assert text.startswith("curl -sfL ")
    # The 30-minute countdown runs.
    countdown = page.locator("#countdown strong")
    await expect(countdown).to_have_text(re.compile(r"^(30:00|29:[0-5]\d)$"))
    first = await countdown.inner_text()
    await expect(countdown).not_to_have_text(first, timeout=3000)

    await page.get_by_role("button", name="Copy install command").click()
    assert await browser.clipboard() == text
    await expect(page.get_by_role("button", name="Copy install command")).to_have_text("Copied")
    await browser.shot("onboarding")
    # Waiting on the installToken subscription, not on polling.
    await expect(page.locator("[data-live]")).to_have_attribute("data-live", "live")

    # The agent on the GPU machine registers with the token from that command.
    agent = await register(http, token_from_command(text), hostname="gpu-box-7", gpus=2)

    # The page moves on to the new machine by itself.
    await page.wait_for_url(re.compile(rf"#/agents/{agent.agent_id}"), timeout=LIVE_MS)
    await expect(page.get_by_role("heading", name="gpu-box-7")).to_be_visible()
    await expect(page.get_by_text("gpu-box-7 is registered.")).to_be_visible()
    assert await page.evaluate("window.__sameLoad") is True
    await expect(page.locator(".facts .badge")).to_have_text("Pending")
    gpus = page.locator("#gpus-table tbody tr")
    await expect(gpus).to_have_count(2)
    await expect(gpus.first).to_contain_text("NVIDIA GeForce RTX 4090")
    await expect(gpus.first).to_contain_text("24 GB")
    await expect(gpus.first).to_contain_text("550.54.14")
    workers = page.locator("#workers-table tbody tr")
    await expect(workers).to_have_count(1)
    await expect(workers.first).to_contain_text("default")
    await expect(workers.first).to_contain_text("9001")
    await expect(page.locator("#config-sync")).to_have_attribute("data-sync", "never")

    # It fetches its configuration and reports a running worker with a client: live.
    config = await agent.config()
    [worker] = config["workers"]
    await agent.report(
        workers=[
            {
                "worker_id": worker["worker_id"],
                "status": "running",
                "pid": 4242,
                "gpu_ids": ["GPU-0", "GPU-1"],
                "connections": [
                    {"client_ip": "127.0.0.1", "client_port": 50123, "connected_at": now_iso()}
                ],
            }
        ],
        gpus=[{"gpu_id": "GPU-0", "used_by_worker": worker["worker_id"]}],
    )
    await expect(page.locator(".facts .badge")).to_have_text("Online", timeout=LIVE_MS)
    await expect(page.locator("#config-sync")).to_have_attribute("data-sync", "synced")
    await expect(workers.first.locator(".badge")).to_have_text("Running")
    await expect(workers.first).to_contain_text("127.0.0.1:50123")
    await expect(gpus.first).to_contain_text("default")
    assert await page.evaluate("window.__sameLoad") is True
    await browser.shot("agent-detail")

    # The overview lists it, online.
    await page.get_by_role("link", name="Overview").first.click()
    row = page.locator(f'tr[data-agent="{agent.agent_id}"]')
    await expect(row.locator(".badge")).to_have_text("Online")
    await expect(page.locator(".meter").first).to_contain_text("2 / 2")
    await browser.shot("overview")

    # The free plan's two GPUs are in use: adding another machine warns before it fails.
    await page.get_by_role("link", name="Add machine").click()
    await expect(page.locator("#plan-full")).to_contain_text("GPUs are all in use (2 of 2)")


async def test_an_expired_command_says_so_and_a_new_one_can_be_made(
    chromium_process, database_url, data_dir, shots
):
    async with (
        live_server(
            database_url=database_url, data_dir=data_dir, install_token_ttl_seconds=3
        ) as live,
        chromium(chromium_process, live.url, shots) as browser,
    ):
        async with httpx.AsyncClient(base_url=live.url, timeout=10) as http:
            await signup(http, "ada.expired@example.com")
        page = browser.page
        await login(browser, "ada.expired@example.com")
        await page.get_by_role("link", name="Add machine").click()
        command = page.locator("#install-command")
        await expect(command).to_contain_text("GPU_GO_TOKEN=")
        first = await command.inner_text()
        await expect(page.get_by_text("This command has expired.")).to_be_visible(timeout=LIVE_MS)
        await expect(page.get_by_role("button", name="Copy install command")).to_be_disabled()
        await browser.shot("onboarding-expired")
        await page.get_by_role("button", name="Generate a new command").click()
        await expect(command).not_to_have_text(first)
        await expect(page.locator("#countdown")).to_be_visible()
        assert browser.problems == []
