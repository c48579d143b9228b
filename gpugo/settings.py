"""Every GPUGO_* setting, typed, read from the environment in one place.

Defaults need no configuration: an embedded SQLite database and generated keys
under the data directory.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from gpugo.plans import DEFAULT_PLAN_LIMITS, PlanLimits

DEFAULT_INSTALL_SCRIPT_URL = "https://cdn.tensor-fusion.ai/archive/gpugo/install.sh"
PROFILES = ("embedded", "production")
_SHELL_UNSAFE = frozenset("\"'`$\\ ;|&<>(){}!*?\n\r\t")


class SettingsError(ValueError):
    """A GPUGO_* variable holds a value that cannot be used."""


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path = Path(".gpugo")
    # Empty means the embedded SQLite database inside data_dir.
    database_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8080
    # Empty means http://{host}:{port}.
    public_url: str = ""
    # Empty means the public URL.
    short_link_base: str = ""
    install_script_url: str = DEFAULT_INSTALL_SCRIPT_URL
    signup_enabled: bool = True
    profile: str = "embedded"
    # None follows the profile: on for embedded, off for production.
    graphql_explorer: bool | None = None
    session_idle_seconds: int = 24 * 3600
    session_absolute_seconds: int = 7 * 24 * 3600
    install_token_ttl_seconds: int = 30 * 60
    license_ttl_seconds: int = 120 * 60
    agent_offline_seconds: int = 180
    # A steady heartbeat's last_seen_at is written within this many seconds, together with
    # every other agent's (one statement); 0 writes it with each report.
    last_seen_flush_seconds: float = 1.0
    # Agents whose status-report state each process holds in memory (a steady heartbeat
    # then costs no database round trip); 0 reads it with every report. An entry is read
    # again after this many seconds whatever the event bus says (services/agent_states.py).
    agent_state_cache_entries: int = 200_000
    agent_state_cache_seconds: float = 600.0
    # At start, hold the states of the agents online (seen within agent_offline_seconds),
    # read in batches: the first round of reports after a restart needs no read each.
    agent_state_warm_up: bool = True
    # How often each instance looks for agents that fell silent (agent.offline events).
    offline_sweep_seconds: float = 5.0
    # Comment lines on an idle agent event stream, so proxies keep it open.
    agent_events_keepalive_seconds: float = 15.0
    # The push channel the shipped agent listens on (GET /v1/stream) is unauthenticated:
    # at most this many open streams per topic in each process, the oldest closed first.
    push_streams_per_topic: int = 2
    # The release catalogue (GET /api/ecosystem/releases): an operator's manifest file
    # and/or an upstream catalogue; neither set serves an empty catalogue.
    releases_file: str = ""
    releases_upstream_url: str = ""
    releases_refresh_seconds: float = 3600.0
    releases_upstream_timeout_seconds: float = 10.0
    releases_max_bytes: int = 4 * 1024 * 1024
    # Event streams one agent may hold open; a new one ends the oldest.
    agent_event_streams: int = 4
    # GraphQL WebSockets one user may hold open; a new one closes the oldest.
    graphql_websockets_per_user: int = 8
    # A request's headers, then its body, must arrive within this many seconds.
    request_read_timeout_seconds: float = 20.0
    # Open connections (streams and WebSockets included) before requests get 503.
    max_connections: int = 1000
    # Metrics tiers (services/metrics_rollups.py): raw samples for this many hours,
    # 5-minute rollups for this many days, hourly rollups for metrics_retention_days.
    metrics_raw_hours: int = 24
    metrics_5m_days: int = 7
    metrics_retention_days: int = 30
    # How often the sweeper brings the rollups up to date and applies retention.
    metrics_rollup_seconds: float = 15.0
    # Accepted metric points wait in memory at most this long before one batch writes
    # them, and at most this many wait (past it the oldest unwritten ones are dropped).
    metrics_flush_seconds: float = 1.0
    metrics_buffer_points: int = 200_000
    # Audit events older than this are deleted by the sweeper.
    audit_retention_days: int = 90
    # Audit rows wait in memory at most this long before one batch writes them, and at
    # most this many wait (past it, under a database outage, the oldest are dropped).
    audit_flush_seconds: float = 1.0
    audit_buffer_rows: int = 10_000
    # What one GraphQL request may ask agentMetrics to aggregate (gpugo/schema/cost.py).
    metrics_query_budget: int = 1_100_000
    # agentMetrics reads one user may have running at once in this process.
    metrics_reads_per_user: int = 2
    rate_limits_enabled: bool = True
    rate_limit_login: str = "10/minute"
    rate_limit_signup: str = "5/minute"
    rate_limit_share_miss: str = "30/minute"
    rate_limit_register: str = "30/minute"
    rate_limit_token_generate: str = "30/minute"  # noqa: S105 (a rate, not a secret)
    # Metrics reports per agent: one a second on average, bursts included.
    rate_limit_metrics: str = "60/minute"
    # Per user, counted by the webhook sender; a user over it waits, nothing is dropped.
    rate_limit_webhook_deliveries: str = "120/minute"
    redis_url: str = ""
    # Peers (IPs or CIDRs, comma-separated) whose X-Forwarded-For is believed; empty:
    # none, the connection's peer is the client whatever a header says.
    trusted_proxies: str = ""
    log_format: str = "text"
    log_level: str = "INFO"
    max_body_bytes: int = 1024 * 1024
    # Webhooks (docs/webhooks.md). Private, loopback and link-local targets are refused
    # unless this is set (a LAN install, the tests).
    webhooks_allow_private: bool = False
    # False: this instance queues deliveries but never sends them (the others do).
    webhooks_sender: bool = True
    webhooks_timeout_seconds: float = 10.0
    # Retries: the first after this many seconds, doubling up to the cap, until the
    # retry window (counted from the event) closes and the delivery is marked failed.
    webhooks_backoff_seconds: float = 30.0
    webhooks_backoff_max_seconds: float = 3600.0
    webhooks_retry_window_seconds: float = 24 * 3600.0
    # How often each instance looks for due deliveries (new ones in-process go at once).
    webhooks_poll_seconds: float = 1.0
    # How long a sender holds an endpoint it claimed (longer than a send's timeout): a
    # crashed sender's endpoint is taken over after it.
    webhooks_lease_seconds: float = 60.0
    webhooks_max_endpoints: int = 10
    # Endpoints one instance sends to at the same time (a slow one holds only its slot).
    webhooks_concurrency: int = 10
    # GET /metrics (Prometheus) answers only "Authorization: Bearer <this>"; empty: off (404).
    metrics_token: str = field(default="", repr=False)
    # A VictoriaMetrics time-series engine for agents' metric points instead of the SQL
    # tables (docs/observability.md). One URL for a single node; a cluster names its
    # vminsert and vmselect bases (e.g. http://vminsert:8480/insert/0/influx and
    # http://vmselect:8481/select/0/prometheus). None set: the SQL tables.
    victoria_metrics_url: str = ""
    victoria_metrics_insert_url: str = ""
    victoria_metrics_select_url: str = ""
    # Points wait at most this long in memory before one batch is written, and at most
    # this many wait (past it, while the engine is down, the oldest are dropped). A failed
    # write is retried after the interval, doubling up to the cap.
    timeseries_flush_seconds: float = 1.0
    timeseries_buffer_points: int = 200_000
    timeseries_backoff_max_seconds: float = 30.0
    timeseries_timeout_seconds: float = 10.0
    plan_limits: Mapping[str, PlanLimits] = field(default_factory=lambda: dict(DEFAULT_PLAN_LIMITS))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Read GPUGO_* variables; keyword overrides (CLI flags) win over the environment."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(f"GPUGO_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(f.name, f.type, raw)
        rate_limits = env.get("GPUGO_RATE_LIMITS", "").strip().lower()
        if rate_limits:
            if rate_limits not in ("on", "off"):
                raise SettingsError("GPUGO_RATE_LIMITS must be 'on' or 'off'")
            values["rate_limits_enabled"] = rate_limits == "on"
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def replace(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def validate(self) -> None:
        if self.profile not in PROFILES:
            raise SettingsError(f"GPUGO_PROFILE must be one of {', '.join(PROFILES)}")
        if not 0 < self.port < 65536:
            raise SettingsError("GPUGO_PORT must be between 1 and 65535")
        if self.releases_upstream_url:
            parts = urlsplit(self.releases_upstream_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise SettingsError("GPUGO_RELEASES_UPSTREAM_URL must be an http(s) URL")
        if self.push_streams_per_topic < 1:
            raise SettingsError("GPUGO_PUSH_STREAMS_PER_TOPIC must be at least 1")
        if self.releases_max_bytes < 1024:
            raise SettingsError("GPUGO_RELEASES_MAX_BYTES must be at least 1024")
        for name in ("public_url", "short_link_base", "install_script_url"):
            value = getattr(self, name)
            if value:
                parts = urlsplit(value)
                if parts.scheme not in ("http", "https") or not parts.netloc:
                    raise SettingsError(f"GPUGO_{name.upper()} must be an http(s) URL")
                # These URLs end up in a shell command line (install_command).
                if any(c in value for c in _SHELL_UNSAFE):
                    raise SettingsError(
                        f"GPUGO_{name.upper()} contains characters unsafe in a shell"
                    )
        for name in (
            "victoria_metrics_url",
            "victoria_metrics_insert_url",
            "victoria_metrics_select_url",
        ):
            value = getattr(self, name)
            if value:
                parts = urlsplit(value)
                if parts.scheme not in ("http", "https") or not parts.netloc:
                    raise SettingsError(f"GPUGO_{name.upper()} must be an http(s) URL")
        if bool(self.victoria_metrics_insert_url) != bool(self.victoria_metrics_select_url):
            raise SettingsError(
                "GPUGO_VICTORIA_METRICS_INSERT_URL and GPUGO_VICTORIA_METRICS_SELECT_URL "
                "go together (a cluster's vminsert and vmselect)"
            )
        if self.victoria_metrics_url and self.victoria_metrics_insert_url:
            raise SettingsError(
                "Set GPUGO_VICTORIA_METRICS_URL (one node) or the INSERT/SELECT pair, not both"
            )
        if self.database_url:
            scheme = urlsplit(self.database_url).scheme
            if scheme not in ("sqlite", "postgres", "postgresql"):
                raise SettingsError("GPUGO_DATABASE_URL must start with sqlite:// or postgres://")
        if self.log_format not in ("text", "json"):
            raise SettingsError("GPUGO_LOG_FORMAT must be 'text' or 'json'")
        for name in (
            "offline_sweep_seconds",
            "agent_events_keepalive_seconds",
            "releases_refresh_seconds",
            "releases_upstream_timeout_seconds",
            "request_read_timeout_seconds",
            "audit_flush_seconds",
            "agent_state_cache_seconds",
            "timeseries_flush_seconds",
            "timeseries_backoff_max_seconds",
            "timeseries_timeout_seconds",
            "metrics_flush_seconds",
            "metrics_rollup_seconds",
        ):
            if not getattr(self, name) > 0:
                raise SettingsError(f"GPUGO_{name.upper()} must be a positive number of seconds")
        if not (
            self.metrics_raw_hours <= 24 * self.metrics_5m_days
            and self.metrics_5m_days <= self.metrics_retention_days
        ):
            raise SettingsError(
                "Metrics tiers must not shrink: GPUGO_METRICS_RAW_HOURS <= 24 x "
                "GPUGO_METRICS_5M_DAYS, and GPUGO_METRICS_5M_DAYS <= GPUGO_METRICS_RETENTION_DAYS"
            )
        if self.agent_state_cache_entries < 0:
            raise SettingsError("GPUGO_AGENT_STATE_CACHE_ENTRIES must be 0 or more")
        if not 0 <= self.last_seen_flush_seconds <= 60:
            raise SettingsError("GPUGO_LAST_SEEN_FLUSH_SECONDS must be between 0 and 60")
        for name in (
            "metrics_retention_days",
            "audit_retention_days",
            "audit_buffer_rows",
            "timeseries_buffer_points",
            "metrics_buffer_points",
            "metrics_raw_hours",
            "metrics_5m_days",
            "metrics_query_budget",
            "metrics_reads_per_user",
            "agent_event_streams",
            "graphql_websockets_per_user",
            "max_connections",
        ):
            if getattr(self, name) < 1:
                raise SettingsError(f"GPUGO_{name.upper()} must be at least 1")
        for name in (
            "webhooks_timeout_seconds",
            "webhooks_backoff_seconds",
            "webhooks_backoff_max_seconds",
            "webhooks_retry_window_seconds",
            "webhooks_poll_seconds",
        ):
            if not getattr(self, name) > 0:
                raise SettingsError(f"GPUGO_{name.upper()} must be a positive number of seconds")
        if not self.webhooks_lease_seconds > self.webhooks_timeout_seconds:
            raise SettingsError(
                "GPUGO_WEBHOOKS_LEASE_SECONDS must be longer than GPUGO_WEBHOOKS_TIMEOUT_SECONDS"
            )
        if self.webhooks_max_endpoints < 0 or self.webhooks_concurrency < 1:
            raise SettingsError(
                "GPUGO_WEBHOOKS_MAX_ENDPOINTS must be >= 0 and GPUGO_WEBHOOKS_CONCURRENCY >= 1"
            )
        try:
            self.trusted_proxy_networks  # noqa: B018 (parsed to be validated)
        except ValueError as exc:
            raise SettingsError(f"GPUGO_TRUSTED_PROXIES: {exc}") from None

    @property
    def trusted_proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        items = (item.strip() for item in self.trusted_proxies.split(","))
        return tuple(ipaddress.ip_network(item, strict=False) for item in items if item)

    @property
    def timeseries_urls(self) -> tuple[str, str] | None:
        """(insert base, select base) of the VictoriaMetrics engine, or None for SQL."""
        if self.victoria_metrics_url:
            base = self.victoria_metrics_url.rstrip("/")
            return base, base
        if self.victoria_metrics_insert_url:
            return (
                self.victoria_metrics_insert_url.rstrip("/"),
                self.victoria_metrics_select_url.rstrip("/"),
            )
        return None

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite://{(self.data_dir / 'gpugo.sqlite3').resolve()}"

    @property
    def effective_public_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def effective_short_link_base(self) -> str:
        return (self.short_link_base or self.effective_public_url).rstrip("/")

    @property
    def public_origin(self) -> str:
        parts = urlsplit(self.effective_public_url)
        return f"{parts.scheme}://{parts.netloc}".lower()

    @property
    def secure_cookies(self) -> bool:
        return self.effective_public_url.startswith("https://")

    @property
    def graphql_explorer_enabled(self) -> bool:
        if self.graphql_explorer is not None:
            return self.graphql_explorer
        return self.profile == "embedded"


def _parse(name: str, type_name: object, raw: str) -> object:
    var = f"GPUGO_{name.upper()}"
    kind = str(type_name)
    try:
        if name == "plan_limits":
            return _parse_plan_limits(raw)
        if kind == "Path":
            return Path(raw)
        if kind.startswith("bool"):
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true or false")
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        return raw
    except ValueError as exc:
        raise SettingsError(f"{var}: {exc}") from None


def _parse_plan_limits(raw: str) -> dict[str, PlanLimits]:
    """Overrides per plan, e.g. {"free": {"max_gpus": 4}}; unnamed plans keep defaults."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object of plans")
    limits = dict(DEFAULT_PLAN_LIMITS)
    for plan, override in data.items():
        if plan not in limits or not isinstance(override, dict):
            raise ValueError(f"unknown plan or bad value for {plan!r}")
        try:
            limits[plan] = dataclasses.replace(limits[plan], **override)
        except TypeError as exc:
            raise ValueError(str(exc)) from None
    return limits
