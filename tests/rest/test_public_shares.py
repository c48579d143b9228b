from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from gpugo import clock
from gpugo.app import create_app
from gpugo.ids import random_base62
from gpugo.models import Share, Worker
from gpugo.ratelimit import RateLimiter
from gpugo.services import shares
from gpugo.timefmt import iso
from tests.conftest import make_client
from tests.live.support import serve
from tests.sql_counter import count_sql
from tests.support import PUBLIC_URL, assert_error, register_agent


async def make_share(api, *, vendor: str = "nvidia", **fields: Any) -> dict[str, Any]:
    user = await api.user()
    agent = await register_agent(user, gpus=1, vendor=vendor)
    worker_id = (await Worker.get(agent_id=agent.agent_id)).id
    response = await user.post(
        "/api/v1/shares", json={"worker_id": worker_id, "connection_ip": "203.0.113.7", **fields}
    )
    assert response.status_code == 201, response.text
    return {**response.json(), "user": user}


async def used_count(share: dict[str, Any]) -> int:
    return (await Share.get(id=share["share_id"])).used_count


def assert_share_headers(response: httpx.Response) -> None:
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"


async def test_a_share_link_answers_public_share_info_and_counts_the_use(api, client):
    share = await make_share(api, vendor="amd")
    response = await client.get(f"/s/{share['short_code']}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "worker_id": share["worker_id"],
        "hardware_vendor": "amd",
        "connection_url": "tcp://203.0.113.7:9001",
        "agent_arch": "amd64",
    }
    assert_share_headers(response)
    assert await used_count(share) == 1
    [listed] = (await share["user"].get("/api/v1/shares")).json()["shares"]
    assert listed["used_count"] == 1


async def test_without_limits_a_share_works_every_time(api, client):
    share = await make_share(api)
    for _ in range(5):
        assert (await client.get(f"/s/{share['short_code']}")).status_code == 200
    assert await used_count(share) == 5


async def test_unknown_codes_are_not_found(api, client):
    await make_share(api)
    for code in ("AAAAAAAAAAAA", "short", "has-dashes-in", "x" * 33, "%20" * 12):
        response = await client.get(f"/s/{code}")
        assert_error(response, 404, "not_found")
        assert_share_headers(response)


async def test_a_share_is_gone_after_max_uses(api, client):
    share = await make_share(api, max_uses=2)
    url = f"/s/{share['short_code']}"
    assert (await client.get(url)).status_code == 200
    assert (await client.get(url)).status_code == 200
    for _ in range(3):
        response = await client.get(url)
        assert_error(response, 410, "gone")
        assert_share_headers(response)
    assert await used_count(share) == 2


async def test_a_share_is_gone_once_expired(api, client):
    share = await make_share(api, expires_at=iso(clock.now() + timedelta(hours=1)))
    url = f"/s/{share['short_code']}"
    clock.advance(timedelta(minutes=59, seconds=59))
    assert (await client.get(url)).status_code == 200
    clock.advance(timedelta(seconds=1))
    assert_error(await client.get(url), 410, "gone")
    assert (await client.head(url)).status_code == 410
    assert await used_count(share) == 1


async def test_the_link_follows_the_workers_current_port(api, client):
    share = await make_share(api)
    user = share["user"]
    await user.patch(f"/api/v1/workers/{share['worker_id']}", json={"listen_port": 9443})
    body = (await client.get(f"/s/{share['short_code']}")).json()
    assert body["connection_url"] == "tcp://203.0.113.7:9443"


async def test_deleting_the_share_or_its_worker_ends_the_link(api, client):
    share = await make_share(api)
    other = await make_share(api)
    await share["user"].delete(f"/api/v1/shares/{share['share_id']}")
    assert_error(await client.get(f"/s/{share['short_code']}"), 404, "not_found")
    await other["user"].delete(f"/api/v1/workers/{other['worker_id']}")
    assert_error(await client.get(f"/s/{other['short_code']}"), 404, "not_found")


async def test_head_answers_like_get_without_a_body_and_never_uses_the_share(api, client):
    share = await make_share(api, max_uses=1)
    url = f"/s/{share['short_code']}"
    for _ in range(3):
        head = await client.head(url)
        assert head.status_code == 200
        assert head.content == b""
        assert head.headers["content-type"] == "application/json"
        assert_share_headers(head)
    assert await used_count(share) == 0
    get = await client.get(url)
    assert get.status_code == 200
    assert int(head.headers["content-length"]) == len(get.content)
    assert await used_count(share) == 1

    gone_head = await client.head(url)
    gone_get = await client.get(url)
    assert gone_head.status_code == gone_get.status_code == 410
    assert gone_head.content == b""
    assert int(gone_head.headers["content-length"]) == len(gone_get.content)
    assert_share_headers(gone_head)
    missing = await client.head("/s/AAAAAAAAAAAA")
    assert missing.status_code == 404 and missing.content == b""
    assert await used_count(share) == 1


# --- the share route's own door: the same headers and log line as every other answer ---------

# Any other /s/ path (here one no code can have) is answered by the router, through the
# middleware every other route has: the reference for the share route's answers.
NOT_A_SHARE_ROUTE = "/s/has-dashes-in"


def header_names(response: httpx.Response) -> list[str]:
    return [name.decode() for name, _ in response.headers.raw]


def assert_same_headers(response: httpx.Response, reference: httpx.Response) -> None:
    """The same headers in the same order, with the same values but the per-answer ones."""
    assert header_names(response) == header_names(reference)
    per_answer = {"content-length", "x-request-id"}
    for name in set(header_names(reference)) - per_answer:
        assert response.headers[name] == reference.headers[name], name


async def test_share_answers_carry_the_headers_of_the_general_path(api, client):
    share = await make_share(api, max_uses=1)
    url = f"/s/{share['short_code']}"
    reference = await client.get(NOT_A_SHARE_ROUTE)
    assert_error(reference, 404, "not_found")
    assert header_names(reference) == [
        "content-length",
        "content-type",
        "x-content-type-options",
        "x-frame-options",
        "x-request-id",
        "referrer-policy",
        "cache-control",
    ]
    answers = [
        await client.head(url),
        await client.get(url),
        await client.head(url),
        await client.get(url),
        await client.get("/s/AAAAAAAAAAAA"),
        await client.head("/s/AAAAAAAAAAAA"),
        await client.get("/s/short"),
    ]
    assert [a.status_code for a in answers] == [200, 200, 410, 410, 404, 404, 404]
    request_ids = {reference.headers["x-request-id"]}
    for answer in answers:
        assert_same_headers(answer, reference)
        assert len(answer.headers["x-request-id"]) == 16
        request_ids.add(answer.headers["x-request-id"])
    assert len(request_ids) == len(answers) + 1
    # Other methods on a share link are the router's 405, naming the two it allows.
    refused = await client.post(url)
    assert_error(refused, 405, "method_not_allowed")
    assert refused.headers["allow"] == "GET, HEAD"
    assert refused.headers["referrer-policy"] == "no-referrer"


async def test_share_answers_carry_hsts_when_the_server_is_https(api, app, settings):
    share = await make_share(api)
    https_app = create_app(settings.replace(public_url="https://gpugo.example"), auto_migrate=False)
    async with make_client(https_app) as http:
        reference = await http.get(NOT_A_SHARE_ROUTE)
        answers = [await http.head(f"/s/{share['short_code']}"), await http.get("/s/short")]
    assert reference.headers["strict-transport-security"] == "max-age=31536000"
    assert [a.status_code for a in answers] == [200, 404]
    for answer in answers:
        assert_same_headers(answer, reference)


async def test_share_answers_are_logged_without_their_code(api, client, caplog):
    share = await make_share(api)
    with caplog.at_level(logging.INFO, logger="gpugo.access"):
        await client.get(f"/s/{share['short_code']}")
        await client.head("/s/AAAAAAAAAAAA")
    lines = [r.getMessage() for r in caplog.records if r.name == "gpugo.access"]
    assert [line.rsplit(" ", 1)[0] for line in lines] == ["GET /s/… 200", "HEAD /s/… 404"]


async def test_a_lost_database_on_a_share_link_is_a_503_whose_log_hides_the_code(
    client, monkeypatch, caplog
):
    async def lost(**kwargs: object) -> None:
        raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)")

    monkeypatch.setattr(shares, "redeem", lost)
    with caplog.at_level(logging.INFO):
        response = await client.get("/s/AAAAAAAAAAAA")
    assert_error(response, 503, "service_unavailable")
    reference = await client.get(NOT_A_SHARE_ROUTE)
    assert header_names(response) == header_names(reference)
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("gpugo.")]
    assert not [line for line in logged if "AAAAAAAAAAAA" in line]
    assert "database unreachable on GET /s/…: ConnectionRefusedError" in logged


# --- rate limit on misses ------------------------------------------------------------------


BURST = 100
BURST_LIMIT = 10


def limit_misses(app, settings, rule: str) -> None:
    limited = settings.replace(rate_limits_enabled=True, rate_limit_share_miss=rule)
    app.state.ctx = dataclasses.replace(
        app.state.ctx, settings=limited, rate_limiter=RateLimiter(limited)
    )


def client_from(app, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL)


async def test_misses_are_rate_limited_per_client_address(api, app, settings):
    share = await make_share(api)
    limit_misses(app, settings, "3/minute")
    async with (
        client_from(app, "198.51.100.1") as guesser,
        client_from(app, "198.51.100.2") as bystander,
    ):
        # Hits do not count against the limit.
        for _ in range(5):
            assert (await guesser.get(f"/s/{share['short_code']}")).status_code == 200
        for code in ("AAAAAAAAAAAA", "BBBBBBBBBBBB", "bad"):
            assert_error(await guesser.get(f"/s/{code}"), 404, "not_found")
        limited = await guesser.get("/s/CCCCCCCCCCCC")
        error = assert_error(limited, 429, "rate_limited")
        assert error["message"]
        assert int(limited.headers["retry-after"]) >= 1
        assert_share_headers(limited)
        reference = await guesser.get(NOT_A_SHARE_ROUTE)  # no share route: never limited
        assert reference.status_code == 404
        assert header_names(limited) == ["retry-after", *header_names(reference)]
        # Once exhausted, the address is refused before the database: no use is counted.
        before = await used_count(share)
        assert_error(await guesser.get(f"/s/{share['short_code']}"), 429, "rate_limited")
        assert (await guesser.head(f"/s/{share['short_code']}")).status_code == 429
        assert await used_count(share) == before
        # Other addresses are not affected.
        assert (await bystander.get(f"/s/{share['short_code']}")).status_code == 200
        assert_error(await bystander.get("/s/AAAAAAAAAAAA"), 404, "not_found")


async def test_head_misses_count_too(api, app, settings):
    limit_misses(app, settings, "2/minute")
    async with client_from(app, "198.51.100.3") as guesser:
        assert (await guesser.head("/s/AAAAAAAAAAAA")).status_code == 404
        assert (await guesser.head("/s/BBBBBBBBBBBB")).status_code == 404
        assert_error(await guesser.get("/s/CCCCCCCCCCCC"), 429, "rate_limited")


async def test_a_concurrent_burst_of_guesses_looks_up_at_most_the_limits_worth(
    api, app, settings, live_server, is_postgres
):
    """Guesses arriving together are counted before the database, not after their
    look-ups: a burst from one address gets at most the limit's worth of look-ups."""
    share = await make_share(api)
    limit_misses(app, settings, f"{BURST_LIMIT}/minute")
    paths = [f"/s/{random_base62(12)}" for _ in range(BURST)]
    paths[BURST // 2] = f"/s/{share['short_code']}"  # the real code among the guesses
    limits = httpx.Limits(max_connections=BURST, max_keepalive_connections=BURST)
    async with httpx.AsyncClient(base_url=live_server, limits=limits, timeout=30) as http:
        with count_sql() as sql:
            responses = await asyncio.gather(*(http.get(path) for path in paths))
    statuses = [r.status_code for r in responses]
    lookups = [statement for statement in sql if "short_code" in statement]
    # The misses up to the limit, and the real code if its turn came before the limit.
    # On PostgreSQL a miss is the use's UPDATE, then the read that says 404.
    per_miss = 2 if is_postgres else 1
    assert len(lookups) <= BURST_LIMIT * per_miss + 1, (len(lookups), statuses)
    assert statuses.count(404) <= BURST_LIMIT
    assert statuses.count(429) >= BURST - BURST_LIMIT - 1
    assert set(statuses) <= {200, 404, 429}
    for response in responses:
        if response.status_code == 429:
            assert int(response.headers["retry-after"]) >= 1


# --- the hot path's statements -------------------------------------------------------------


async def test_statements_per_request(api, client, is_postgres):
    share = await make_share(api, max_uses=2)
    url = f"/s/{share['short_code']}"
    with count_sql() as success:
        assert (await client.get(url)).status_code == 200
    with count_sql() as head:
        assert (await client.head(url)).status_code == 200
    with count_sql() as miss:
        assert (await client.get("/s/AAAAAAAAAAAA")).status_code == 404
    with count_sql() as malformed:
        assert (await client.get("/s/not-a-code")).status_code == 404
    await client.get(url)
    with count_sql() as gone:
        assert (await client.get(url)).status_code == 410
    # PostgreSQL: one statement (the conditional UPDATE returns the link), and a refusal
    # reads the link again to say why; SQLite: SELECT, then the conditional UPDATE.
    assert len(success) == (1 if is_postgres else 2), success
    assert len(head) == 1, head
    assert [len(miss), len(gone)] == ([2, 2] if is_postgres else [1, 1]), (miss, gone)
    assert malformed == []


# --- races ---------------------------------------------------------------------------------

CLIENTS = 60
MAX_USES = 5


async def assert_exactly_max_uses(share: dict[str, Any], responses: list[httpx.Response]) -> None:
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == MAX_USES, statuses
    assert statuses.count(410) == CLIENTS - MAX_USES, statuses
    for response in responses:
        if response.status_code == 410:
            assert response.json()["error"]["code"] == "gone"
    assert await used_count(share) == MAX_USES


async def test_racing_clients_get_exactly_max_uses_over_asgi(api, client):
    share = await make_share(api, max_uses=MAX_USES)
    url = f"/s/{share['short_code']}"
    responses = await asyncio.gather(*(client.get(url) for _ in range(CLIENTS)))
    await assert_exactly_max_uses(share, list(responses))


@pytest.fixture
async def live_server(app) -> AsyncIterator[str]:
    """The app behind a real uvicorn on a free TCP port, on this test's event loop."""
    async with serve(app) as url:
        yield url


async def test_racing_clients_get_exactly_max_uses_over_tcp(api, live_server):
    share = await make_share(api, max_uses=MAX_USES)
    url = f"{live_server}/s/{share['short_code']}"
    clients = [httpx.AsyncClient() for _ in range(CLIENTS)]
    try:
        responses = await asyncio.gather(*(http.get(url) for http in clients))
    finally:
        await asyncio.gather(*(http.aclose() for http in clients))
    await assert_exactly_max_uses(share, list(responses))
    assert all(r.headers["referrer-policy"] == "no-referrer" for r in responses)
    # HEAD over a real server: same status, no body, still no use consumed.
    async with httpx.AsyncClient() as http:
        head = await http.head(url)
    assert head.status_code == 410 and head.content == b""
    assert await used_count(share) == MAX_USES
