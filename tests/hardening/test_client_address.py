"""The address per-address limits count under, against a real `gpugo serve` over TCP.

The test client connects from 127.0.0.1. By default no peer is a trusted proxy, so a
client's own ``X-Forwarded-For`` changes nothing; with ``GPUGO_TRUSTED_PROXIES``
naming 127.0.0.1, the right-most address that is not a trusted proxy is the key.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.hardening.live import Database, LiveServer
from tests.support import PASSWORD

MISSES = 5
SIGNUPS = 3
GUESS = "/s/NoSuchCode1234"


def _server(directory: Path, **env: str) -> Iterator[LiveServer]:
    database = Database(directory)
    server = LiveServer(
        directory,
        database_url=database.url,
        env={
            "GPUGO_RATE_LIMITS": "on",
            "GPUGO_RATE_LIMIT_SHARE_MISS": f"{MISSES}/minute",
            "GPUGO_RATE_LIMIT_SIGNUP": f"{SIGNUPS}/minute",
            **env,
        },
    )
    try:
        yield server.start()
    finally:
        server.stop()
        database.drop()


@pytest.fixture
def untrusted(tmp_path: Path) -> Iterator[LiveServer]:
    yield from _server(tmp_path)


@pytest.fixture
def behind_proxy(tmp_path: Path) -> Iterator[LiveServer]:
    yield from _server(tmp_path, GPUGO_TRUSTED_PROXIES="127.0.0.1, 10.0.0.0/8")


def _guess(http: httpx.Client, forwarded: str | None = None) -> int:
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    return http.get(GUESS, headers=headers).status_code


def _signup(http: httpx.Client, i: int, forwarded: str) -> int:
    body = {"email": f"rotating{i}@example.com", "password": PASSWORD}
    return http.post(
        "/api/v1/auth/signup", json=body, headers={"X-Forwarded-For": forwarded}
    ).status_code


def test_a_rotating_forwarded_for_from_an_untrusted_peer_changes_no_limit(untrusted):
    with httpx.Client(base_url=untrusted.url, timeout=10) as http:
        statuses = [_guess(http, f"203.0.113.{i}") for i in range(MISSES + 3)]
        assert statuses == [404] * MISSES + [429] * 3
        signups = [_signup(http, i, f"198.51.100.{i}") for i in range(SIGNUPS + 2)]
        assert signups == [201] * SIGNUPS + [429] * 2
        # GraphQL counts under the same address.
        http.cookies.clear()
        response = http.post(
            "/graphql",
            json={
                "query": 'mutation { signup(input: {email: "gql@example.com", '
                'password: "a long password"}) { id } }'
            },
            headers={"X-Forwarded-For": "192.0.2.99"},
        )
        assert response.json()["errors"][0]["extensions"]["code"] == "rate_limited"


def test_behind_a_trusted_proxy_the_forwarded_client_is_the_key(behind_proxy):
    with httpx.Client(base_url=behind_proxy.url, timeout=10) as http:
        attacker, victim = "203.0.113.7", "198.51.100.20"
        assert [_guess(http, attacker) for _ in range(MISSES)] == [404] * MISSES
        assert _guess(http, attacker) == 429
        # Another client behind the proxy has its own budget.
        assert _guess(http, victim) == 404
        # A client that writes the victim's address itself is still itself: the
        # right-most address not of a trusted proxy is the one the proxy saw.
        assert _guess(http, f"{victim}, {attacker}") == 429
        # Trusted hops (10.0.0.0/8) are skipped; the client before them is the key.
        assert _guess(http, f"{attacker}, 10.1.2.3") == 429
        assert _guess(http, f"{attacker}, {victim}, 10.1.2.3") == 404
        # The proxy's own address is a budget of its own, untouched by its clients.
        assert _guess(http) == 404
