"""Hand-written statements for the hot paths: one text per dialect, run on Tortoise's
connection (its pool, its transactions), without building a query per request."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from tortoise import connections

Statements = Mapping[str, str]


# PostgreSQL's spelling -> SQLite's, for what the hand-written statements use.
_TO_SQLITE = (
    ("json_agg(", "json_group_array("),  # JSON array of rows
    ("json_build_array(", "json_array("),  # JSON array of values
    ("to_json(", "json("),  # a JSON column embedded as JSON, not as text
    (" FOR UPDATE SKIP LOCKED", ""),  # SQLite writes one at a time anyway
)


def per_dialect(postgres: str) -> dict[str, str]:
    """PostgreSQL's text, and SQLite's: ``?`` for ``$n`` (each parameter must appear
    once, in order) and the spellings of ``_TO_SQLITE``."""
    sqlite = re.sub(r"\$\d+", "?", postgres)
    for theirs, ours in _TO_SQLITE:
        sqlite = sqlite.replace(theirs, ours)
    return {"postgres": postgres, "sqlite": sqlite}


async def fetch(statements: Statements, params: Sequence[Any]) -> list[dict[str, Any]]:
    client = connections.get("default")
    return await client.execute_query_dict(statements[client.capabilities.dialect], list(params))


def json_value(value: Any) -> Any:
    """A JSON column read by raw SQL: text from both drivers (no codec is registered)."""
    return orjson.loads(value) if isinstance(value, str | bytes) else value
