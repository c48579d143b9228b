"""A populated account: live status changes move nothing on the page; every main page
fits a 375 px phone; screenshots of each at desktop and phone width."""

from __future__ import annotations

import httpx
from playwright.async_api import expect

from tests.browser.support import (
    DESKTOP,
    LIVE_MS,
    PHONE,
    Browser,
    login,
    now_iso,
    requires_browser,
    signup,
)

pytestmark = requires_browser

BOXES = """rows => rows.map(r => {
  const b = r.getBoundingClientRect();
  return [Math.round(b.x), Math.round(b.y), Math.round(b.width), Math.round(b.height)];
})"""


async def test_live_updates_keep_the_layout_and_pages_fit_a_phone(
    browser: Browser, http: httpx.AsyncClient
):
    account = await signup(http, "margaret@example.com", plan="team")
    offline = await account.agent(hostname="a100-rack-2", gpus=4)
    online = await account.agent(hostname="studio-4090", gpus=2)
    pending = await account.agent(hostname="new-h100-node", gpus=8)
    for agent in (offline, online):
        config = await agent.config()
        await agent.report(
            workers=[
                {
                    "worker_id": w["worker_id"],
                    "status": "running",
                    "gpu_ids": w["gpu_ids"],
                    "connections": [
                        {"client_ip": "127.0.0.1", "client_port": 41000, "connected_at": now_iso()}
                    ],
                }
                for w in config["workers"]
            ]
        )
    await offline.report(event="shutdown")
    token = await account.install_token()
    short = await http.post(
        "/api/v1/shares",
        json={
            "worker_id": (await online.config())["workers"][0]["worker_id"],
            "connection_ip": "127.0.0.1",
            "max_uses": 10,
        },
        headers={"Origin": browser.base_url},
    )
    assert short.status_code == 201, short.text
    assert token

    page = browser.page
    await login(browser, "margaret@example.com")
    rows = page.locator("#agents-table tbody tr")
    await expect(rows).to_have_count(3)
    row = page.locator(f'tr[data-agent="{pending.agent_id}"]')
    await expect(row.locator(".badge")).to_have_text("Pending")
    await expect(page.locator(f'tr[data-agent="{offline.agent_id}"] .badge')).to_have_text(
        "Offline"
    )
    await expect(page.locator("[data-live]")).to_have_attribute("data-live", "live")
    before = await rows.evaluate_all(BOXES)
    heading = await page.locator("#agents-table thead").evaluate_all(BOXES)

    # The pending machine reports: its row changes in place, nothing moves.
    await pending.report()
    await expect(row.locator(".badge")).to_have_text("Online", timeout=LIVE_MS)
    await expect(row).to_contain_text("just now")
    assert await rows.evaluate_all(BOXES) == before
    assert await page.locator("#agents-table thead").evaluate_all(BOXES) == heading
    # The README shows this one (docs/overview.png).
    await browser.shot("overview-agents", fit=True)

    # Every main page at phone width: nothing wider than the screen.
    pages = [
        ("overview", "/#/", "Overview"),
        ("onboarding", "/#/add", "Add a GPU machine"),
        ("agent", f"/#/agents/{online.agent_id}", "studio-4090"),
        ("metrics", f"/#/agents/{online.agent_id}/metrics", "studio-4090"),
        ("shares", "/#/shares", "Shares"),
        ("activity", "/#/activity", "Activity"),
        ("settings", "/#/settings", "Settings"),
    ]
    for size_name, size in (("phone", PHONE), ("desktop", DESKTOP)):
        await page.set_viewport_size(size)
        for name, path, heading_text in pages:
            await browser.open(path)
            await expect(page.get_by_role("heading", name=heading_text, exact=True)).to_be_visible()
            await expect(page.locator("[aria-busy='true']")).to_have_count(0)
            if size_name == "phone":
                width = await page.evaluate("document.documentElement.scrollWidth")
                assert width <= PHONE["width"], f"{name} is {width}px wide"
                await browser.shot(f"{name}-phone")
            elif name in ("agent", "metrics"):
                await browser.shot(f"{name}-populated")
