"""Timestamps on the wire (RFC 3339, UTC, milliseconds, ``Z``) and from raw SQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload


@overload
def iso(value: datetime) -> str: ...
@overload
def iso(value: datetime | None) -> str | None: ...


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    # isoformat is C all the way (strftime is not): "...T12:00:00.123+00:00" -> "...Z".
    return value.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def parse_stored(value: datetime | str | None) -> datetime | None:
    """A timestamp column read by raw SQL: asyncpg gives datetimes, SQLite (and JSON built
    by either database) gives text; always an aware UTC datetime."""
    if value is None or isinstance(value, datetime):
        return value
    moment = datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
