"""A share link as its recipient and its owner see it: a browser opening the link gets a
page and uses nothing, the CLI's request uses one; the owner extends a used-up link and
its address stays; dead links (used up, expired) lose their Copy button; an offline
machine is named."""

from __future__ import annotations

from datetime import timedelta

import httpx
from playwright.async_api import expect

from gpugo import clock
from gpugo.models import Agent, Share
from tests.browser.support import LIVE_MS, Browser, login, requires_browser, signup

pytestmark = requires_browser

# What the ggo CLI's HTTP client sends: no Accept header.
CLI = {"User-Agent": "go-resty/2.16.5 (https://github.com/go-resty/resty)"}


async def test_opening_a_link_uses_nothing_the_cli_does_and_extend_keeps_the_code(
    browser: Browser, http: httpx.AsyncClient
):
    account = await signup(http, "ada@example.com")
    agent = await account.agent(hostname="lab-gpu", gpus=1)
    await agent.report()
    page = browser.page
    await login(browser, "ada@example.com")
    await page.get_by_role("link", name="Shares").click()
    await page.get_by_role("button", name="New share link").click()
    await page.get_by_label("Maximum uses (optional)").fill("1")
    await page.get_by_role("button", name="Create link").click()
    link = await page.locator("#new-share-link").inner_text()
    code = link.rsplit("/", 1)[1]

    # The recipient opens the link in a browser (a second tab): a page, no use counted.
    other = await browser.context.new_page()
    response = await other.goto(link)
    assert response is not None and response.status == 200
    await expect(other.get_by_role("heading", name="A shared remote GPU")).to_be_visible()
    await expect(other.locator("#share-vendor")).to_have_text("nvidia")
    await expect(other.locator("#share-uses-left")).to_have_text("1")
    await expect(other.locator("#share-command")).to_contain_text(f"ggo use {link}")
    await other.reload()
    assert (await Share.get(short_code=code)).used_count == 0
    await other.close()

    # The CLI's request counts the one use; the owner's row loses its Copy button.
    assert (await http.get(f"/s/{code}", headers=CLI)).status_code == 200
    assert (await Share.get(short_code=code)).used_count == 1
    row = page.locator("#shares-table tbody tr")
    await expect(row.locator(".tag")).to_have_text("used up", timeout=LIVE_MS)
    await expect(row.get_by_role("button", name=f"Copy {link}")).to_have_count(0)

    # Extended: the same link works again, its code unchanged.
    await row.get_by_role("button", name=f"Extend {link}").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label("Maximum uses").fill("0")
    await dialog.get_by_role("button", name="Save limits").click()
    await expect(dialog.locator("#extend-max-uses-error")).to_contain_text("at least 1")
    await dialog.get_by_label("Maximum uses").fill("3")
    await dialog.get_by_role("button", name="Save limits").click()
    await expect(page.get_by_role("dialog")).to_have_count(0)
    await expect(row.locator(".used-count")).to_have_text("1")
    await expect(row).to_contain_text("/ 3")
    await expect(row.get_by_role("button", name=f"Copy {link}")).to_be_visible()
    await expect(page.locator("#shares-table code.short-link")).to_have_text(link)
    assert (await http.get(f"/s/{code}", headers=CLI)).status_code == 200
    assert (await Share.get(short_code=code)).used_count == 2

    # Its expiry passes (uses left or not): the row says expired and offers no Copy.
    await Share.filter(short_code=code).update(expires_at=clock.now() - timedelta(minutes=1))
    assert (await http.get(f"/s/{code}", headers=CLI)).status_code == 410
    await expect(row.locator(".tag", has_text="expired")).to_be_visible(timeout=LIVE_MS)
    await expect(row.get_by_role("button", name=f"Copy {link}")).to_have_count(0)
    await expect(row.get_by_role("button", name=f"Extend {link}")).to_be_visible()

    # The machine goes silent: the owner's page says the link cannot connect.
    await Agent.all().update(last_seen_at=clock.now() - timedelta(hours=1))
    await expect(row.locator(".share-offline")).to_contain_text("offline", timeout=LIVE_MS)
    await browser.shot("shares-offline")
