"""Rate limits shared through Redis (GPUGO_REDIS_URL): two app instances, one limit.

Uses the Redis on 127.0.0.1:6379 (database 0) under a key prefix of its own, and
is skipped when nothing answers there.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from gpugo.app import create_app
from tests.support import PUBLIC_URL, assert_error, empty_database

REDIS_URL = "redis://127.0.0.1:6379/0"


def _redis_answers() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        return False
    return True


pytestmark = pytest.mark.skipif(not _redis_answers(), reason="no Redis on 127.0.0.1:6379")


@pytest.fixture
async def two_instances(settings) -> AsyncIterator[tuple[Starlette, Starlette]]:
    limited = settings.replace(
        rate_limits_enabled=True,
        redis_url=REDIS_URL,
        rate_limit_login="4/minute",
        rate_limit_share_miss="3/minute",
    )
    first = create_app(limited, auto_migrate=False)
    second = create_app(limited, auto_migrate=False)
    async with first.router.lifespan_context(first), second.router.lifespan_context(second):
        await empty_database()
        yield first, second


def _client(app: Starlette, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL)


def _address() -> str:
    # Fresh per run: Redis keeps the counts of an earlier run for a minute.
    return f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"


async def test_two_instances_share_the_login_limit(two_instances):
    first, second = two_instances
    email = f"redis-{secrets.token_hex(4)}@example.com"
    attempt = {"email": email, "password": "wrong password"}
    async with _client(first, _address()) as a, _client(second, _address()) as b:
        for http in (a, b, a, b):
            assert (await http.post("/api/v1/auth/login", json=attempt)).status_code == 401
        refused = await a.post("/api/v1/auth/login", json=attempt)
        assert_error(refused, 429, "rate_limited")
        assert int(refused.headers["retry-after"]) >= 1
        assert_error(await b.post("/api/v1/auth/login", json=attempt), 429, "rate_limited")


async def test_two_instances_share_the_share_miss_limit(two_instances):
    first, second = two_instances
    address = _address()
    async with _client(first, address) as a, _client(second, address) as b:
        for http in (a, b, a):
            assert (await http.get("/s/NoSuchCode123")).status_code == 404
        refused = await b.get("/s/NoSuchCode123")
        assert_error(refused, 429, "rate_limited")
        assert "retry-after" in refused.headers


async def test_aliased_graphql_logins_count_one_attempt_each_across_instances(two_instances):
    first, second = two_instances
    address = _address()
    emails = [f"alias{i}-{secrets.token_hex(3)}@example.com" for i in range(3)]
    logins = " ".join(
        f'a{i}: login(input: {{email: "{e}", password: "wrong password"}}) {{ id }}'
        for i, e in enumerate(emails)
    )
    async with _client(first, address) as a, _client(second, address) as b:
        body = (await a.post("/graphql", json={"query": f"mutation {{ {logins} }}"})).json()
        assert [e["extensions"]["code"] for e in body["errors"]] == ["unauthorized"] * 3
        # The fourth attempt from this address, on the other instance, is the last allowed.
        attempt = {"email": emails[0], "password": "wrong password"}
        assert (await b.post("/api/v1/auth/login", json=attempt)).status_code == 401
        assert_error(await b.post("/api/v1/auth/login", json=attempt), 429, "rate_limited")
