"""The machine page of an 8-GPU host running 6 workers: short GPU labels with the full id on
demand, shared GPUs flagged, the worker form offering free GPUs and the next free port,
keyboard focus after saving and deleting, and a 390 px phone without sideways scrolling."""

from __future__ import annotations

import uuid

import httpx
from playwright.async_api import expect

from tests.browser.support import (
    DESKTOP,
    Agent,
    Browser,
    login,
    now_iso,
    requires_browser,
    signup,
)

pytestmark = requires_browser

PHONE_390 = {"width": 390, "height": 844}
# Real hosts name GPUs by UUID: 40 characters each.
UUIDS = [f"GPU-{uuid.UUID(int=0xA1B2C3D4 + i)}" for i in range(8)]


async def eight_gpu_host(http: httpx.AsyncClient, token: str) -> Agent:
    response = await http.post(
        "/api/v1/agents/register",
        json={
            "hostname": "dgx-llama-01",
            "os": "linux",
            "arch": "amd64",
            "gpus": [
                {
                    "gpu_id": gpu_id,
                    "gpu_index": i,
                    "vendor": "nvidia",
                    "model": "NVIDIA H100 80GB HBM3",
                    "vram_mb": 81559,
                    "driver_version": "550.54.14",
                    "cuda_version": "12.4",
                }
                for i, gpu_id in enumerate(UUIDS)
            ],
            "network_ips": ["127.0.0.1"],
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return Agent(http, body["agent_id"], body["agent_secret"])


async def test_eight_gpus_six_workers_focus_and_phone_layout(browser: Browser, http):
    account = await signup(http, "ada@example.com", plan="pro")
    agent = await eight_gpu_host(http, await account.install_token())
    origin = {"Origin": browser.base_url}
    # The default worker has all 8; five more: two on GPU 0-1 (shared), three on 2..7.
    plan = [
        ("llama-70b-instruct-production", [0, 1], 9002),
        ("embeddings", [0], 9003),
        ("whisper", [2, 3], 9004),
        ("sdxl", [4, 5], 9005),
        ("batch", [6], 9006),
    ]
    for name, gpus, port in plan:
        response = await http.post(
            "/api/v1/workers",
            json={
                "agent_id": agent.agent_id,
                "name": name,
                "gpu_ids": [UUIDS[i] for i in gpus],
                "listen_port": port,
            },
            headers=origin,
        )
        assert response.status_code == 201, response.text
    config = await agent.config()
    await agent.report(
        workers=[
            {
                "worker_id": w["worker_id"],
                "status": "running",
                "gpu_ids": w["gpu_ids"],
                "connections": [
                    {"client_ip": "127.0.0.1", "client_port": 42000, "connected_at": now_iso()}
                ],
            }
            for w in config["workers"]
        ],
        # null: "not said"; the server names the running worker that has each GPU.
        gpus=[{"gpu_id": gpu_id, "used_by_worker": None} for gpu_id in UUIDS],
    )

    page = browser.page
    await login(browser, "ada@example.com")
    await browser.open(f"/#/agents/{agent.agent_id}")
    rows = page.locator("#workers-table tbody tr")
    await expect(rows).to_have_count(6)

    # Short labels, never the 40-character ids as text; the full id on hover and on demand.
    table = page.locator("#workers-table")
    await expect(table).to_contain_text("GPU 7")
    shown = await table.evaluate("t => t.innerText")
    assert all(gpu_id not in shown for gpu_id in UUIDS), shown
    chip = rows.filter(has_text="whisper").locator(".gpu-chip").first
    await expect(chip).to_have_attribute(
        "title", f"{UUIDS[2]} · NVIDIA H100 80GB HBM3 · shared with default"
    )
    first_gpu = page.locator(f'#gpus-table tr[data-gpu="{UUIDS[0]}"]')
    await expect(first_gpu.locator("code")).not_to_be_visible()
    await first_gpu.get_by_text("Full id").click()
    await expect(first_gpu.locator("code")).to_have_text(UUIDS[0])
    await expect(first_gpu).to_contain_text("shared by 3")

    # Every enabled worker claims GPUs another one has: flagged, and said once above.
    await expect(page.locator("#gpu-overlap")).to_contain_text(
        "7 GPUs are assigned to more than one worker"
    )
    await expect(
        rows.filter(has_text="whisper").locator(".tag", has_text="shared GPU")
    ).to_be_visible()

    # The docs show this one (docs/machine.png).
    await browser.shot("machine-8-gpus")

    # The default worker gives up all its GPUs but GPU 6 (which batch has too): no worker
    # has GPU 7 any more.
    await page.get_by_role("button", name="Edit default").click()
    for i in (0, 1, 2, 3, 4, 5, 7):
        await page.locator(f'input[name="gpu"][value="{UUIDS[i]}"]').uncheck()
    await page.keyboard.press("Enter")
    # Saved with the keyboard: focus is back on that worker's row, the next Tab stays there.
    await expect(page.get_by_role("button", name="Edit default")).to_be_focused()
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("button", name="Disable default")).to_be_focused()
    # GPU 0 (llama, embeddings) and GPU 6 (batch, default) are shared now.
    await expect(page.locator(".tag", has_text="shared GPU")).to_have_count(4)

    # A new worker is offered what is free: GPU 7 checked (and only it), the next port.
    await page.get_by_role("button", name="Add worker").click()
    await expect(page.get_by_label("Name")).to_be_focused()
    await expect(page.get_by_label("Port")).to_have_value("9007")
    await expect(page.locator("#worker-port-hint")).to_contain_text("In use: 9001, 9002")
    checked = page.locator('input[name="gpu"]:checked')
    await expect(checked).to_have_count(1)
    await expect(checked).to_have_value(UUIDS[7])
    await expect(page.locator("#worker-gpus")).to_contain_text("Free: GPU 7.")
    free = page.locator(".gpu-check").filter(has=page.locator(f'input[value="{UUIDS[7]}"]'))
    await expect(free).to_contain_text("GPU 7 · H100 80GB HBM3")
    await expect(free.locator(".gpu-free")).to_have_text(" · free")
    taken = page.locator(".gpu-check").filter(has=page.locator(f'input[value="{UUIDS[6]}"]'))
    await expect(taken.locator(".gpu-taken")).to_have_text(" · in default, batch")
    await page.get_by_role("button", name="Cancel").click()
    await expect(page.get_by_role("button", name="Add worker")).to_be_focused()

    # Every error of the form at once, in plain words.
    await page.get_by_role("button", name="Add worker").click()
    await page.get_by_label("Port").fill("")
    await page.locator(f'input[name="gpu"][value="{UUIDS[7]}"]').uncheck()
    # More than a GraphQL Int holds: said at the field, never the server's parser's words.
    await page.get_by_label("VRAM limit (MiB)").fill("99999999999")
    await page.get_by_role("button", name="Create worker").click()
    await expect(page.locator("#worker-name-error")).to_have_text("Enter a name for the worker.")
    await expect(page.locator("#worker-port-error")).to_have_text("Enter a port number.")
    await expect(page.locator("#worker-gpus-error")).to_have_text("Choose at least one GPU.")
    await expect(page.locator("#worker-vram-error")).to_have_text(
        "Enter whole MiB from 1 to 2147483647, or leave empty for no limit."
    )
    await expect(page.get_by_label("Name")).to_be_focused()
    await page.get_by_role("button", name="Cancel").click()

    # Taken as offered: the new worker has GPU 7 to itself, on port 9007.
    await page.get_by_role("button", name="Add worker").click()
    await page.get_by_label("Name").fill("mistral-7b")
    await page.get_by_role("button", name="Create worker").click()
    await expect(rows).to_have_count(7)
    created = rows.filter(has_text="mistral-7b")
    await expect(created).to_contain_text("9007")
    await expect(created.locator(".gpu-chip")).to_have_text(["GPU 7"])
    await expect(created.locator(".tag", has_text="shared GPU")).to_have_count(0)

    # Deleting a worker: focus moves to the next worker's row, not to the page's end.
    await page.get_by_role("button", name="Delete embeddings").click()
    await page.get_by_role("dialog").get_by_role("button", name="Delete worker").click()
    await expect(rows).to_have_count(6)
    await expect(page.get_by_role("button", name="Edit whisper")).to_be_focused()

    # A 390 px phone with a touch screen: nothing wider than the screen, and everything a
    # finger taps at least 44 px tall: row buttons, navigation links, text fields, menus.
    await page.set_viewport_size(PHONE_390)
    touch = await browser.context.new_cdp_session(page)
    await touch.send("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 5})
    await browser.open(f"/#/agents/{agent.agent_id}")
    await expect(rows).to_have_count(6)
    assert await page.evaluate("matchMedia('(pointer: coarse)').matches")
    await page.get_by_role("button", name="Add worker").click()
    await expect(page.get_by_label("Name")).to_be_focused()
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, overflow
    for targets in (
        "#workers-table .btn",
        ".nav a",
        ".tabs a",
        ".crumbs a",
        ".worker-form input:not([type=checkbox])",
        ".worker-form select",
        ".worker-form .check",
    ):
        heights = await page.locator(targets).evaluate_all(
            "els => els.map(e => e.getBoundingClientRect().height)"
        )
        assert heights and min(heights) >= 44, (targets, heights)
    await page.get_by_role("button", name="Cancel").click()
    await browser.shot("machine-8-gpus-phone")
    await touch.send("Emulation.setTouchEmulationEnabled", {"enabled": False})
    await page.set_viewport_size(DESKTOP)


async def test_name_and_tags_dialog_says_every_problem_and_returns_focus(
    browser: Browser, http: httpx.AsyncClient
):
    account = await signup(http, "grace@example.com")
    agent = await account.agent(hostname="rack-host", gpus=1)
    page = browser.page
    await login(browser, "grace@example.com")
    await browser.open(f"/#/agents/{agent.agent_id}")
    opener = page.get_by_role("button", name="Edit name and tags")
    await opener.click()
    dialog = page.get_by_role("dialog")
    name, tags = dialog.get_by_label("Display name"), dialog.get_by_label("Tags")
    await expect(name).to_be_focused()
    # The limits, before anything is typed.
    await expect(dialog.locator("#labels-name-hint")).to_contain_text("Up to 100 characters")
    await expect(dialog.locator("#labels-tags-hint")).to_contain_text(
        "Up to 16, separated by commas; each 1 to 32 letters, digits or . _ : / -"
    )

    # Every problem of both fields at once, in plain words; focus on the first.
    await name.fill("n" * 101)
    await tags.fill(", ".join(["a100", "rack 3", *(f"t{i}" for i in range(16))]))
    await dialog.get_by_role("button", name="Save").click()
    await expect(dialog.locator("#labels-name-error")).to_have_text(
        "Use at most 100 characters (this name has 101)."
    )
    await expect(dialog.locator("#labels-tags-error")).to_have_text(
        "“rack 3” is not a tag: a tag is 1 to 32 letters, digits or . _ : / -. "
        "Use at most 16 tags (there are 18)."
    )
    await expect(name).to_be_focused()
    await expect(tags).to_have_attribute("aria-invalid", "true")
    await browser.shot("machine-labels-errors", full_page=False)

    # What only the server sees (a control character) comes back at its field, plainly.
    await name.fill("Training\x07box")
    await tags.fill("rack-3, a100, RACK-3")
    await dialog.get_by_role("button", name="Save").click()
    await expect(dialog.locator("#labels-name-error")).to_have_text(
        "Use printable characters only."
    )
    await expect(dialog.locator("#labels-tags-error")).to_have_text("")
    await expect(name).to_be_focused()
    shown = await dialog.inner_text()
    assert "Invalid request" not in shown and "Value error" not in shown, shown

    # Saved: the dialog closes and focus is back on the button that opened it.
    await name.fill("Training box")
    await page.keyboard.press("Enter")
    await expect(dialog).to_have_count(0)
    await expect(page.locator("#display-name")).to_have_text("Training box")
    await expect(page.locator(".facts .labels .tag")).to_have_text(["rack-3", "a100"])
    await expect(opener).to_be_focused()

    # Escape (or Cancel) gives focus back the same way, and changes nothing.
    await page.keyboard.press("Enter")
    await expect(dialog.get_by_label("Tags")).to_have_value("rack-3, a100")
    await page.keyboard.press("Escape")
    await expect(dialog).to_have_count(0)
    await expect(opener).to_be_focused()
