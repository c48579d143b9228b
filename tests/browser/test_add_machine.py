"""The Add-machine page: a refused registration shows at once with its reason (the plan's
limit, or a body the server rejects); one command at a time (a visit shows the same one,
a new one ends the old one); a loopback endpoint in the command is warned about with the
setting to change."""

from __future__ import annotations

import httpx
from playwright.async_api import expect

from tests.browser.support import (
    LIVE_MS,
    Browser,
    gpu_infos,
    login,
    register,
    requires_browser,
    signup,
    token_from_command,
)

pytestmark = requires_browser


async def test_a_refused_registration_appears_and_one_command_at_a_time(
    browser: Browser, http: httpx.AsyncClient
):
    account = await signup(http, "ada@example.com")  # free: 2 GPUs
    await account.agent(hostname="first-box", gpus=2)
    page = browser.page
    await login(browser, "ada@example.com")
    await page.get_by_role("link", name="Add machine").click()
    command = page.locator("#install-command")
    await expect(command).to_contain_text("GPU_GO_TOKEN=")
    first = await command.inner_text()
    # The test server listens on 127.0.0.1: the page says other machines cannot reach it.
    warning = page.locator("#endpoint-warning")
    await expect(warning).to_contain_text("loopback")
    await expect(warning).to_contain_text("GPUGO_PUBLIC_URL")
    await expect(page.locator("[data-live]")).to_have_attribute("data-live", "live")

    # A machine with 4 GPUs runs the command: refused for the plan, and the page says so.
    refused = await http.post(
        "/api/v1/agents/register",
        json={"hostname": "big-box", "os": "linux", "arch": "amd64", "gpus": gpu_infos(4)},
        headers={"Authorization": f"Bearer {token_from_command(first)}"},
    )
    assert refused.status_code == 403, refused.text
    alert = page.locator("#install-refusals")
    await expect(alert).to_contain_text("big-box was refused", timeout=LIVE_MS)
    await expect(alert).to_contain_text("The free plan allows 2 GPUs")

    # An agent whose registration the server rejects (the same GPU id twice) before
    # registering anything: refused with the reason in words, and the command still works.
    twice = gpu_infos(2)
    twice[1]["gpu_id"] = twice[0]["gpu_id"]
    rejected = await http.post(
        "/api/v1/agents/register",
        json={"hostname": "odd-box", "os": "linux", "arch": "amd64", "gpus": twice},
        headers={"Authorization": f"Bearer {token_from_command(first)}"},
    )
    assert rejected.status_code == 400, rejected.text
    await expect(alert.locator("p").first).to_have_text(
        "odd-box was refused: The agent sent an invalid registration: gpus: Each gpu_id may "
        "appear only once.",
        timeout=LIVE_MS,
    )
    await expect(alert).to_contain_text("big-box was refused")
    await expect(page.locator("#install-refusal-advice")).to_contain_text("the command still works")
    await expect(command).to_have_text(first)
    await browser.shot("onboarding-refused")

    # Another visit shows the same, still unused command.
    await page.get_by_role("link", name="Overview").first.click()
    await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    await page.get_by_role("link", name="Add machine").click()
    await expect(command).to_have_text(first)
    await page.reload()
    await expect(command).to_have_text(first)

    # A new command ends the old one: a machine running the old one is refused.
    await page.get_by_role("button", name="New command").click()
    await expect(command).not_to_have_text(first)
    second = await command.inner_text()
    stale = await http.post(
        "/api/v1/agents/register",
        json={"hostname": "late-box", "os": "linux", "arch": "amd64", "gpus": []},
        headers={"Authorization": f"Bearer {token_from_command(first)}"},
    )
    assert stale.status_code == 401 and stale.json()["error"]["code"] == "token_expired"
    # The new one works (a machine without GPUs fits the plan).
    agent = await register(http, token_from_command(second), hostname="client-box", gpus=0)
    await expect(page.get_by_role("heading", name="client-box")).to_be_visible(timeout=LIVE_MS)
    assert agent.agent_id in page.url
