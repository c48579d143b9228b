"""Settings: the personal access token is shown once, copied, used, regenerated, deleted."""

from __future__ import annotations

import re

import httpx
from playwright.async_api import expect

from tests.browser.support import Browser, login, requires_browser, signup

pytestmark = requires_browser


async def me_with(http: httpx.AsyncClient, token: str) -> int:
    response = await http.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    return response.status_code


async def test_the_token_is_shown_once_and_can_be_regenerated_and_deleted(
    browser: Browser, http: httpx.AsyncClient
):
    await signup(http, "barbara@example.com")
    page = browser.page
    await login(browser, "barbara@example.com")
    await page.get_by_role("link", name="Settings").click()
    await expect(page.get_by_role("heading", name="Personal access token")).to_be_visible()
    await expect(page.locator("#pat-info")).to_have_text("You have no token.")

    await page.get_by_label("Valid for").select_option("30")
    await page.get_by_role("button", name="Create token").click()
    shown = page.get_by_label("Your new token")
    await expect(shown).to_have_value(re.compile(r"^gpgo_pat_\S{20,}$"))
    token = await shown.input_value()
    await expect(shown).to_be_focused()
    await expect(page.get_by_text("It is shown only this once")).to_be_visible()
    await page.get_by_role("button", name="Copy token").click()
    assert await browser.clipboard() == token
    await expect(page.locator("#pat-last-used")).to_have_text("Never")
    await browser.shot("settings-token-shown")

    # It works, and the page says it was used.
    assert await me_with(http, token) == 200

    # Shown once: after a reload the secret is nowhere on the page.
    await page.reload()
    await expect(page.get_by_role("heading", name="Personal access token")).to_be_visible()
    await expect(page.locator("#pat-last-used")).not_to_have_text("Never")
    assert token not in await page.content()
    await expect(page.get_by_label("Your new token")).to_have_count(0)
    await browser.shot("settings")

    # Regenerate: asked first; the old token dies at once, the new one is shown once.
    await page.get_by_role("button", name="Regenerate token").click()
    await page.get_by_role("dialog").get_by_role("button", name="Regenerate").click()
    fresh = page.get_by_label("Your new token")
    await expect(fresh).not_to_have_value(token)
    new_token = await fresh.input_value()
    assert new_token.startswith("gpgo_pat_")
    assert await me_with(http, token) == 401
    assert await me_with(http, new_token) == 200
    await page.get_by_role("button", name="Done, I have copied it").click()
    await expect(page.get_by_label("Your new token")).to_have_count(0)

    await page.get_by_role("button", name="Delete token").click()
    await page.get_by_role("dialog").get_by_role("button", name="Delete token").click()
    await expect(page.locator("#pat-info")).to_have_text("You have no token.")
    assert await me_with(http, new_token) == 401
