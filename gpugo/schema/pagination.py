"""Cursor connections: ``edges { cursor node }``, ``pageInfo { hasNextPage endCursor }``.

Cursors are keyset positions (creation time and id, opaque base64), so a page
boundary stays put when earlier items are added or deleted.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

import strawberry

from gpugo.errors import ValidationFailed
from gpugo.inputs.common import ID_REGEX

MAX_PAGE = 100
DEFAULT_PAGE = 100
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

T = TypeVar("T")
Position = tuple[int, str]

# What encode_cursor writes: whole microseconds since the epoch (no sign, no leading zero)
# and an id. Anything else, however it decodes, is not one of our cursors.
_CURSOR = re.compile(rf"(0|[1-9][0-9]{{0,17}}):({ID_REGEX})")
_MAX_MICROS = (datetime.max.replace(tzinfo=UTC) - _EPOCH) // _MICROSECOND
# base64 of the longest position ("<18 digits>:<32 characters>"), rounded up.
MAX_CURSOR_LENGTH = 72


@strawberry.type(description="Where a page ends, and whether another follows.")
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type(description="A page of a list; ask for the next with `after: endCursor`.")
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo
    total_count: int = strawberry.field(description="Items in the whole list, all pages.")


def position(created_at: datetime, item_id: str) -> Position:
    # Whole microseconds since the epoch: exact, unlike float timestamps.
    return ((created_at - _EPOCH) // _MICROSECOND, item_id)


def by_creation(node: Any) -> Position:
    """The position of a node with ``created_at`` and ``id`` (agents, shares)."""
    return position(node.created_at, node.id)


def encode_cursor(pos: Position) -> str:
    return base64.urlsafe_b64encode(f"{pos[0]}:{pos[1]}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Position:
    """The position of a cursor this server wrote, or 400: a cursor is client input, and
    one that decodes to something else (a time past year 9999, a text id) must not reach
    date arithmetic or the database."""
    match = None
    if len(cursor) <= MAX_CURSOR_LENGTH:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
            match = _CURSOR.fullmatch(raw)
        except (ValueError, binascii.Error):  # UnicodeDecodeError is a ValueError
            match = None
    if match is None or int(match[1]) > _MAX_MICROS:
        raise ValidationFailed.field("after", "Not a cursor of this list.")
    return (int(match[1]), match[2])


def check_first(first: int) -> None:
    if not 1 <= first <= MAX_PAGE:
        raise ValidationFailed.field("first", f"Must be between 1 and {MAX_PAGE}.")


def paginate(
    items: Sequence[T],
    *,
    first: int,
    after: str | None,
    key: Callable[[T], Position],
    newest_first: bool = False,
) -> Connection[T]:
    """One page of ``items`` in ``key`` order (``newest_first`` reverses it)."""
    check_first(first)
    start = decode_cursor(after) if after is not None else None
    ordered = sorted(items, key=key, reverse=newest_first)
    if start is not None:
        if newest_first:
            ordered = [item for item in ordered if key(item) < start]
        else:
            ordered = [item for item in ordered if key(item) > start]
    return connection(ordered[:first], key=key, has_next=len(ordered) > first, total=len(items))


def connection(
    page: Sequence[T], *, key: Callable[[T], Position], has_next: bool, total: int
) -> Connection[T]:
    """A page already cut (in memory or in SQL) as a Connection."""
    edges = [Edge(cursor=encode_cursor(key(item)), node=item) for item in page]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=has_next,
            end_cursor=edges[-1].cursor if edges else None,
        ),
        total_count=total,
    )


def position_time(pos: Position) -> tuple[datetime, str]:
    """A cursor's position as (creation time, id), for a keyset WHERE in SQL."""
    return (_EPOCH + pos[0] * _MICROSECOND, pos[1])
