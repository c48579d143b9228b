"""Webhooks from real `gpugo serve` processes: a server killed with SIGKILL mid-delivery
sends it again after a restart; two instances on one PostgreSQL never send one delivery
at the same time, and together deliver everything once, in order per endpoint."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.hardening.live import POSTGRES_URL, Database, LiveServer
from tests.support import PASSWORD
from tests.webhooks.receiver import Receiver
from tests.webhooks.support import docs_verify

ENV = {
    "GPUGO_WEBHOOKS_ALLOW_PRIVATE": "1",
    "GPUGO_WEBHOOKS_POLL_SECONDS": "0.1",
    "GPUGO_WEBHOOKS_LEASE_SECONDS": "3",
    "GPUGO_WEBHOOKS_TIMEOUT_SECONDS": "2",
    "GPUGO_WEBHOOKS_BACKOFF_SECONDS": "0.2",
    "GPUGO_WEBHOOKS_BACKOFF_MAX_SECONDS": "1",
}


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    db = Database(tmp_path)
    yield db
    db.drop()


def wait_until(check: Callable[[], Any], within: float = 30.0) -> Any:
    deadline = time.monotonic() + within
    while not (value := check()):
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.05)
    return value


def user_client(server: LiveServer, email: str = "hooks@example.com") -> httpx.Client:
    http = httpx.Client(base_url=server.url, headers={"Origin": server.url}, timeout=10)
    response = http.post("/api/v1/auth/signup", json={"email": email, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return http


def login(server: LiveServer, email: str = "hooks@example.com") -> httpx.Client:
    http = httpx.Client(base_url=server.url, headers={"Origin": server.url}, timeout=10)
    response = http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return http


def test_a_server_killed_mid_delivery_sends_it_again_after_restart(
    tmp_path: Path, database: Database, receiver: Receiver
) -> None:
    server = LiveServer(tmp_path, database_url=database.url, env=ENV).start()
    restarted = None
    try:
        http = user_client(server)
        hook = http.post(
            "/api/v1/webhooks", json={"url": receiver.url(), "events": ["agent.offline"]}
        ).json()
        receiver.behaviour.hold.set()  # the receiver takes the request, never answers
        ping = http.post(f"/api/v1/webhooks/{hook['webhook_id']}/test").json()
        http.close()
        wait_until(lambda: receiver.snapshot())
        server.signal(signal.SIGKILL)
        server.wait()
        receiver.behaviour.hold.clear()
        # The same data directory (its license key decrypts the secret), a new process.
        restarted = LiveServer(tmp_path, database_url=database.url, env=ENV).start()
        got = wait_until(lambda: len(receiver.snapshot()) >= 2 and receiver.snapshot())
        assert [r.delivery for r in got] == [ping["delivery_id"]] * 2
        assert got[0].body == got[1].body
        assert docs_verify()(hook["secret"], got[1].headers, got[1].body, now=time.time())
        http = login(restarted)
        url = f"/api/v1/webhooks/{hook['webhook_id']}/deliveries"

        def delivered() -> dict[str, Any] | None:
            [d] = http.get(url).json()["deliveries"]
            return d if d["status"] == "delivered" else None

        delivery = wait_until(delivered)
        http.close()
        assert delivery["response_status"] == 200
        time.sleep(0.5)
        assert len(receiver.snapshot()) == 2
    finally:
        server.stop()
        if restarted is not None:
            restarted.stop()


@pytest.mark.skipif(not POSTGRES_URL, reason="several instances need PostgreSQL")
def test_two_instances_never_send_one_delivery_at_once(
    tmp_path: Path, database: Database, receiver: Receiver
) -> None:
    env = {**ENV, "GPUGO_WEBHOOKS_POLL_SECONDS": "0.05"}
    servers = [LiveServer(tmp_path, database_url=database.url, env=env).start() for _ in range(2)]
    try:
        receiver.behaviour.delay = 0.03  # each answer takes a while: overlaps would show
        first = user_client(servers[0])
        second = login(servers[1])
        endpoints = 4
        per_endpoint = 10
        hooks = [
            first.post(
                "/api/v1/webhooks",
                json={"url": receiver.url(f"/hook/{n}"), "events": ["agent.offline"]},
            ).json()
            for n in range(endpoints)
        ]
        queued: dict[str, list[str]] = {f"/hook/{n}": [] for n in range(endpoints)}
        for i in range(per_endpoint):
            for n, hook in enumerate(hooks):
                http = (first, second)[(i + n) % 2]  # queued through both instances
                ping = http.post(f"/api/v1/webhooks/{hook['webhook_id']}/test").json()
                queued[f"/hook/{n}"].append(ping["delivery_id"])
        total = endpoints * per_endpoint
        wait_until(lambda: len(receiver.snapshot()) >= total, within=60)
        time.sleep(0.5)
        got = receiver.snapshot()
        assert receiver.overlaps == []
        assert len(got) == total  # none twice
        for path, ids in queued.items():
            assert [r.delivery for r in got if r.path == path] == ids  # in order
        first.close()
        second.close()
    finally:
        for server in servers:
            server.stop()
