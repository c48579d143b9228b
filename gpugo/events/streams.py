"""Open streams by topic, bounded: a new stream over the bound closes the topic's oldest.

For streams anyone may open (the agent's push channel takes no credential): however
many are opened on one topic, this process holds at most ``per_topic`` of them. The
newest wins, because a client that reconnects (after a network cut its old connection
may linger half-open) is the one that listens.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from gpugo.events.bus import Subscription


class TopicStreams:
    def __init__(self, per_topic: int) -> None:
        self.per_topic = per_topic
        self._open: dict[str, deque[Subscription]] = {}

    @contextmanager
    def hold(self, topic: str, subscription: Subscription) -> Iterator[None]:
        """Count ``subscription`` under ``topic`` for the block; close the oldest over the bound.

        Closing a subscription ends its stream the way a draining server does.
        """
        streams = self._open.setdefault(topic, deque())
        while len(streams) >= self.per_topic:
            streams.popleft().close()
        streams.append(subscription)
        try:
            yield
        finally:
            if subscription in streams:
                streams.remove(subscription)
            if not streams and self._open.get(topic) is streams:
                del self._open[topic]

    def count(self, topic: str) -> int:
        return len(self._open.get(topic, ()))
