"""Settings: the plan and how it changes here; changing the password signs out the other
browsers, a wrong current password is said at its field."""

from __future__ import annotations

import httpx
from playwright.async_api import expect

from tests.browser.support import PASSWORD, Browser, login, requires_browser, signup

pytestmark = requires_browser

NEW = "a new and longer passphrase"


async def test_change_password_and_the_plan_card(browser: Browser, http: httpx.AsyncClient):
    await signup(http, "hedy@example.com", plan="personal")
    # `http` holds a second session of the account (the signup's).
    assert (await http.get("/api/v1/auth/me")).status_code == 200
    page = browser.page
    await login(browser, "hedy@example.com")
    await page.get_by_role("link", name="Settings").click()

    plan = page.locator("#plan")
    await expect(plan.get_by_role("heading")).to_have_text("Plan: Personal")
    await expect(plan).to_contain_text("gpugo user set-plan hedy@example.com PLAN")
    await expect(plan.get_by_role("meter", name="Workers (all machines)")).to_have_attribute(
        "aria-valuemax", "10"
    )

    # Every problem of the form at once.
    await page.get_by_label("New password", exact=True).fill("short")
    await page.get_by_role("button", name="Change password").click()
    await expect(page.locator("#password-current-error")).to_have_text(
        "Enter your current password."
    )
    await expect(page.locator("#password-new-error")).to_have_text("Use at least 8 characters.")
    await expect(page.get_by_label("Current password")).to_be_focused()

    # A wrong current password: the server's answer at that field; still signed in.
    await page.get_by_label("Current password").fill("not my password")
    await page.get_by_label("New password", exact=True).fill(NEW)
    await page.get_by_label("New password again").fill(NEW)
    await page.get_by_role("button", name="Change password").click()
    await expect(page.locator("#password-current-error")).to_have_text(
        "The current password is wrong."
    )
    await expect(page.get_by_label("Current password")).to_be_focused()
    assert (await http.get("/api/v1/auth/me")).status_code == 200

    await page.get_by_label("Current password").fill(PASSWORD)
    await page.get_by_role("button", name="Change password").click()
    await expect(page.get_by_text("Password changed. 1 other session ended.")).to_be_visible()
    await expect(page.get_by_label("Current password")).to_have_value("")
    await expect(page.locator("#password-title")).to_be_focused()
    # The other browser is signed out; this one stays.
    assert (await http.get("/api/v1/auth/me")).status_code == 401
    await expect(page.locator("#sessions-table tbody tr")).to_have_count(1)
    await browser.shot("settings-password")
