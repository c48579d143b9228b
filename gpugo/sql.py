"""Hand-written statements for the hot paths: one text per dialect, run on Tortoise's
connection (its pool, its transactions), without building a query per request."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from tortoise import connections

Statements = Mapping[str, str]
DIALECTS = ("postgres", "sqlite")


def per_dialect(postgres: str) -> dict[str, str]:
    """PostgreSQL's text, and SQLite's with ``?`` for ``$n``: each parameter must appear
    once, in order (anything else needs its own SQLite text)."""
    return {"postgres": postgres, "sqlite": re.sub(r"\$\d+", "?", postgres)}


def dialect() -> str:
    return connections.get("default").capabilities.dialect


async def fetch(statements: Statements, params: Sequence[Any]) -> list[dict[str, Any]]:
    client = connections.get("default")
    return await client.execute_query_dict(statements[client.capabilities.dialect], list(params))


def json_value(value: Any) -> Any:
    """A JSON column read by raw SQL: text from both drivers (no codec is registered)."""
    return orjson.loads(value) if isinstance(value, str | bytes) else value
