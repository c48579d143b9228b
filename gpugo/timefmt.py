"""Timestamps on the wire (RFC 3339, UTC, milliseconds, ``Z``) and from raw SQL.

Both conversions are pure and the same timestamps come back again and again (a
dashboard polling the same agents, workers and connections), so recent results are
remembered: a lookup costs a fraction of formatting or parsing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import overload

_REMEMBERED = 16384


@overload
def iso(value: datetime) -> str: ...
@overload
def iso(value: datetime | None) -> str | None: ...


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return _iso(value)


@lru_cache(maxsize=_REMEMBERED)
def _iso(value: datetime) -> str:
    # Equal instants in other zones share an entry: the output is UTC either way.
    # isoformat is C all the way (strftime is not): "...T12:00:00.123+00:00" -> "...Z".
    return value.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def parse_stored(value: datetime | str | None) -> datetime | None:
    """A timestamp column read by raw SQL: asyncpg gives datetimes, SQLite (and JSON built
    by either database) gives text; always an aware UTC datetime."""
    if value is None or isinstance(value, datetime):
        return value
    return _parse_stored_text(value)


@lru_cache(maxsize=_REMEMBERED)
def _parse_stored_text(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
