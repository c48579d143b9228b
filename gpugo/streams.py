"""Long-lived streams held per owner: at most a few each, the oldest ended first.

An agent's event streams, a user's GraphQL WebSockets and the unauthenticated push
channel's streams per topic stay open by design, and each costs memory, a bus
subscription and a connection. One credential (or one topic) must not hold
thousands of them. A new stream always gets through (a reconnecting client must
never find itself locked out by its own dead connections, which the server may not
have noticed yet); the oldest of the owner's streams is ended to make room.
Counted per process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager


class Held:
    """One stream in a ``StreamCap``; ``release`` when it ends (more than once is fine)."""

    __slots__ = ("_cap", "end", "key")

    def __init__(self, cap: StreamCap, key: str, end: Callable[[], object]) -> None:
        self._cap = cap
        self.key = key
        self.end = end

    def release(self) -> None:
        self._cap._forget(self)


class StreamCap:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        # Per owner, oldest first.
        self._held: dict[str, list[Held]] = {}

    def add(self, key: str, end: Callable[[], object]) -> Held:
        """Hold one more stream of ``key``; ``end`` is called to end it when it is the
        oldest and a newer one needs its place."""
        held = self._held.setdefault(key, [])
        while len(held) >= self.limit:
            oldest = held.pop(0)
            oldest.end()
        stream = Held(self, key, end)
        held.append(stream)
        return stream

    @contextmanager
    def hold(self, key: str, end: Callable[[], object]) -> Iterator[Held]:
        stream = self.add(key, end)
        try:
            yield stream
        finally:
            stream.release()

    def count(self, key: str) -> int:
        return len(self._held.get(key, ()))

    def _forget(self, stream: Held) -> None:
        held = self._held.get(stream.key)
        if held is None or stream not in held:
            return  # ended to make room, or released already
        held.remove(stream)
        if not held:
            del self._held[stream.key]
