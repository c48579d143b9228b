"""What services and adapters share for the life of the app: settings, keys, limits, events,
the outbound HTTP client and the release catalogue."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gpugo.events import EventBus, TopicStreams, bus_for
from gpugo.keys import load_or_create_license_key
from gpugo.outbound import http_client
from gpugo.ratelimit import RateLimiter
from gpugo.services.last_seen import LastSeenWriter
from gpugo.services.releases import ReleaseCatalogue
from gpugo.services.webhook_sender import WebhookSender
from gpugo.settings import Settings


@dataclass(frozen=True, slots=True)
class ServerContext:
    settings: Settings
    license_key: Ed25519PrivateKey
    rate_limiter: RateLimiter
    events: EventBus
    # Steady heartbeats' last_seen_at, written once per interval for all agents.
    last_seen: LastSeenWriter
    # Open streams of the unauthenticated push channel, bounded per topic.
    topic_streams: TopicStreams
    # Every outbound HTTP call of the process goes through this one client.
    http: httpx.AsyncClient
    releases: ReleaseCatalogue
    # Sends the webhook outbox; holds the URL resolver and the signing secrets' key.
    webhooks: WebhookSender

    @classmethod
    def load(cls, settings: Settings) -> ServerContext:
        http = http_client()
        license_key = load_or_create_license_key(settings.data_dir)
        rate_limiter = RateLimiter(settings)
        return cls(
            settings=settings,
            license_key=license_key,
            rate_limiter=rate_limiter,
            events=bus_for(settings.effective_database_url),
            last_seen=LastSeenWriter(settings.last_seen_flush_seconds),
            topic_streams=TopicStreams(settings.push_streams_per_topic),
            http=http,
            releases=ReleaseCatalogue(settings, http),
            webhooks=WebhookSender(
                settings, http=http, rate_limiter=rate_limiter, license_key=license_key
            ),
        )
