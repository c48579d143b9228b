"""Every series of ``GET /metrics``, defined once.

Label values are always from a closed set (route templates, methods, status codes, rule
and writer names, outcome codes): never an id, an address or anything a user typed.

Multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` set before this module is imported):
counters and histograms are summed over the processes; gauges say how (``livesum``:
the sum over live processes).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from prometheus_client import Counter, Gauge, Histogram

from gpugo.errors import GpugoError

# Requests: seconds from the first byte of the request to the last of the response.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

http_requests = Counter(
    "gpugo_http_requests",
    "HTTP requests answered, by route template, method and status code.",
    ["route", "method", "status"],
)
http_request_seconds = Histogram(
    "gpugo_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and method.",
    ["route", "method"],
    buckets=REQUEST_BUCKETS,
)
http_requests_in_flight = Gauge(
    "gpugo_http_requests_in_flight",
    "HTTP requests being answered (streams included).",
    multiprocess_mode="livesum",
)

status_reports = Counter(
    "gpugo_status_reports",
    "Agents' status reports, by outcome (accepted, or the error code they were refused with:"
    " credential, body or state).",
    ["outcome"],
)

events_published = Counter(
    "gpugo_events_published",
    "Domain events published by this server, by kind.",
    ["kind"],
)
event_subscribers = Gauge(
    "gpugo_event_subscribers",
    "Open subscriptions to the event bus (agent streams, GraphQL subscriptions).",
    multiprocess_mode="livesum",
)

writer_queue_depth = Gauge(
    "gpugo_writer_queue_depth",
    "Rows waiting in a background writer's buffer.",
    ["writer"],
    multiprocess_mode="livesum",
)
writer_flush_seconds = Histogram(
    "gpugo_writer_flush_duration_seconds",
    "Time one flush of a background writer took, failed ones included.",
    ["writer"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
writer_rows_written = Counter(
    "gpugo_writer_rows_written",
    "Rows a background writer wrote.",
    ["writer"],
)
writer_flush_failures = Counter(
    "gpugo_writer_flush_failures",
    "Flushes of a background writer that failed (their rows wait for the next).",
    ["writer"],
)
writer_rows_dropped = Counter(
    "gpugo_writer_rows_dropped",
    "Rows a background writer dropped because its buffer was full.",
    ["writer"],
)

db_pool_in_use = Gauge(
    "gpugo_db_pool_connections_in_use",
    "Database connections checked out of the pool (PostgreSQL; SQLite: its one connection).",
    ["pool"],
    multiprocess_mode="livesum",
)
db_pool_size = Gauge(
    "gpugo_db_pool_connections",
    "Database connections open in the pool.",
    ["pool"],
    multiprocess_mode="livesum",
)

rate_limit_refusals = Counter(
    "gpugo_rate_limit_refusals",
    "Requests refused by a rate limit (429), by rule.",
    ["rule"],
)

licenses_issued = Counter(
    "gpugo_licenses_issued",
    "Licenses handed to agents (register, status, config).",
)
license_signatures = Counter(
    "gpugo_license_signatures",
    "Ed25519 signatures computed for licenses (identical texts are signed once).",
)


P = ParamSpec("P")
R = TypeVar("R")


def counts_status_reports(
    report: Callable[P, Awaitable[R]],
) -> Callable[P, Awaitable[R]]:
    """Count each status report by its outcome: ``accepted``, the contract code it was
    refused with, or ``error`` (anything else). Wraps the endpoint, so reports refused
    before the service runs (a missing or malformed secret, a bad body) count too; the
    accepted path costs what it did (one increment)."""

    @functools.wraps(report)
    async def counted(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            reply = await report(*args, **kwargs)
        except GpugoError as exc:
            status_reports.labels(exc.code).inc()
            raise
        except Exception:
            status_reports.labels("error").inc()
            raise
        status_reports.labels("accepted").inc()
        return reply

    return counted
