"""Resolver helpers: answer synchronously whenever the value is already at hand.

graphql-core awaits a resolver's result only when it is awaitable, and every
awaitable costs a coroutine and, inside lists, a task. Resolvers here are plain
functions that return known values directly and a coroutine only for a real load.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def then(value: T | Awaitable[T], fn: Callable[[T], R]) -> Any:
    """``fn(value)`` now, or a coroutine of it when ``value`` is awaitable."""
    if inspect.isawaitable(value):
        return _then(value, fn)
    return fn(value)  # type: ignore[arg-type]


async def _then(value: Awaitable[T], fn: Callable[[T], R]) -> R:
    return fn(await value)
