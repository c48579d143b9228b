"""Slow clients and too many connections, against a real `gpugo serve` over TCP.

Every client here is on 127.0.0.1, bounded in count (tens of sockets) and in time
(each test stops within seconds), and closes what it opened.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.hardening.live import Database, LiveServer
from tests.support import PASSWORD, gpu_infos

LIMIT = 1.0  # GPUGO_REQUEST_READ_TIMEOUT_SECONDS in these tests
SLACK = 1.5  # scheduling on a busy 2-core machine
SLOW_CLIENTS = 40
DRIP = 0.25  # seconds between the slow clients' bytes


def _server(directory: Path, **env: str) -> Iterator[LiveServer]:
    database = Database(directory)
    server = LiveServer(directory, database_url=database.url, env=env)
    try:
        yield server.start()
    finally:
        server.stop()
        database.drop()


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    yield from _server(tmp_path, GPUGO_REQUEST_READ_TIMEOUT_SECONDS=str(LIMIT))


def _connect(server: LiveServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    sock.setblocking(False)
    return sock


def _read_all(sock: socket.socket, within: float = 5.0) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        readable, _, _ = select.select([sock], [], [], 0.1)
        if readable:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                return data
            if not chunk:
                return data
            data += chunk
    raise AssertionError(f"still open after {within} s; received {data!r}")


def _error_code(raw: bytes) -> tuple[int, str]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)["error"]["code"]


def _drip(socks: list[socket.socket], healthz_url: str, within: float) -> dict:
    """Send one byte on every open socket each DRIP seconds, ask /healthz meanwhile,
    and note when each socket was answered and closed."""
    started = time.monotonic()
    ended: dict[int, float] = {}
    answers: dict[int, bytes] = {i: b"" for i in range(len(socks))}
    healthz: list[float] = []
    with httpx.Client(timeout=5) as http:
        while len(ended) < len(socks) and time.monotonic() - started < within:
            for i, sock in enumerate(socks):
                if i in ended:
                    continue
                readable, _, _ = select.select([sock], [], [], 0)
                chunk = b""
                if readable:
                    try:
                        chunk = sock.recv(65536)
                    except ConnectionResetError:
                        chunk = b""
                    answers[i] += chunk
                    if not chunk:
                        ended[i] = time.monotonic() - started
                        continue
                with contextlib.suppress(OSError):  # closed by the server: read next round
                    sock.send(b"a")
            t = time.monotonic()
            assert http.get(f"{healthz_url}/healthz").status_code == 200
            healthz.append(time.monotonic() - t)
            time.sleep(DRIP)
    return {"ended": ended, "answers": answers, "healthz": healthz}


def test_slow_headers_are_cut_off_with_408_while_healthz_answers(live):
    socks = [_connect(live) for _ in range(SLOW_CLIENTS)]
    idle = _connect(live)  # connects and never sends a byte
    try:
        for sock in socks:
            sock.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        result = _drip(socks, live.url, within=LIMIT + 4 * SLACK)
        assert len(result["ended"]) == SLOW_CLIENTS, "some slow clients were never cut off"
        assert max(result["ended"].values()) < LIMIT + SLACK, result["ended"]
        for raw in result["answers"].values():
            assert _error_code(raw) == (408, "request_timeout"), raw
            assert b"connection: close" in raw.lower()
            assert b"x-content-type-options: nosniff" in raw.lower()
        assert max(result["healthz"]) < 1.0, result["healthz"]
        # A connection that never sent anything is closed without an answer.
        assert _read_all(idle, within=LIMIT + SLACK) == b""
    finally:
        for sock in [*socks, idle]:
            sock.close()


def test_slow_bodies_are_cut_off_with_408_while_healthz_answers(live):
    socks = [_connect(live) for _ in range(SLOW_CLIENTS)]
    try:
        for sock in socks:
            sock.send(
                b"POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"
            )
        result = _drip(socks, live.url, within=LIMIT + 4 * SLACK)
        assert len(result["ended"]) == SLOW_CLIENTS, "some slow bodies were never cut off"
        assert max(result["ended"].values()) < LIMIT + SLACK, result["ended"]
        for raw in result["answers"].values():
            assert _error_code(raw) == (408, "request_timeout"), raw
        assert max(result["healthz"]) < 1.0, result["healthz"]
    finally:
        for sock in socks:
            sock.close()
    # The server is unharmed: a complete request still works, and nothing was logged
    # as an error (a cut-off body is not a bug).
    with httpx.Client(base_url=live.url, timeout=5) as http:
        response = http.post("/api/v1/auth/login", json={"email": "a@b.c", "password": "x" * 8})
        assert response.status_code == 401
    assert "Traceback" not in live.logs() and "unhandled error" not in live.logs()


def test_a_body_the_app_did_not_wait_for_cannot_hold_the_connection(live):
    sock = _connect(live)
    try:
        sock.send(
            b"POST /no-such-route HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n"
        )
        started = time.monotonic()
        raw = _read_all(sock, within=LIMIT + 2 * SLACK)
        # Answered at once (404), then closed at the deadline: the rest never came.
        assert _error_code(raw) == (404, "not_found")
        assert time.monotonic() - started < LIMIT + SLACK
    finally:
        sock.close()


def test_oversized_headers_are_refused_with_431(live):
    sock = socket.create_connection(("127.0.0.1", live.port), timeout=5)
    try:
        # Past 64 KiB of request line and headers, however fast they come.
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 66 * 1024)
        sock.setblocking(False)
        assert _error_code(_read_all(sock)) == (431, "request_headers_too_large")
    finally:
        sock.close()


@pytest.fixture
def capped(tmp_path: Path) -> Iterator[LiveServer]:
    yield from _server(tmp_path, GPUGO_MAX_CONNECTIONS="3", GPUGO_REQUEST_READ_TIMEOUT_SECONDS="10")


def test_past_the_connection_limit_slow_clients_make_room_for_whole_requests(capped):
    held = [_connect(capped) for _ in range(3)]
    try:
        for sock in held:
            sock.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # headers unfinished
            time.sleep(0.05)
        # Each whole request closes the connection that waited longest for its client:
        # the start-up check's connection may still be open (idle), then the oldest
        # slow one goes, with a 503 it may retry.
        for _ in range(3):
            with httpx.Client(base_url=capped.url, timeout=5) as http:
                assert http.get("/healthz").status_code == 200
            if select.select([held[0]], [], [], 0.2)[0]:
                break
        assert _error_code(_read_all(held[0])) == (503, "service_unavailable")
        for sock in held[1:]:
            assert not select.select([sock], [], [], 0)[0], "a newer slow client was cut"
    finally:
        for sock in held:
            sock.close()


def _stream(http: httpx.Client, agent_id: str, secret: str) -> contextlib.AbstractContextManager:
    return http.stream(
        "GET", f"/api/v1/agents/{agent_id}/events", headers={"Authorization": f"Bearer {secret}"}
    )


def test_past_the_connection_limit_with_nothing_to_drop_requests_get_503(capped):
    with httpx.Client(base_url=capped.url, timeout=5) as setup:
        setup.post("/api/v1/auth/signup", json={"email": "cap@example.com", "password": PASSWORD})
        token = setup.post(
            "/api/v1/tokens/generate", json={"type": "agent_install"}, headers=ORIGIN(capped)
        ).json()["token"]
        body = {"hostname": "h", "os": "linux", "arch": "amd64", "gpus": gpu_infos(1)}
        registered = setup.post(
            "/api/v1/agents/register", json=body, headers={"Authorization": f"Bearer {token}"}
        ).json()
    agent_id, secret = registered["agent_id"], registered["agent_secret"]
    with contextlib.ExitStack() as stack:
        # Three event streams fill the server: busy on its side, nothing to drop.
        streams = []
        for _ in range(3):
            http = stack.enter_context(httpx.Client(base_url=capped.url, timeout=5))
            response = stack.enter_context(_stream(http, agent_id, secret))
            assert response.status_code == 200
            lines = response.iter_lines()  # kept: dropping it would close the stream
            assert next(lines) == "event: config"
            streams.append(lines)
        # Idle connections left from the setup may still be open: they make room first.
        for _ in range(4):
            with httpx.Client(base_url=capped.url, timeout=5) as http:
                response = http.get("/healthz")
            if response.status_code != 200:
                break
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "service_unavailable"
        assert response.headers["retry-after"] == "1"
        assert response.headers["connection"] == "close"
        assert len(response.headers["x-request-id"]) == 16
        # A WebSocket handshake is refused the same way.
        sock = _connect(capped)
        sock.send(
            b"GET /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
        )
        assert _error_code(_read_all(sock)) == (503, "service_unavailable")
        sock.close()
    time.sleep(0.2)
    with httpx.Client(base_url=capped.url, timeout=5) as http:
        assert http.get("/healthz").status_code == 200


def ORIGIN(server: LiveServer) -> dict[str, str]:
    return {"Origin": server.url}
