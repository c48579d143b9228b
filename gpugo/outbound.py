"""The one HTTP client a process uses for outbound calls (a release catalogue upstream).

One client per process shares its connection pool; every call is bounded by the
timeouts set here unless it names tighter ones.
"""

from __future__ import annotations

import ssl
from functools import cache
from importlib.metadata import PackageNotFoundError, version

import httpx

TIMEOUT = httpx.Timeout(10.0, connect=5.0)
LIMITS = httpx.Limits(max_connections=20, max_keepalive_connections=5)


@cache
def _user_agent() -> str:
    try:
        return f"gpugo/{version('gpugo')}"
    except PackageNotFoundError:
        return "gpugo"


@cache
def _tls() -> ssl.SSLContext:
    """The trusted certificates (SSL_CERT_FILE / SSL_CERT_DIR of the process, else
    certifi's), loaded once per process: a load takes ~17 ms, and each app made one."""
    return httpx.create_ssl_context(trust_env=True)


def http_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(
        verify=_tls(),
        timeout=TIMEOUT,
        limits=LIMITS,
        headers={"User-Agent": _user_agent()},
        # Redirects only where a call asks for them.
        follow_redirects=False,
        # HTTPS_PROXY / NO_PROXY of the process apply (and SSL_CERT_FILE, through _tls).
        trust_env=True,
    )
