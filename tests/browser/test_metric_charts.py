"""Charts of a machine with 8 GPUs: the legend hides and shows a GPU's lines, a crosshair
reads every series at one time (mouse, touch and keys), the latest reading per GPU, power
and host charts, a custom range, and a reason whenever there is nothing to draw."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from playwright.async_api import expect

from tests.browser.support import Browser, login, requires_browser, signup

pytestmark = requires_browser

GPUS = 8


def report(at: datetime, step: int) -> dict:
    return {
        "timestamp": at.isoformat(),
        "system": {"cpu_usage": 10.0 + step, "memory_used_mb": 16384, "memory_total_mb": 65536},
        "gpus": [
            {
                "gpu_id": f"GPU-{g}",
                "utilization": 10.0 * g + step,
                "vram_used_mb": 1024 * (g + 1),
                "vram_total_mb": 24564,
                "temperature": 50 + g,
                "power_usage_w": 100 + 10 * g,
            }
            for g in range(GPUS)
        ],
    }


async def test_legend_crosshair_table_power_host_and_custom_range(browser: Browser, http):
    account = await signup(http, "barbara@example.com", plan="team")
    agent = await account.agent(hostname="eight-way", gpus=GPUS)
    quiet = await account.agent(hostname="quiet", gpus=1)
    await quiet.report()  # online, but never sends metrics
    await agent.report()
    now = datetime.now(UTC)
    for step in range(4):
        await agent.metrics(report(now - timedelta(minutes=5 * (4 - step)), step))

    page = browser.page
    # The charts' queries, as the page sends them.
    asked: list[str] = []
    page.on(
        "request",
        lambda r: asked.append(r.post_data or "") if r.url.endswith("/graphql") else None,
    )
    await login(browser, "barbara@example.com")
    await browser.open(f"/#/agents/{agent.agent_id}/metrics")
    gpu3 = page.locator('#svg-utilization circle.pt[data-gpu="GPU-3"]')
    await expect(gpu3).to_have_count(4)
    await expect(page.locator("#svg-utilization .series")).to_have_count(GPUS)
    # Drawn from each series' columns (one array per value), not from its points.
    charts = [body for body in asked if "agentMetrics(agentId" in body]
    assert charts and all("columns" in b and "points" not in b for b in charts), charts

    # The legend hides GPU-3's lines on every GPU chart, and shows them again.
    toggle = page.locator('.legend-toggle[data-gpu="GPU-3"]')
    await expect(toggle).to_have_attribute("aria-pressed", "true")
    await toggle.click()
    await expect(toggle).to_have_attribute("aria-pressed", "false")
    await expect(gpu3).to_have_count(0)
    await expect(page.locator('#svg-temperature circle.pt[data-gpu="GPU-3"]')).to_have_count(0)
    await expect(page.locator("#svg-utilization .series")).to_have_count(GPUS - 1)
    await toggle.click()
    await expect(gpu3).to_have_count(4)

    # The crosshair: pointing at the chart reads every GPU at that time.
    svg = page.locator("#svg-utilization")
    await svg.scroll_into_view_if_needed()
    box = await svg.bounding_box()
    assert box is not None
    await page.mouse.move(box["x"] + box["width"] - 14, box["y"] + 100)
    readout = page.locator("#chart-utilization .chart-readout")
    await expect(readout.locator(".readout-item")).to_have_count(GPUS)
    await expect(readout.locator('[data-series="GPU-5"] .readout-value')).to_have_text("53 %")
    await expect(page.locator("#svg-utilization .crosshair")).to_have_attribute(
        "visibility", "visible"
    )
    # Keys move it a bucket at a time (and a touch is a pointer too).
    hit = page.locator("#svg-utilization .hit")
    await hit.focus()
    await page.keyboard.press("ArrowLeft")
    await expect(readout.locator('[data-series="GPU-5"] .readout-value')).to_have_text("52 %")
    await hit.dispatch_event(
        "pointerdown",
        {"pointerType": "touch", "clientX": box["x"] + 60, "clientY": box["y"] + 100},
    )
    await expect(readout.locator('[data-series="GPU-0"] .readout-value')).to_have_text("0 %")

    # The latest reading of each GPU as numbers; power and the host charted.
    table = page.locator("#current-values")
    await expect(table.locator("tbody tr")).to_have_count(GPUS)
    row = table.locator('tr[data-gpu="GPU-7"]')
    await expect(row.locator(".util")).to_have_text("73 %")
    await expect(row).to_contain_text("170 W")
    await expect(row).to_contain_text("57 °C")
    await expect(page.locator('#svg-power circle.pt[data-gpu="GPU-7"]')).to_have_count(4)
    cpu = await page.eval_on_selector_all(
        '#svg-cpu circle.pt[data-gpu="host"]', "ns => ns.map(n => Number(n.dataset.value))"
    )
    assert cpu == [10.0, 11.0, 12.0, 13.0]
    await expect(page.locator('#svg-memory circle.pt[data-gpu="host"]')).to_have_count(4)
    await browser.shot("metrics-8-gpus")

    # A custom range before the samples: nothing, and it says why.
    await page.get_by_label("Range").select_option("custom")
    start = (now - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    end = (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    await page.get_by_label("From", exact=True).fill(start)
    await page.get_by_label("To", exact=True).fill(end)
    await page.get_by_role("button", name="Show").click()
    await expect(page.locator("#metrics-status")).to_contain_text("No samples in this range")
    await expect(page.locator("#svg-utilization .empty-note")).to_have_text(
        "No samples in this range"
    )
    await expect(gpu3).to_have_count(0)
    # A range ending before it starts is refused on the page.
    await page.get_by_label("To", exact=True).fill(
        (now - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    )
    await page.get_by_role("button", name="Show").click()
    await expect(page.locator(".custom-range .form-error")).to_contain_text("after the start")
    # Back to a sliding range: the samples again.
    await page.get_by_label("Range").select_option("1h")
    await expect(gpu3).to_have_count(4)

    # A machine that reports but sends no metrics: the page says so.
    await browser.open(f"/#/agents/{quiet.agent_id}/metrics")
    await expect(page.locator("#metrics-status")).to_contain_text("sends no GPU metrics")
    await expect(page.locator("#svg-utilization .empty-note")).to_have_text(
        "The agent sends no metrics"
    )
