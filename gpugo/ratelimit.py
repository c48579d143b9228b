"""Rate limits (the `limits` library): in memory by default, Redis across instances."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from gpugo.errors import RateLimited
from gpugo.observability import metrics as telemetry
from gpugo.settings import Settings


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    item: RateLimitItem


@dataclass(slots=True)
class _Turns:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    holders: int = 0


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.rate_limits_enabled
        storage = (
            storage_from_string(f"async+{settings.redis_url}")
            if settings.redis_url
            else MemoryStorage()
        )
        self._limiter = MovingWindowRateLimiter(storage)
        self.rules = {
            name: Rule(name, parse(getattr(settings, f"rate_limit_{name}")))
            for name in (
                "login",
                "signup",
                "share_miss",
                "register",
                "token_generate",
                "metrics",
                "webhook_deliveries",
            )
        }
        self._turns: dict[tuple[str, ...], _Turns] = {}
        # Told of every refused attempt (the audit log), with the rule and its key.
        self.on_refused: Callable[[str, tuple[str, ...]], None] | None = None

    def _refused(self, rule_name: str, key: tuple[str, ...]) -> None:
        telemetry.rate_limit_refusals.labels(rule_name).inc()
        if self.on_refused is not None:
            self.on_refused(rule_name, key)

    @asynccontextmanager
    async def one_at_a_time(self, rule_name: str, *key: str) -> AsyncIterator[None]:
        """Run the block alone among this process's blocks for the same rule and key.

        For a limit counted after the work it guards (a miss is known only after the
        look-up): attempts that arrive together check and count in turn, so a burst
        cannot all pass the check before the first is counted. Nothing when limits
        are off.
        """
        if not self.enabled:
            yield
            return
        name = (rule_name, *key)
        turns = self._turns.get(name)
        if turns is None:
            turns = self._turns[name] = _Turns()
        turns.holders += 1
        try:
            async with turns.lock:
                yield
        finally:
            turns.holders -= 1
            if not turns.holders:
                del self._turns[name]

    async def hit(self, rule_name: str, *key: str) -> None:
        """Count one attempt; raise 429 (with Retry-After) once the rule is exceeded."""
        if not self.enabled:
            return
        rule = self.rules[rule_name]
        if await self._limiter.hit(rule.item, rule.name, *key):
            return
        self._refused(rule_name, key)
        stats = await self._limiter.get_window_stats(rule.item, rule.name, *key)
        raise RateLimited(retry_after=int(stats.reset_time - time.time()) + 1)

    async def check(self, rule_name: str, *key: str) -> None:
        """Raise 429 if the rule is already exhausted, without counting an attempt."""
        if not self.enabled:
            return
        rule = self.rules[rule_name]
        if not await self._limiter.test(rule.item, rule.name, *key):
            self._refused(rule_name, key)
            stats = await self._limiter.get_window_stats(rule.item, rule.name, *key)
            raise RateLimited(retry_after=int(stats.reset_time - time.time()) + 1)


class Concurrency:
    """At most ``limit`` blocks running at once per key in this process; one more is
    refused at once (429), not queued: waiting requests would hold their connections."""

    def __init__(self, limit: int, message: str) -> None:
        self.limit = limit
        self.message = message
        self._running: dict[str, int] = {}

    @asynccontextmanager
    async def slot(self, key: str) -> AsyncIterator[None]:
        running = self._running.get(key, 0)
        if running >= self.limit:
            raise RateLimited(retry_after=1, message=self.message)
        self._running[key] = running + 1
        try:
            yield
        finally:
            left = self._running[key] - 1
            if left:
                self._running[key] = left
            else:
                del self._running[key]


def client_address(scope: Mapping[str, Any]) -> str:
    """The key per-address limits count under: the peer of the connection (ASGI scope)."""
    client = scope.get("client")
    return client[0] if client else "unknown"
