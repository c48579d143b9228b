"""Helpers for the dashboard's browser tests: a live server, Chromium, agents over REST."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from gpugo import clock
from gpugo.app import create_app
from gpugo.settings import Settings
from tests.support import empty_database

try:
    from playwright.async_api import Browser as PlaywrightBrowser
    from playwright.async_api import BrowserContext, Page, async_playwright
except ImportError:  # pragma: no cover - the dev extra installs it
    async_playwright = None

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Every wait in the browser is bounded by this (milliseconds).
TIMEOUT_MS = 10_000
# What a live update (subscription, or the polling fallback) may take to show.
LIVE_MS = 15_000
PASSWORD = "correct horse battery"
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 375, "height": 812}


def _skip_reason() -> str | None:
    if async_playwright is None:
        return "Playwright for Python is not installed (pip install -e '.[dev]')"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is absent (Debian: apt-get install -y chromium; .ci/run does it)"
    return None


requires_browser = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")


def screenshot_dir(database_url: str) -> Path:
    base = Path(
        os.environ.get("GPUGO_SCREENSHOT_DIR") or Path(tempfile.gettempdir()) / "gpugo-screenshots"
    )
    kind = "postgres" if database_url.startswith("postgres") else "sqlite"
    path = base / kind
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class Live:
    """gpugo behind a real uvicorn on 127.0.0.1, on the test's event loop."""

    url: str
    app: Starlette
    settings: Settings


@asynccontextmanager
async def live_server(
    *, database_url: str, data_dir: Path, **overrides: Any
) -> AsyncIterator[Live]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    values: dict[str, Any] = {
        "database_url": database_url,
        "data_dir": data_dir,
        "public_url": url,
        "rate_limits_enabled": False,
        "offline_sweep_seconds": 3600.0,
        # Charts of 5 minutes and more read the rollups: kept up to date at once.
        "metrics_rollup_seconds": 0.5,
    }
    values.update(overrides)
    settings = Settings(**values)
    app = create_app(settings, auto_migrate=False)
    clock.reset()
    try:
        async with app.router.lifespan_context(app):
            await empty_database()
            server = uvicorn.Server(
                uvicorn.Config(app, lifespan="off", log_level="warning", ws="websockets-sansio")
            )
            task = asyncio.create_task(server.serve(sockets=[sock]))
            try:
                async with asyncio.timeout(10):
                    while not server.started:
                        if task.done():
                            task.result()
                        await asyncio.sleep(0.01)
                yield Live(url, app, settings)
            finally:
                server.should_exit = True
                # Open WebSockets would hold a graceful shutdown; the browser is gone by now.
                server.force_exit = True
                await asyncio.wait_for(task, 15)
    finally:
        sock.close()
        clock.reset()


@dataclass
class Browser:
    context: BrowserContext
    page: Page
    base_url: str
    shots: Path
    problems: list[str] = field(default_factory=list)
    foreign_requests: list[str] = field(default_factory=list)

    async def open(self, path: str = "/") -> None:
        await self.page.goto(f"{self.base_url}{path}")

    async def shot(self, name: str, *, full_page: bool = True, fit: bool = False) -> Path:
        """A PNG of the page; ``fit``: the viewport's width, down to the end of <main>."""
        path = self.shots / f"{name}.png"
        clip = None
        if fit:
            bottom = await self.page.evaluate(
                "Math.ceil(document.querySelector('main').getBoundingClientRect().bottom)"
            )
            viewport = self.page.viewport_size or DESKTOP
            clip = {"x": 0, "y": 0, "width": viewport["width"], "height": bottom}
            full_page = False
        # Toasts are fixed to the viewport: in a full-page picture they would float over
        # whatever sits there. (Through the CSSOM: the page's CSP refuses injected styles.)
        hide = "document.getElementById('toasts').style.display = %s"
        await self.page.evaluate(hide % "'none'")
        try:
            await self.page.screenshot(
                path=str(path), full_page=full_page, clip=clip, animations="disabled", caret="hide"
            )
        finally:
            await self.page.evaluate(hide % "''")
        return path

    async def clipboard(self) -> str:
        return await self.page.evaluate("navigator.clipboard.readText()")


@asynccontextmanager
async def launch_chromium() -> AsyncIterator[PlaywrightBrowser]:
    """Debian's Chromium (never a downloaded one), headless; closed in finally.

    One per test session: Playwright gives it a fresh temporary profile, and every test
    gets its own isolated context (cookies, storage, permissions) from ``chromium``.
    """
    assert async_playwright is not None
    playwright = await async_playwright().start()
    browser = None
    try:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            timeout=30_000,
        )
        yield browser
    finally:
        if browser is not None:
            await browser.close()
        await playwright.stop()


@asynccontextmanager
async def chromium(
    process: PlaywrightBrowser, base_url: str, shots: Path
) -> AsyncIterator[Browser]:
    """A new, empty browser context with one page; closed in finally."""
    context = await process.new_context(
        viewport=DESKTOP,
        locale="en-GB",
        timezone_id="UTC",
        permissions=["clipboard-read", "clipboard-write"],
    )
    try:
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(TIMEOUT_MS)
        page = await context.new_page()
        browser = Browser(context, page, base_url, shots)

        def on_console(message: Any) -> None:
            if message.type == "error":
                browser.problems.append(f"console: {message.text}")

        def on_request(request: Any) -> None:
            url = request.url
            if not (url.startswith(base_url) or url.startswith(("data:", "blob:"))):
                ws = base_url.replace("http://", "ws://", 1)
                if not url.startswith(ws):
                    browser.foreign_requests.append(url)

        page.on("console", on_console)
        page.on("pageerror", lambda error: browser.problems.append(f"page error: {error}"))
        page.on("request", on_request)
        yield browser
    finally:
        await context.close()


def gpu_infos(count: int) -> list[dict[str, Any]]:
    return [
        {
            "gpu_id": f"GPU-{i}",
            "vendor": "nvidia",
            "model": "NVIDIA GeForce RTX 4090",
            "vram_mb": 24564,
            "driver_version": "550.54.14",
            "cuda_version": "12.4",
        }
        for i in range(count)
    ]


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class Agent:
    """A GPU Go agent speaking REST to the live server with its own secret."""

    def __init__(self, http: httpx.AsyncClient, agent_id: str, secret: str) -> None:
        self.http = http
        self.agent_id = agent_id
        self.secret = secret

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}

    async def report(self, workers: list[dict[str, Any]] | None = None, **extra: Any) -> None:
        body = {"timestamp": now_iso(), "gpus": [], "workers": workers or [], **extra}
        response = await self.http.post(
            f"/api/v1/agents/{self.agent_id}/status", json=body, headers=self.auth
        )
        assert response.status_code in (200, 201), response.text

    async def config(self) -> dict[str, Any]:
        response = await self.http.get(f"/api/v1/agents/{self.agent_id}/config", headers=self.auth)
        assert response.status_code == 200, response.text
        return response.json()

    async def metrics(self, body: dict[str, Any]) -> None:
        response = await self.http.post(
            f"/api/v1/agents/{self.agent_id}/metrics", json=body, headers=self.auth
        )
        assert response.status_code == 200, response.text


async def register(
    http: httpx.AsyncClient, token: str, *, hostname: str = "gpu-host-1", gpus: int = 2
) -> Agent:
    response = await http.post(
        "/api/v1/agents/register",
        json={
            "hostname": hostname,
            "os": "linux",
            "arch": "amd64",
            "gpus": gpu_infos(gpus),
            "network_ips": ["127.0.0.1"],
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return Agent(http, body["agent_id"], body["agent_secret"])


def token_from_command(command: str) -> str:
    match = re.search(r'GPU_GO_TOKEN="([^"]+)"', command)
    assert match, command
    return match.group(1)


class Account:
    """A user made over HTTP (signup), for tests whose subject is not the sign-up form."""

    def __init__(self, http: httpx.AsyncClient, email: str) -> None:
        self.http = http
        self.email = email

    async def install_token(self) -> str:
        response = await self.http.post(
            "/api/v1/tokens/generate",
            json={"type": "agent_install"},
            headers={"Origin": str(self.http.base_url).rstrip("/")},
        )
        assert response.status_code == 201, response.text
        return response.json()["token"]

    async def agent(self, *, hostname: str = "gpu-host-1", gpus: int = 2) -> Agent:
        return await register(self.http, await self.install_token(), hostname=hostname, gpus=gpus)


async def signup(http: httpx.AsyncClient, email: str, plan: str = "free") -> Account:
    response = await http.post(
        "/api/v1/auth/signup",
        json={"email": email, "password": PASSWORD},
        headers={"Origin": str(http.base_url).rstrip("/")},
    )
    assert response.status_code == 201, response.text
    if plan != "free":
        from gpugo.models import User

        await User.filter(email=email).update(plan=plan)
    return Account(http, email)


async def login(browser: Browser, email: str, password: str = PASSWORD) -> None:
    """Through the login form, as a person would; ends on the overview."""
    from playwright.async_api import expect

    page = browser.page
    await browser.open("/#/login")
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
