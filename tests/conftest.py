"""Test fixtures: a real database (SQLite, or PostgreSQL when GPUGO_TEST_DATABASE_URL
names one), the real app, and clients speaking HTTP to it."""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from starlette.applications import Starlette

from gpugo import clock, db
from gpugo.app import create_app
from gpugo.settings import Settings
from tests.support import PUBLIC_URL, Api, empty_database

pytest_plugins = ["tests.stall_watch"]

POSTGRES_URL = os.environ.get("GPUGO_TEST_DATABASE_URL", "")


async def _create_postgres_database(server_url: str) -> tuple[str, str]:
    parts = urlsplit(server_url)
    name = f"gpugo_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(urlunsplit(parts._replace(scheme="postgresql")))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return name, urlunsplit(parts._replace(scheme="postgres", path=f"/{name}"))


async def _drop_postgres_database(server_url: str, name: str) -> None:
    parts = urlsplit(server_url)
    admin = await asyncpg.connect(urlunsplit(parts._replace(scheme="postgresql")))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="gpugo-test-"))


@pytest.fixture(scope="session")
async def database_url(data_dir: Path) -> AsyncIterator[str]:
    """One fresh, migrated database for the whole run; each test starts it empty."""
    if POSTGRES_URL:
        name, url = await _create_postgres_database(POSTGRES_URL)
    else:
        name, url = "", f"sqlite://{data_dir / 'test.sqlite3'}"
    await db.migrate(Settings(database_url=url, data_dir=data_dir))
    yield url
    if POSTGRES_URL:
        await _drop_postgres_database(POSTGRES_URL, name)


@pytest.fixture
def is_postgres(database_url: str) -> bool:
    return database_url.startswith("postgres")


@pytest.fixture
def settings(database_url: str, data_dir: Path) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=data_dir,
        public_url=PUBLIC_URL,
        rate_limits_enabled=False,
        # No agent states read at start from a database the test is about to empty
        # (tests/rest/test_state_warm_up.py turns it on).
        agent_state_warm_up=False,
        # No background sweeps in the middle of statement counts; tests/live sweep on purpose.
        offline_sweep_seconds=3600.0,
        # Nor background audit writes: tests that read the log flush it (app.state.ctx.audit).
        audit_flush_seconds=3600.0,
        # Nor metrics writes: tests that read points flush them (tests.support.flush_metrics).
        metrics_flush_seconds=3600.0,
        # Nor rollup passes: tests that read rollups run one (services.metrics_rollups.roll_up).
        metrics_rollup_seconds=3600.0,
        # Webhook deliveries go when queued (and retried when due); no polling in between.
        webhooks_poll_seconds=3600.0,
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    application = create_app(settings, auto_migrate=False)
    clock.reset()
    async with application.router.lifespan_context(application):
        await empty_database()
        yield application
    clock.reset()


def make_client(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC_URL)


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(app) as http:
        yield http


@pytest.fixture
async def api(app: Starlette) -> AsyncIterator[Api]:
    """A factory of logged-in users speaking to the app over HTTP."""
    api = Api(app, make_client)
    yield api
    await api.aclose()
