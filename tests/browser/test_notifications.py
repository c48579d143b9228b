"""Notifications: add a webhook endpoint, copy its secret, send a test, see the delivery
with its status code and timing, redeliver it, disable and delete the endpoint; the form
says every problem at once and the account's endpoint limit before it is reached."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import expect

from gpugo import clock
from tests.browser.support import Browser, Live, live_server, login, requires_browser, signup
from tests.support import eventually
from tests.webhooks.receiver import Receiver
from tests.webhooks.support import TableResolver, docs_verify

pytestmark = requires_browser
# The operator's limit of endpoints per account here (GPUGO_WEBHOOKS_MAX_ENDPOINTS).
ALLOWED = 2


@pytest.fixture
async def live(database_url: str, data_dir: Path) -> AsyncIterator[Live]:
    # The receiver listens on 127.0.0.1.
    async with live_server(
        database_url=database_url,
        data_dir=data_dir,
        webhooks_allow_private=True,
        webhooks_max_endpoints=ALLOWED,
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


async def test_webhook_form_says_every_problem_and_the_limit(
    browser: Browser, http: httpx.AsyncClient, live: Live
):
    # DNS the test controls: one host resolves (nothing is sent to it), another does not.
    live.app.state.ctx.webhooks.resolver = TableResolver({"hooks.example.com": ["93.184.215.14"]})
    await signup(http, "ida@example.com")
    page = browser.page
    await login(browser, "ida@example.com")
    await page.get_by_role("link", name="Notifications").click()
    url, description = page.get_by_label("URL"), page.get_by_label("Description (optional)")
    add = page.get_by_role("button", name="Add endpoint")

    # The limits, before anything is typed.
    await expect(page.locator("#webhook-limit")).to_have_text(f"0 of {ALLOWED} endpoints in use.")
    await expect(page.locator("#webhook-url-hint")).to_contain_text("up to 2048 characters")
    await expect(page.locator("#webhook-description-hint")).to_contain_text("Up to 200 characters")
    await expect(page.locator("#webhook-events")).to_contain_text("At least one.")

    # Every problem at once, in plain words; focus on the first; nothing sent.
    await url.fill("ftp://hooks.example.com/in")
    await description.fill("d" * 201)
    await page.get_by_label("Machine offline").uncheck()
    await add.click()
    await expect(page.locator("#webhook-url-error")).to_have_text("Use an http:// or https:// URL.")
    await expect(page.locator("#webhook-description-error")).to_have_text(
        "Use at most 200 characters (this one has 201)."
    )
    await expect(page.locator("#webhook-events-error")).to_have_text("Choose at least one event.")
    await expect(url).to_be_focused()
    await expect(page.get_by_text("No endpoints yet")).to_be_visible()

    # What only the server can tell (the host does not resolve) comes back at its field.
    await url.fill("https://nowhere.example.com/in")
    await description.fill("pager")
    await page.get_by_label("Machine offline").check()
    await add.click()
    await expect(page.locator("#webhook-url-error")).to_have_text(
        "The URL host 'nowhere.example.com' does not resolve."
    )
    await expect(page.locator("#webhook-events-error")).to_have_text("")
    await expect(url).to_be_focused()
    shown = await page.locator("#webhook-form").inner_text()
    assert "Invalid request" not in shown and "Value error" not in shown, shown

    # Added: focus on the secret (shown once), selected for copying; the count goes up.
    await url.fill("https://hooks.example.com/in")
    await add.click()
    secret = page.get_by_label("Signing secret", exact=True)
    await expect(secret).to_be_focused()
    await expect(page.locator("#webhook-limit")).to_have_text(f"1 of {ALLOWED} endpoints in use.")
    await expect(page.locator("#webhook-url-error")).to_have_text("")

    # The last one allowed: the button says why it does nothing more, before any typing.
    await url.fill("https://hooks.example.com/other")
    await add.click()
    await expect(page.locator("#webhooks-table tbody tr")).to_have_count(ALLOWED)
    await expect(page.locator("#webhook-limit")).to_have_text(
        f"All {ALLOWED} endpoints your account may have are in use: delete one to add another."
    )
    await expect(add).to_have_attribute("aria-disabled", "true")
    await browser.shot("notifications-limit")
