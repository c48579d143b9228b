"""Rate limits (the `limits` library): in memory by default, Redis across instances."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from gpugo.errors import RateLimited
from gpugo.settings import Settings


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    item: RateLimitItem


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
                "webhook_deliveries",
            )
        }

    async def hit(self, rule_name: str, *key: str) -> None:
        """Count one attempt; raise 429 (with Retry-After) once the rule is exceeded."""
        if not self.enabled:
            return
        rule = self.rules[rule_name]
        if await self._limiter.hit(rule.item, rule.name, *key):
            return
        stats = await self._limiter.get_window_stats(rule.item, rule.name, *key)
        raise RateLimited(retry_after=int(stats.reset_time - time.time()) + 1)

    async def check(self, rule_name: str, *key: str) -> None:
        """Raise 429 if the rule is already exhausted, without counting an attempt."""
        if not self.enabled:
            return
        rule = self.rules[rule_name]
        if not await self._limiter.test(rule.item, rule.name, *key):
            stats = await self._limiter.get_window_stats(rule.item, rule.name, *key)
            raise RateLimited(retry_after=int(stats.reset_time - time.time()) + 1)


def client_address(scope: Mapping[str, Any]) -> str:
    """The key per-address limits count under: the peer of the connection (ASGI scope)."""
    client = scope.get("client")
    return client[0] if client else "unknown"
