"""Notifications: add a webhook endpoint, copy its secret, send a test, see the delivery
with its status code and timing, redeliver it, disable and delete the endpoint."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import expect

from gpugo import clock
from tests.browser.support import Browser, Live, live_server, login, requires_browser, signup
from tests.webhooks.receiver import Receiver
from tests.webhooks.support import docs_verify, eventually

pytestmark = requires_browser


@pytest.fixture
async def live(database_url: str, data_dir: Path) -> AsyncIterator[Live]:
    # The receiver listens on 127.0.0.1.
    async with live_server(
        database_url=database_url, data_dir=data_dir, webhooks_allow_private=True
    ) as server:
        yield server


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


async def test_add_test_and_redeliver_a_webhook(
    browser: Browser, http: httpx.AsyncClient, receiver: Receiver
):
    await signup(http, "nora@example.com")
    page = browser.page
    await login(browser, "nora@example.com")
    await page.get_by_role("link", name="Notifications").click()
    await expect(page.get_by_role("heading", name="Notifications", level=1)).to_be_visible()
    await expect(page.get_by_text("No endpoints yet")).to_be_visible()

    await page.get_by_label("URL").fill(receiver.url())
    await page.get_by_label("Description (optional)").fill("pager")
    await page.get_by_label("Share link used up").check()
    await page.get_by_role("button", name="Add endpoint").click()
    shown = page.get_by_label("Signing secret", exact=True)
    await expect(shown).to_have_value(re.compile(r"^gpgo_whsec_\S{20,}$"))
    secret = await shown.input_value()
    await page.get_by_role("button", name="Copy signing secret").click()
    assert await browser.clipboard() == secret
    table = page.locator("#webhooks-table")
    await expect(table).to_contain_text(receiver.url())
    await expect(table).to_contain_text("agent.offline, share.used_up")
    await expect(page.locator("#deliveries-empty")).to_be_visible()

    await page.get_by_role("button", name="Send test").click()
    [received] = await eventually(lambda: receiver.snapshot())
    assert received.json["type"] == "ping"
    now = clock.now().timestamp()
    assert docs_verify()(secret, received.headers, received.body, now=now)
    row = page.locator("#deliveries-table tbody tr").first
    await expect(row).to_contain_text("ping")
    await expect(row).to_contain_text("delivered")
    await expect(row).to_contain_text("200")
    await expect(row).to_contain_text(re.compile(r"\d+ ms"))
    await browser.shot("notifications")

    await row.get_by_role("button", name="Redeliver").click()
    await eventually(lambda: len(receiver.snapshot()) == 2)
    await expect(page.locator("#deliveries-table tbody tr")).to_have_count(2)

    # Shown once: after a reload the secret is nowhere on the page.
    await page.reload()
    await expect(page.locator("#webhooks-table")).to_be_visible()
    assert secret not in await page.content()

    await page.get_by_role("button", name="Disable").click()
    await expect(table).to_contain_text("disabled")
    await expect(page.get_by_role("button", name="Send test")).to_be_disabled()
    await page.get_by_role("button", name=f"Delete {receiver.url()}").click()
    await page.get_by_role("dialog").get_by_role("button", name="Delete endpoint").click()
    await expect(page.get_by_text("No endpoints yet")).to_be_visible()
