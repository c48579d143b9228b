"""Metrics: the charts draw the points the agent reported, and new ones arrive live;
plans without metrics see what they would get instead of an error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import expect

from tests.browser.support import (
    LIVE_MS,
    PHONE,
    Browser,
    login,
    requires_browser,
    signup,
)

pytestmark = requires_browser

UTILIZATION = {"GPU-0": [12.5, 30.0, 55.5, 70.0, 91.0, 88.5, 60.0], "GPU-1": [5.0, 8.0, 13.0]}


def report(at: datetime, readings: dict[str, float]) -> dict:
    return {
        "timestamp": at.isoformat(),
        "system": {"cpu_usage": 20.0, "memory_used_mb": 8192, "memory_total_mb": 65536},
        "gpus": [
            {
                "gpu_id": gpu_id,
                "utilization": value,
                "vram_used_mb": int(value * 200),
                "vram_total_mb": 24564,
                "temperature": 40 + int(value / 2),
                "power_usage_w": 100 + value,
            }
            for gpu_id, value in readings.items()
        ],
    }


async def values(browser: Browser, chart: str, gpu: str) -> list[float]:
    return await browser.page.eval_on_selector_all(
        f'#svg-{chart} circle.pt[data-gpu="{gpu}"]',
        "nodes => nodes.map(n => Number(n.dataset.value))",
    )


async def test_charts_draw_the_reported_points_and_update_live(browser: Browser, http):
    account = await signup(http, "katherine@example.com", plan="pro")
    agent = await account.agent(hostname="trainer", gpus=2)
    now = datetime.now(UTC)
    # One report every 5 minutes over the last 40 minutes: one bucket each in the 1 h view.
    # GPU-1 reports only in the last three.
    samples = len(UTILIZATION["GPU-0"])
    for i in range(samples):
        at = now - timedelta(minutes=5 * (samples - i))
        readings = {"GPU-0": UTILIZATION["GPU-0"][i]}
        j = i - (samples - len(UTILIZATION["GPU-1"]))
        if j >= 0:
            readings["GPU-1"] = UTILIZATION["GPU-1"][j]
        await agent.metrics(report(at, readings))

    page = browser.page
    await login(browser, "katherine@example.com")
    await page.get_by_role("link", name="trainer").click()
    await page.get_by_role("link", name="Metrics").click()
    await expect(page.get_by_label("Range")).to_have_value("1h")
    points = page.locator('#svg-utilization circle.pt[data-gpu="GPU-0"]')
    await expect(points).to_have_count(samples)
    assert await values(browser, "utilization", "GPU-0") == UTILIZATION["GPU-0"]
    assert await values(browser, "utilization", "GPU-1") == UTILIZATION["GPU-1"]
    vram_gb = [int(v * 200) / 1024 for v in UTILIZATION["GPU-0"]]
    assert await values(browser, "vram", "GPU-0") == pytest.approx(vram_gb)
    temperatures = [40 + int(v / 2) for v in UTILIZATION["GPU-1"]]
    assert await values(browser, "temperature", "GPU-1") == temperatures
    # Each series is a drawn line too, and every point sits inside the chart.
    assert await page.locator("#svg-utilization .series polyline").count() == 2
    boxes = await page.eval_on_selector_all(
        "#svg-utilization circle.pt",
        "nodes => nodes.map(n => [Number(n.getAttribute('cx')), Number(n.getAttribute('cy'))])",
    )
    width = float(await page.get_attribute("#svg-utilization", "width"))
    assert all(0 <= x <= width and 0 <= y <= 200 for x, y in boxes)
    # Higher utilisation is drawn higher (smaller y).
    ys = [y for _, y in boxes[:samples]]
    assert ys[4] < ys[0]
    await browser.shot("metrics")

    # A new report arrives: its point is drawn without a reload.
    await page.evaluate("window.__sameLoad = true")
    await agent.metrics(report(datetime.now(UTC), {"GPU-0": 42.0, "GPU-1": 21.0}))
    await expect(points).to_have_count(samples + 1, timeout=LIVE_MS)
    assert (await values(browser, "utilization", "GPU-0"))[-1] == 42.0
    assert await page.evaluate("window.__sameLoad") is True

    # The shipped agent's way: line protocol in its status report, workers included.
    [worker] = (await agent.config())["workers"]
    ms = int(datetime.now(UTC).timestamp() * 1000)
    await agent.report(
        [{"worker_id": worker["worker_id"], "status": "running", "gpu_ids": []}],
        metrics=f"worker_metrics,worker_id={worker['worker_id']} status=1i,connections=3i,"
        f"restarts=0i {ms}\nsystem_metrics cpu_usage=5,memory_used_mb=1i,memory_total_mb=2i {ms}",
    )
    clients = page.locator('#svg-clients circle.pt[data-gpu="default"]')
    await expect(clients).to_have_count(1, timeout=LIVE_MS)
    assert await values(browser, "clients", "default") == [3.0]
    assert await values(browser, "running", "default") == [100.0]

    # Another range re-reads the same samples into wider buckets.
    await page.get_by_label("Range").select_option("24h")
    await expect(page.locator("#metrics-status")).to_contain_text("Buckets of 900 s")
    assert 1 <= await points.count() <= samples + 1

    # At phone width the charts fit the screen.
    await page.set_viewport_size(PHONE)
    await expect(points).to_have_count(await points.count())
    # The chart redraws at the new width (ResizeObserver).
    chart = page.locator("#svg-utilization")
    await expect(chart).not_to_have_attribute("width", str(int(width)))
    assert int(await chart.get_attribute("width")) < PHONE["width"]
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    await browser.shot("metrics-phone")


async def test_free_plans_see_what_metrics_would_add(browser: Browser, http):
    account = await signup(http, "mary@example.com")
    await account.agent(hostname="hobby-box", gpus=1)
    page = browser.page
    await login(browser, "mary@example.com")
    await page.get_by_role("link", name="hobby-box").click()
    await page.get_by_role("link", name="Metrics").click()
    upsell = page.locator("#metrics-upsell")
    await expect(upsell).to_contain_text("Metrics come with the Team and Pro plans")
    await expect(upsell).to_contain_text("You are on the Free plan")
    await expect(page.get_by_role("alert")).to_have_count(0)
    await expect(page.locator(".form-error.shown")).to_have_count(0)
    await browser.shot("metrics-free-plan")
