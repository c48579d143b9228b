"""The Activity page (the account's security log, live) and the sessions on Settings."""

from __future__ import annotations

import httpx
from playwright.async_api import expect

from tests.browser.support import PASSWORD, Browser, login, requires_browser, signup

pytestmark = requires_browser


async def test_activity_lists_filters_and_follows_new_events(
    browser: Browser, http: httpx.AsyncClient
):
    await signup(http, "ada@example.com")
    page = browser.page
    await login(browser, "ada@example.com")
    await page.get_by_role("link", name="Activity").click()
    await expect(page.get_by_role("heading", name="Activity", exact=True)).to_be_visible()
    table = page.locator("#activity-table")
    await expect(table.locator("tr[data-kind='login.succeeded']")).to_have_count(1)
    await expect(table.locator("tr[data-kind='signup']")).to_have_count(1)
    await expect(table.locator("tr[data-kind='login.succeeded']")).to_contain_text("127.0.0.1")

    # A failed sign-in elsewhere shows up without a reload.
    wrong = {"email": "ada@example.com", "password": "not the password"}
    assert (await http.post("/api/v1/auth/login", json=wrong)).status_code == 401
    failed = table.locator("tr[data-kind='login.failed']")
    await expect(failed).to_have_count(1, timeout=10_000)
    await expect(failed).to_contain_text("failed")
    await browser.shot("activity")

    await page.get_by_label("Show").select_option("login.failed")
    await expect(table.locator("tbody tr")).to_have_count(1)
    await expect(page.locator("#activity-count")).to_have_text("1 event")
    await page.get_by_label("Show").select_option("pat.created")
    await expect(page.get_by_text("No event of this kind.")).to_be_visible()


async def test_sessions_on_settings_end_one_and_all_others(
    browser: Browser, http: httpx.AsyncClient
):
    await signup(http, "grace@example.com")
    page = browser.page
    await login(browser, "grace@example.com")
    origin = {"Origin": str(http.base_url).rstrip("/")}
    elsewhere = []
    for agent in ("phone/1.0", "laptop/2.0"):
        other = httpx.AsyncClient(base_url=http.base_url, headers={"User-Agent": agent})
        body = {"email": "grace@example.com", "password": PASSWORD}
        assert (
            await other.post("/api/v1/auth/login", json=body, headers=origin)
        ).status_code == 200
        elsewhere.append(other)
    try:
        await page.get_by_role("link", name="Settings").click()
        rows = page.locator("#sessions-table tbody tr")
        # The signup's own session, the browser's, and the two others.
        await expect(rows).to_have_count(4)
        await expect(page.locator("#sessions-table .tag")).to_have_text("this session")
        await browser.shot("settings-sessions")

        await rows.filter(has_text="phone/1.0").get_by_role("button", name="End").click()
        await page.get_by_role("dialog").get_by_role("button", name="End session").click()
        await expect(rows).to_have_count(3)
        assert (await elsewhere[0].get("/api/v1/auth/me")).status_code == 401
        assert (await elsewhere[1].get("/api/v1/auth/me")).status_code == 200

        await page.get_by_role("button", name="Log out everywhere else").click()
        await (
            page.get_by_role("dialog").get_by_role("button", name="Log out everywhere else").click()
        )
        await expect(rows).to_have_count(1)
        assert (await elsewhere[1].get("/api/v1/auth/me")).status_code == 401
        await expect(page.get_by_role("button", name="Log out everywhere else")).to_have_count(0)
        # This browser is still signed in.
        await page.reload()
        await expect(page.get_by_role("heading", name="Settings", exact=True)).to_be_visible()
    finally:
        for other in elsewhere:
            await other.aclose()
