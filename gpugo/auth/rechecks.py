"""Credential re-checks of long-lived WebSockets, shared per credential.

A socket's principal is resolved again once it is about a minute old, so a revoked
PAT or session ends its subscriptions. A user with many tabs open holds many sockets
on one credential: their re-checks share one look-up (and so at most one
``last_used_at`` write) while its answer is fresh, and re-checks that come while one
is in flight wait for it. Socket ages are jittered, so re-checks spread over the
minute instead of arriving together.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from gpugo.auth.principal import Principal
from gpugo.errors import GpugoError

# Answers kept at most (credentials of recently re-checked sockets).
_REMEMBERED = 10_000


class CredentialRechecks:
    def __init__(self) -> None:
        # key -> (monotonic time resolved, the principal or the refusal)
        self._answers: OrderedDict[str, tuple[float, Principal | GpugoError]] = OrderedDict()
        self._in_flight: dict[str, asyncio.Future[Principal | GpugoError]] = {}
        self.lookups = 0

    @staticmethod
    def key(*parts: str | None) -> str:
        """What identifies a credential as presented (secrets are kept only hashed)."""
        return hashlib.sha256("\0".join(p or "" for p in parts).encode()).hexdigest()

    async def resolve(
        self, key: str, max_age: float, lookup: Callable[[], Awaitable[Principal]]
    ) -> Principal:
        """The principal for ``key``: a fresh shared answer, or one new look-up."""
        answer = self._answers.get(key)
        if answer is not None and time.monotonic() - answer[0] <= max_age:
            return _unwrap(answer[1])
        pending = self._in_flight.get(key)
        if pending is not None:
            return _unwrap(await asyncio.shield(pending))
        future: asyncio.Future[Principal | GpugoError] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            self.lookups += 1
            try:
                result: Principal | GpugoError = await lookup()
            except GpugoError as error:
                result = error
            self._answers[key] = (time.monotonic(), result)
            self._answers.move_to_end(key)
            while len(self._answers) > _REMEMBERED:
                self._answers.popitem(last=False)
            future.set_result(result)
        except BaseException as exc:
            # The look-up itself failed (the database away): waiters see the same.
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        finally:
            del self._in_flight[key]
        return _unwrap(result)


def _unwrap(answer: Principal | GpugoError) -> Principal:
    if isinstance(answer, GpugoError):
        raise answer
    return answer
