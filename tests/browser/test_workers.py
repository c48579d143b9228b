"""Workers on the agent page: create, a port conflict and the plan limit at their fields,
edit, disable, delete with confirmation; and deleting the machine."""

from __future__ import annotations

import re

from playwright.async_api import expect

from tests.browser.support import Browser, login, requires_browser, signup

pytestmark = requires_browser


async def test_worker_create_conflict_plan_limit_edit_disable_delete(browser: Browser, http):
    account = await signup(http, "linus@example.com")  # free: 2 workers, 2 GPUs
    agent = await account.agent(hostname="render-01", gpus=2)
    page = browser.page
    await login(browser, "linus@example.com")
    await page.get_by_role("link", name="render-01").click()
    await expect(page.get_by_role("heading", name="render-01")).to_be_visible()
    rows = page.locator("#workers-table tbody tr")
    await expect(rows).to_have_count(1)

    # The default worker holds port 9001: the server's conflict shows at the port field.
    await page.get_by_role("button", name="Add worker").click()
    await expect(page.get_by_label("Name")).to_be_focused()
    await page.get_by_label("Name").fill("inference")
    await page.get_by_label("Port").fill("9001")
    await page.get_by_label(re.compile(r"^GPU-1 · RTX 4090 · 24 GB")).check()
    await page.get_by_role("button", name="Create worker").click()
    port_error = page.locator("#worker-port-error")
    await expect(port_error).to_have_text(
        "Port 9001 is already used by worker 'default' on this agent."
    )
    await expect(page.get_by_label("Port")).to_have_attribute("aria-invalid", "true")
    await expect(page.get_by_label("Port")).to_be_focused()
    await expect(page.locator("#worker-name-error")).to_be_empty()
    await browser.shot("worker-port-conflict")

    # No GPU chosen: the validation message sits at the GPU choice.
    await page.get_by_label("Port").fill("9100")
    await page.get_by_label(re.compile(r"^GPU-1 · RTX 4090 · 24 GB")).uncheck()
    await page.get_by_role("button", name="Create worker").click()
    await expect(page.locator("#worker-gpus-error")).not_to_be_empty()
    await expect(port_error).to_be_empty()

    await page.get_by_label(re.compile(r"^GPU-1 · RTX 4090 · 24 GB")).check()
    await page.get_by_role("button", name="Create worker").click()
    await expect(rows).to_have_count(2)
    row = rows.filter(has_text="inference")
    await expect(row).to_contain_text("9100")
    await expect(row.locator(".badge")).to_have_text("Pending")
    await expect(page.locator("#config-sync")).to_contain_text("v2")

    # Focus is back on the new worker's row, not at the top of the page.
    await expect(page.get_by_role("button", name="Edit inference")).to_be_focused()

    # A third worker is over the free plan's two: said before any form is filled in.
    limit = page.locator("#worker-limit")
    await expect(limit).to_contain_text("2 workers are all in use")
    add = page.get_by_role("button", name="Add worker")
    await expect(add).to_have_attribute("aria-disabled", "true")
    await add.click(force=True)
    await expect(page.locator(".worker-form")).to_have_count(0)
    await browser.shot("worker-plan-limit")

    # Edit: rename and move the port.
    await page.get_by_role("button", name="Edit inference").click()
    await expect(page.get_by_label("Name")).to_have_value("inference")
    await page.get_by_label("Name").fill("inference-b")
    await page.get_by_label("Port").fill("9101")
    await page.get_by_role("button", name="Save worker").click()
    row = rows.filter(has_text="inference-b")
    await expect(row).to_contain_text("9101")

    # Limits the agent applies: a bad one at its field, good ones kept, then removed.
    await page.get_by_role("button", name="Edit inference-b").click()
    await page.get_by_label("Compute limit (%)").fill("150")
    await page.get_by_role("button", name="Save worker").click()
    await expect(page.locator("#worker-compute-error")).not_to_be_empty()
    await page.get_by_label("Compute limit (%)").fill("50")
    await page.get_by_label("VRAM limit (MiB)").fill("8192")
    await page.get_by_label("Isolation").select_option("soft")
    await page.get_by_role("button", name="Save worker").click()
    await expect(page.locator(".worker-form")).to_have_count(0)
    [config] = [w for w in (await agent.config())["workers"] if w["listen_port"] == 9101]
    assert (config["vram_mb"], config["compute_percent"], config["isolation_mode"]) == (
        8192,
        50,
        "soft",
    )
    await page.get_by_role("button", name="Edit inference-b").click()
    await expect(page.get_by_label("Compute limit (%)")).to_have_value("50")
    await page.get_by_label("VRAM limit (MiB)").fill("")
    await page.get_by_role("button", name="Save worker").click()
    await expect(page.locator(".worker-form")).to_have_count(0)

    # Restart: requested over the machine's push channel; a disabled worker has no button.
    await page.get_by_role("button", name="Restart inference-b").click()
    await expect(page.get_by_text("Restart of inference-b requested.")).to_be_visible()

    # Disable, enable.
    await page.get_by_role("button", name="Disable inference-b").click()
    await expect(row.locator(".tag")).to_have_text("disabled")
    await expect(page.get_by_role("button", name="Restart inference-b")).to_have_count(0)
    await page.get_by_role("button", name="Enable inference-b").click()
    await expect(row.locator(".tag", has_text="disabled")).to_have_count(0)
    # Enabled again, it shares GPU-1 with the default worker: flagged on its row.
    await expect(row.locator(".tag", has_text="shared GPU")).to_be_visible()

    # The agent reports the worker running with two clients: it shows without a reload.
    config = await agent.config()
    worker_id = next(w["worker_id"] for w in config["workers"] if w["listen_port"] == 9101)
    from tests.browser.support import now_iso

    await agent.report(
        workers=[
            {
                "worker_id": worker_id,
                "status": "running",
                "gpu_ids": ["GPU-1"],
                "connections": [
                    {"client_ip": "127.0.0.1", "client_port": 40001, "connected_at": now_iso()},
                    {"client_ip": "127.0.0.1", "client_port": 40002, "connected_at": now_iso()},
                ],
            }
        ]
    )
    await expect(row.locator(".badge")).to_have_text("Running")
    await expect(row).to_contain_text("2 clients")
    await browser.shot("agent-workers")

    # Delete asks first; Cancel keeps it, confirming deletes it.
    await page.get_by_role("button", name="Delete inference-b").click()
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_contain_text("Delete worker inference-b?")
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(dialog).to_have_count(0)
    await expect(rows).to_have_count(2)
    await page.get_by_role("button", name="Delete inference-b").click()
    await page.get_by_role("dialog").get_by_role("button", name="Delete worker").click()
    await expect(rows).to_have_count(1)

    # Deleting the machine, confirmed, goes back to an empty overview.
    await page.get_by_role("button", name="Delete machine…").click()
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_contain_text("Delete render-01?")
    await page.keyboard.press("Escape")
    await expect(dialog).to_have_count(0)
    await page.get_by_role("button", name="Delete machine…").click()
    await page.get_by_role("dialog").get_by_role("button", name="Delete machine").click()
    await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    await expect(page.get_by_text("No GPU machines yet")).to_be_visible()
