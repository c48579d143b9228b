"""Sign up, log in, log out, wrong credentials and rate limiting, in Chromium."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import expect

from tests.browser.support import PASSWORD, Browser, chromium, live_server, requires_browser

pytestmark = requires_browser


async def test_signup_logout_wrong_password_and_login_by_keyboard(browser: Browser):
    page = browser.page
    await browser.open("/")
    # Not signed in: the login page, whatever the address asked for.
    await expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    await browser.shot("login")

    await page.get_by_role("link", name="Create an account").click()
    await expect(page.get_by_role("heading", name="Create your account")).to_be_visible()
    await page.get_by_label("E-mail").fill("ada@example.com")
    await page.get_by_label("Password").fill("short")
    await page.get_by_role("button", name="Create account").click()
    # The server's validation message, next to the password field.
    await expect(page.locator("#auth-password-error")).not_to_be_empty()
    await expect(page.get_by_label("Password")).to_have_attribute("aria-invalid", "true")

    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    await expect(page.locator("[data-plan]")).to_have_text("Free")
    await expect(page.locator(".meter").first).to_contain_text("0 / 2")
    await expect(page.get_by_text("No GPU machines yet")).to_be_visible()
    await browser.shot("overview-empty")

    await page.get_by_role("button", name="Log out").click()
    await expect(page.get_by_role("heading", name="Log in")).to_be_visible()

    # Wrong password: one clear message, the same as for an unknown e-mail.
    await page.get_by_label("E-mail").fill("ada@example.com")
    await page.get_by_label("Password").fill("not the password")
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("alert")).to_have_text("Wrong e-mail or password.")
    await browser.shot("login-wrong-password")

    # The keyboard alone: focus, type, Tab, type, Enter.
    await page.get_by_label("E-mail").focus()
    await page.keyboard.press("Control+A")
    await page.keyboard.type("ada@example.com")
    await page.keyboard.press("Tab")
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    await expect(page.locator(".email")).to_have_text("ada@example.com")


async def test_rate_limited_login_says_so(
    chromium_process, database_url: str, data_dir: Path, shots: Path
):
    async with (
        live_server(
            database_url=database_url,
            data_dir=data_dir,
            rate_limits_enabled=True,
            rate_limit_login="2/minute",
        ) as live,
        chromium(chromium_process, live.url, shots) as browser,
    ):
        page = browser.page
        await browser.open("/#/login")
        for _ in range(2):
            await page.get_by_label("E-mail").fill("nobody@example.com")
            await page.get_by_label("Password").fill("wrong password")
            await page.get_by_role("button", name="Log in").click()
            await expect(page.get_by_role("alert")).to_have_text("Wrong e-mail or password.")
        await page.get_by_role("button", name="Log in").click()
        alert = page.get_by_role("alert")
        await expect(alert).to_contain_text("Too many attempts. Try again in")
        await expect(page.get_by_role("button", name="Log in")).to_be_disabled()
        await browser.shot("login-rate-limited")
        assert browser.problems == []
