"""Shares: create for a worker, copy the short link, watch used_count rise, delete; the form
says every problem at once, its limits before typing, and where focus goes."""

from __future__ import annotations

from datetime import timedelta

import httpx
from playwright.async_api import expect

from tests.browser.support import LIVE_MS, Browser, login, requires_browser, signup
from tests.support import moment

pytestmark = requires_browser


async def test_share_create_copy_live_uses_and_delete(browser: Browser, http: httpx.AsyncClient):
    account = await signup(http, "hedy@example.com")
    await account.agent(hostname="lab-gpu", gpus=1)
    page = browser.page
    await login(browser, "hedy@example.com")
    await page.get_by_role("link", name="Shares").click()
    await expect(page.get_by_text("No share links yet")).to_be_visible()

    # From the worker's row on its machine's page, the form comes with the worker chosen.
    await page.get_by_role("link", name="Overview").click()
    await page.get_by_role("link", name="lab-gpu").click()
    await page.get_by_role("button", name="Share default").click()
    await expect(page.get_by_role("heading", name="New share link")).to_be_visible()
    await expect(page.get_by_label("Worker")).to_contain_text("default on lab-gpu (port 9001)")
    # The address clients dial starts as the machine's own.
    await expect(page.get_by_label("Connection address")).to_have_value("127.0.0.1")

    # A malformed address: the server's message at that field.
    await page.get_by_label("Connection address").fill("not an address!")
    await page.get_by_role("button", name="Create link").click()
    await expect(page.locator("#share-ip-error")).not_to_be_empty()
    await expect(page.get_by_label("Connection address")).to_have_attribute("aria-invalid", "true")

    await page.get_by_label("Connection address").fill("127.0.0.1")
    await page.get_by_label("Maximum uses (optional)").fill("3")
    await page.get_by_role("button", name="Create link").click()
    link = page.locator("#new-share-link")
    await expect(link).to_contain_text(f"{browser.base_url}/s/")
    short_link = await link.inner_text()
    await page.get_by_role("button", name="Copy link").click()
    assert await browser.clipboard() == short_link

    row = page.locator("#shares-table tbody tr")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("tcp://127.0.0.1:9001")
    used = row.locator(".used-count")
    await expect(used).to_have_text("0")
    await expect(row).to_contain_text("/ 3")

    # Someone uses the link: the count rises on the page by itself.
    response = await http.get(short_link)
    assert response.status_code == 200, response.text
    await expect(used).to_have_text("1", timeout=LIVE_MS)
    assert (await http.get(short_link)).status_code == 200
    await expect(used).to_have_text("2", timeout=LIVE_MS)
    await browser.shot("shares")

    assert (await http.get(short_link)).status_code == 200
    await expect(used).to_have_text("3", timeout=LIVE_MS)
    await expect(row.locator(".tag")).to_have_text("used up")
    assert (await http.get(short_link)).status_code == 410

    await page.get_by_role("button", name=f"Delete {short_link}").click()
    await page.get_by_role("dialog").get_by_role("button", name="Delete link").click()
    await expect(page.get_by_text("No share links yet")).to_be_visible()
    assert (await http.get(short_link)).status_code == 404


async def test_share_form_says_every_problem_at_once_and_returns_focus(
    browser: Browser, http: httpx.AsyncClient
):
    account = await signup(http, "joan@example.com")
    await account.agent(hostname="lab-gpu", gpus=1)
    page = browser.page
    await login(browser, "joan@example.com")
    await page.get_by_role("link", name="Shares").click()
    opener = page.get_by_role("button", name="New share link")
    await opener.click()
    await expect(page.get_by_label("Worker")).to_be_focused()
    address = page.get_by_label("Connection address")
    expires = page.get_by_label("Expires (optional)")
    uses = page.get_by_label("Maximum uses (optional)")
    create = page.get_by_role("button", name="Create link")

    # The limits, before anything is typed.
    await expect(page.locator("#share-expires-hint")).to_have_text(
        "A time in the future; empty: the link does not expire."
    )
    await expect(page.locator("#share-max-uses-hint")).to_have_text("At least 1; empty: unlimited.")

    # A bad address, a past expiry and a bad use limit: all three said at once.
    await address.fill("300.1.2.3")
    # The browser's clock is the server's (UTC), as is its time zone.
    await expires.fill(moment(timedelta(days=-1)).strftime("%Y-%m-%dT%H:%M"))
    await uses.fill("0")
    await create.click()
    await expect(page.locator("#share-ip-error")).to_have_text(
        "Enter an IP address or a host name."
    )
    await expect(page.locator("#share-expires-error")).to_have_text("Choose a time in the future.")
    await expect(page.locator("#share-max-uses-error")).to_have_text(
        "Enter at least 1, or leave it empty for no limit."
    )
    await expect(address).to_be_focused()

    # What only the server reads (an IPv6 address) comes back at its field, plainly.
    await address.fill("fe80::zz")
    await expires.fill("")
    await uses.fill("2")
    await create.click()
    await expect(page.locator("#share-ip-error")).to_have_text(
        "Enter an IP address or a host name."
    )
    await expect(page.locator("#share-max-uses-error")).to_have_text("")
    await expect(address).to_be_focused()
    shown = await page.locator(".share-form").inner_text()
    assert "Invalid request" not in shown and "Value error" not in shown, shown

    # Cancelled: focus back on the button that opened the form.
    await page.get_by_role("button", name="Cancel").click()
    await expect(opener).to_be_focused()

    # Created: focus on the new link's copy button.
    await opener.click()
    await address.fill("127.0.0.1")
    await uses.fill("2")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("button", name="Copy link")).to_be_focused()
    await expect(page.locator("#shares-table tbody tr")).to_contain_text("/ 2")
