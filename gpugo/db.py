"""Tortoise configuration, migrations and the database's lifetime."""

from __future__ import annotations

import importlib
import os
from typing import Any

from tortoise import Tortoise
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.migrations.api import migrate as tortoise_migrate

from gpugo.datadir import ensure_private_database
from gpugo.settings import Settings

MODEL_MODULES = ["gpugo.models"]
SQLITE_ENGINE = "gpugo.sqlite_engine"
MIGRATIONS_PACKAGE = "gpugo.migrations"


# PostgreSQL pool bounds unless the URL sets ?minsize=&maxsize= (Tortoise's own default is
# 1..5, which queues requests behind five connections under load).
DEFAULT_POOL_MINSIZE = 2
DEFAULT_POOL_MAXSIZE = 20
# PostgreSQL connections for agentMetrics' aggregations (see metrics_client).
METRICS_POOL_MAXSIZE = 2


async def _keep_session_on_release(connection: object) -> None:
    """asyncpg's pool reset, minus its round trip.

    By default every release sends ``SELECT pg_advisory_unlock_all(); CLOSE ALL;
    UNLISTEN *; RESET ALL``: one more round trip per query outside a transaction.
    gpugo never takes advisory locks, opens cursors, LISTENs or SETs on pooled
    connections (the event bus LISTENs on its own connection), so there is nothing to
    reset; asyncpg still rolls back a transaction left open before calling this.
    """
    return None


def tortoise_config(database_url: str) -> dict[str, Any]:
    url = _normalise_url(database_url)
    connection = _expanded(url)
    if url.startswith("postgres://"):
        credentials = connection["credentials"]
        credentials.setdefault("minsize", DEFAULT_POOL_MINSIZE)
        credentials.setdefault("maxsize", DEFAULT_POOL_MAXSIZE)
        credentials["reset"] = _keep_session_on_release
    return {
        "connections": {"default": connection},
        "apps": {
            "models": {
                "models": MODEL_MODULES,
                "default_connection": "default",
                "migrations": MIGRATIONS_PACKAGE,
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def metrics_client(database_url: str) -> BaseDBAsyncClient:
    """A connection of its own for ``agentMetrics``' aggregations; it connects on first use.

    A read over a week of samples can take seconds. On SQLite the default connection
    runs one statement at a time for the whole process, so such a read would hold every
    other request; on its own connection (WAL: readers never wait for the writer) it
    holds only other metrics reads. On PostgreSQL a pool of ``METRICS_POOL_MAXSIZE``
    keeps metrics reads from taking the connections everything else needs. It is not
    one of Tortoise's named connections: with two, every transaction would have to name
    its own.
    """
    info = _expanded(_normalise_url(database_url))
    engine = importlib.import_module(info["engine"])
    client_class = (
        engine.get_client_class(info)
        if hasattr(engine, "get_client_class")
        else engine.client_class
    )
    credentials = {**info["credentials"], "connection_name": "metrics"}
    if info["engine"] == "tortoise.backends.asyncpg":
        credentials.update(minsize=1, maxsize=METRICS_POOL_MAXSIZE, reset=_keep_session_on_release)
    return client_class(**credentials)


def _expanded(url: str) -> dict[str, Any]:
    """Tortoise's connection settings for ``url``; SQLite on gpugo's engine (a
    cancellation-safe transaction start, gpugo/sqlite_engine.py)."""
    info = expand_db_url(url)
    if info["engine"] == "tortoise.backends.sqlite":
        info["engine"] = SQLITE_ENGINE
    return info


def _normalise_url(url: str) -> str:
    # asyncpg is the PostgreSQL driver; accept the common postgresql:// spelling too.
    if url.startswith("postgresql://"):
        return "postgres://" + url.removeprefix("postgresql://")
    return url


def prepare_sqlite(settings: Settings) -> None:
    """Before SQLite opens its file: created 0600 in a 0700 directory (gpugo.datadir)."""
    ensure_private_database(settings.effective_database_url, settings.data_dir)


async def migrate(settings: Settings) -> None:
    """Apply every pending migration, then leave Tortoise closed."""
    url = settings.effective_database_url
    prepare_sqlite(settings)
    try:
        await tortoise_migrate(config=tortoise_config(url))
    finally:
        await Tortoise.close_connections()


# Used by the `tortoise` CLI (makemigrations) through [tool.tortoise] in pyproject.toml.
MIGRATIONS_CONFIG = tortoise_config(os.environ.get("GPUGO_DATABASE_URL") or "sqlite://:memory:")
