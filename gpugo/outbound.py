"""The one HTTP client a process uses for outbound calls (a release catalogue upstream).

One client per process shares its connection pool; every call is bounded by the
timeouts set here unless it names tighter ones.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import httpx

TIMEOUT = httpx.Timeout(10.0, connect=5.0)
LIMITS = httpx.Limits(max_connections=20, max_keepalive_connections=5)


def _user_agent() -> str:
    try:
        return f"gpugo/{version('gpugo')}"
    except PackageNotFoundError:
        return "gpugo"


def http_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=TIMEOUT,
        limits=LIMITS,
        headers={"User-Agent": _user_agent()},
        # Redirects only where a call asks for them.
        follow_redirects=False,
        # HTTPS_PROXY / NO_PROXY and SSL_CERT_FILE of the process apply.
        trust_env=True,
    )
