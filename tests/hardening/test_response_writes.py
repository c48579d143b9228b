"""How a real `gpugo serve` writes its answers, seen from a client's socket on 127.0.0.1.

An answer the app gives whole (status line, headers and body at once) leaves in one
write, so a small one arrives in one TCP segment; streams still arrive as they are
produced, an answer followed by a close still arrives whole, pipelined answers keep
their order, and a connection that answered HTTP still becomes a WebSocket.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from gpugo.serving import HOLD_MAX
from tests.hardening.live import Database, LiveServer
from tests.support import PASSWORD, gpu_infos

# tcpi_data_segs_in of Linux's struct tcp_info (4.6+): segments received with data.
DATA_SEGS_IN = 152

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads Linux's TCP_INFO"
)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    directory: Path = tmp_path_factory.mktemp("writes")
    database = Database(directory)
    server = LiveServer(directory, database_url=database.url)
    try:
        yield server.start()
    finally:
        server.stop()
        database.drop()


class Connection:
    """A raw keep-alive connection: requests as bytes, answers read to their last byte."""

    def __init__(self, server: LiveServer) -> None:
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        self.buffer = b""

    def close(self) -> None:
        self.sock.close()

    def data_segments(self) -> int:
        info = self.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
        return struct.unpack_from("I", info, DATA_SEGS_IN)[0]

    def _more(self) -> bytes:
        chunk = self.sock.recv(65536)  # the socket's timeout (5 s) bounds the wait
        self.buffer += chunk
        return chunk

    def read_answer(self, *, head: bool = False) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buffer:
            assert self._more(), f"closed amid the headers: {self.buffer!r}"
        raw, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        status_line, *lines = raw.decode("latin-1").split("\r\n")
        headers = {name.lower(): value for name, value in (ln.split(": ", 1) for ln in lines)}
        length = 0 if head else int(headers["content-length"])
        while len(self.buffer) < length:
            assert self._more(), f"closed amid the body: {self.buffer!r}"
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(status_line.split(" ")[1]), headers, body

    def read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            assert self._more(), f"closed before {marker!r}: {self.buffer!r}"
        return self.buffer


def request(method: str, path: str, *lines: str, body: bytes = b"") -> bytes:
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *lines]
    if body:
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


LOGIN = json.dumps({"email": "nobody@example.com", "password": "x" * 12}).encode()
ANSWERS = [
    # method, path, body, status
    ("GET", "/healthz", b"", 200),
    ("HEAD", "/healthz", b"", 200),
    ("GET", "/no-such-page", b"", 404),
    ("POST", "/api/v1/auth/login", LOGIN, 401),
    ("GET", "/s/AAAAAAAAAAAA", b"", 404),
    ("HEAD", "/s/AAAAAAAAAAAA", b"", 404),
]


def test_each_small_answer_arrives_in_one_segment(live):
    conn = Connection(live)
    try:
        for method, path, body, status in ANSWERS:
            before = conn.data_segments()
            conn.sock.sendall(request(method, path, body=body))
            got, headers, content = conn.read_answer(head=method == "HEAD")
            assert got == status, (method, path, content)
            if method != "HEAD":
                assert len(content) == int(headers["content-length"]) > 0
                json.loads(content)
            assert conn.data_segments() - before == 1, (method, path)
    finally:
        conn.close()


def test_pipelined_answers_arrive_whole_and_in_order(live):
    conn = Connection(live)
    try:
        conn.sock.sendall(
            request("GET", "/healthz")
            + request("POST", "/api/v1/auth/login", body=LOGIN)
            + request("GET", "/no-such-page")
            + request("HEAD", "/healthz")
        )
        statuses = [conn.read_answer()[0] for _ in range(3)]
        statuses.append(conn.read_answer(head=True)[0])
        assert statuses == [200, 401, 404, 200]
        assert conn.buffer == b""
    finally:
        conn.close()


@pytest.mark.parametrize(
    "ask",
    [
        request("GET", "/healthz", "Connection: close"),
        b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n",
    ],
    ids=["connection-close", "http-1.0"],
)
def test_an_answer_before_a_close_arrives_whole(live, ask):
    conn = Connection(live)
    try:
        conn.sock.sendall(ask)
        status, headers, body = conn.read_answer()
        assert status == 200
        assert headers["connection"] == "close"
        assert json.loads(body)
        assert conn.sock.recv(65536) == b""  # then the server closes
        assert conn.data_segments() == 1
    finally:
        conn.close()


def test_a_large_answer_arrives_whole(live):
    conn = Connection(live)
    try:
        conn.sock.sendall(request("GET", "/api/v1/openapi.json"))
        status, _, body = conn.read_answer()
        assert status == 200
        assert len(body) > HOLD_MAX  # too long to wait for another write
        assert "paths" in json.loads(body)
        # The connection goes on after it.
        conn.sock.sendall(request("GET", "/healthz"))
        assert conn.read_answer()[0] == 200
    finally:
        conn.close()


@pytest.fixture(scope="module")
def account(live: LiveServer) -> dict[str, str]:
    """A user's PAT, and an agent of theirs with its secret."""
    with httpx.Client(base_url=live.url, timeout=5, headers={"Origin": live.url}) as http:
        credentials = {"email": "writes@example.com", "password": PASSWORD}
        http.post("/api/v1/auth/signup", json=credentials).raise_for_status()
        pat = http.post("/api/v1/tokens/pat", json={}).json()["token"]
        token = http.post("/api/v1/tokens/generate", json={"type": "agent_install"}).json()
        body = {"hostname": "h", "os": "linux", "arch": "amd64", "gpus": gpu_infos(1)}
        registered = http.post(
            "/api/v1/agents/register",
            json=body,
            headers={"Authorization": f"Bearer {token['token']}"},
        ).json()
    return {"pat": pat, "agent_id": registered["agent_id"], "secret": registered["agent_secret"]}


def test_a_stream_sends_each_event_when_it_happens(live, account):
    agent_id, secret = account["agent_id"], account["secret"]
    conn = Connection(live)
    try:
        conn.sock.sendall(
            request("GET", f"/api/v1/agents/{agent_id}/events", f"Authorization: Bearer {secret}")
        )
        received = conn.read_until(b"event: config")
        head = received.partition(b"\r\n\r\n")[0]
        assert head.startswith(b"HTTP/1.1 200 ")
        assert b"transfer-encoding: chunked" in head.lower()
        # A change of the agent's config: its event is written alone, and nothing follows
        # it for 15 s (the keep-alive); it must not wait for the next write.
        bearer = {"Authorization": f"Bearer {account['pat']}"}
        with httpx.Client(base_url=live.url, timeout=5, headers=bearer) as http:
            worker = {"agent_id": agent_id, "name": "w", "gpu_ids": ["GPU-0"], "listen_port": 9100}
            created = http.post("/api/v1/workers", json=worker)
            assert created.status_code == 201, created.text
        changed = time.monotonic()
        conn.read_until(b'"config_version":2')
        assert time.monotonic() - changed < 3
        assert b"0\r\n\r\n" not in conn.buffer  # still open
    finally:
        conn.close()


async def test_a_connection_that_answered_http_becomes_a_websocket(live, account):
    conn = Connection(live)
    conn.sock.sendall(request("GET", "/healthz"))
    assert conn.read_answer()[0] == 200
    conn.sock.setblocking(False)
    url = live.url.replace("http://", "ws://") + "/graphql"
    async with websockets.connect(
        url,
        sock=conn.sock,
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        open_timeout=5,
    ) as ws:
        init = {"authorization": f"Bearer {account['pat']}"}
        await ws.send(json.dumps({"type": "connection_init", "payload": init}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await ws.recv())["type"] == "pong"
