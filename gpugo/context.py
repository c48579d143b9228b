"""What services and adapters share for the life of the app: settings, keys, limits, events,
the outbound HTTP client and the release catalogue."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tortoise.backends.base.client import BaseDBAsyncClient

from gpugo import db
from gpugo.auth.rechecks import CredentialRechecks
from gpugo.events import EventBus, bus_for
from gpugo.keys import load_or_create_license_key
from gpugo.outbound import http_client
from gpugo.ratelimit import Concurrency, RateLimiter
from gpugo.requests_first import RequestsFirst
from gpugo.services import audit
from gpugo.services.agent_states import AgentStates
from gpugo.services.audit import AuditLog
from gpugo.services.last_seen import LastSeenWriter
from gpugo.services.metrics_store import MetricsIngest
from gpugo.services.releases import ReleaseCatalogue
from gpugo.services.webhook_sender import WebhookSender
from gpugo.services.worker_writes import WorkerWrites
from gpugo.settings import Settings
from gpugo.streams import StreamCap
from gpugo.timeseries import VictoriaMetrics, engine_for
from gpugo.timeseries.victoria import WRITER


@dataclass(frozen=True, slots=True)
class ServerContext:
    settings: Settings
    license_key: Ed25519PrivateKey
    rate_limiter: RateLimiter
    # agentMetrics reads running at once, per user, and the connection they run on.
    metrics_reads: Concurrency
    metrics_db: BaseDBAsyncClient
    events: EventBus
    # Open event streams per agent and GraphQL WebSockets per user (oldest ended first).
    agent_streams: StreamCap
    user_sockets: StreamCap
    # WebSockets' periodic credential re-checks, one look-up per credential at a time.
    credential_rechecks: CredentialRechecks
    # HTTP requests awaiting their answer: live deliveries wait for them (bounded).
    requests_first: RequestsFirst
    # What status reports are compared against, per agent, kept exact by the events.
    agent_states: AgentStates
    # Steady heartbeats' last_seen_at, written once per interval for all agents.
    last_seen: LastSeenWriter
    # Status reports' workers-only changes of one moment, written by one statement.
    worker_writes: WorkerWrites
    # Open streams of the unauthenticated push channel, bounded per topic.
    topic_streams: StreamCap
    # Every outbound HTTP call of the process goes through this one client.
    http: httpx.AsyncClient
    releases: ReleaseCatalogue
    # Audit rows wait here and are written in batches (services/audit.py).
    audit: AuditLog
    # Accepted metric points wait here and are written in batches (services/metrics_store.py).
    metrics: MetricsIngest
    # Sends the webhook outbox; holds the URL resolver and the signing secrets' key.
    webhooks: WebhookSender
    # The time-series engine metric points go to instead of SQL; None: the SQL tables.
    timeseries: VictoriaMetrics | None

    @classmethod
    def load(cls, settings: Settings) -> ServerContext:
        http = http_client()
        license_key = load_or_create_license_key(settings.data_dir)
        rate_limiter = RateLimiter(settings)
        rate_limiter.on_refused = audit.on_rate_limited
        events = bus_for(settings.effective_database_url)
        timeseries = engine_for(settings, http)
        return cls(
            settings=settings,
            license_key=license_key,
            rate_limiter=rate_limiter,
            metrics_reads=Concurrency(
                settings.metrics_reads_per_user,
                f"At most {settings.metrics_reads_per_user} metrics reads of one account "
                "run at once; try again when one has finished.",
            ),
            metrics_db=db.metrics_client(settings.effective_database_url),
            events=events,
            agent_states=AgentStates(
                events,
                max_entries=settings.agent_state_cache_entries,
                ttl_seconds=settings.agent_state_cache_seconds,
            ),
            agent_streams=StreamCap(settings.agent_event_streams),
            user_sockets=StreamCap(settings.graphql_websockets_per_user),
            credential_rechecks=CredentialRechecks(),
            requests_first=RequestsFirst(),
            last_seen=LastSeenWriter(settings.last_seen_flush_seconds),
            worker_writes=WorkerWrites(),
            topic_streams=StreamCap(settings.push_streams_per_topic),
            http=http,
            releases=ReleaseCatalogue(settings, http),
            audit=AuditLog(
                flush_seconds=settings.audit_flush_seconds, capacity=settings.audit_buffer_rows
            ),
            metrics=_metrics_ingest(settings, events, timeseries),
            webhooks=WebhookSender(
                settings, http=http, rate_limiter=rate_limiter, license_key=license_key
            ),
            timeseries=timeseries,
        )


def _metrics_ingest(
    settings: Settings, events: EventBus, timeseries: VictoriaMetrics | None
) -> MetricsIngest:
    """Accepted points go to the SQL tables, or to the time-series engine when one is set."""
    if timeseries is None:
        return MetricsIngest(
            flush_seconds=settings.metrics_flush_seconds,
            capacity=settings.metrics_buffer_points,
            events=events,
        )
    return MetricsIngest(
        flush_seconds=settings.timeseries_flush_seconds,
        capacity=settings.timeseries_buffer_points,
        events=events,
        sink=timeseries,
        name=WRITER,
        backoff_max=settings.timeseries_backoff_max_seconds,
    )
