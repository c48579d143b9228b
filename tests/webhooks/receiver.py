"""A real HTTP receiver on 127.0.0.1 for webhook tests: records every POST, answers with
a status the test chooses, and can hold requests (no answer) or go down and up again."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float
    path: str

    @property
    def json(self) -> dict[str, Any]:
        return orjson.loads(self.body)

    @property
    def delivery(self) -> str:
        return self.headers["x-gpugo-delivery"]


@dataclass
class Behaviour:
    status: int = 200
    # Seconds to wait before answering.
    delay: float = 0.0
    # While set, requests are held (no answer) until it is cleared or the client leaves.
    hold: threading.Event = field(default_factory=threading.Event)


class Receiver:
    def __init__(self, port: int = 0) -> None:
        self.received: list[Received] = []
        self.behaviour = Behaviour()
        self.lock = threading.Lock()
        # Deliveries being answered right now, by id (never two at once, says the sender).
        self.in_flight: dict[str, int] = {}
        self.overlaps: list[str] = []
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                delivery = headers.get("x-gpugo-delivery", "")
                with receiver.lock:
                    receiver.received.append(Received(headers, body, time.time(), self.path))
                    if receiver.in_flight.get(delivery):
                        receiver.overlaps.append(delivery)
                    receiver.in_flight[delivery] = receiver.in_flight.get(delivery, 0) + 1
                try:
                    behaviour = receiver.behaviour
                    deadline = time.monotonic() + 60
                    while behaviour.hold.is_set() and time.monotonic() < deadline:
                        time.sleep(0.02)
                    if behaviour.delay:
                        time.sleep(behaviour.delay)
                    payload = b'{"ok":true}'
                    self.send_response(behaviour.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client went away (a killed server)
                finally:
                    with receiver.lock:
                        receiver.in_flight[delivery] -= 1
                self.close_connection = True

        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        self._server.daemon_threads = True
        self._port = self.port
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Down: the port refuses connections until ``start`` (same port) again."""
        if self._server is not None:
            self.behaviour.hold.clear()
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def of_type(self, event_type: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.headers.get("x-gpugo-event") == event_type]

    def snapshot(self) -> list[Received]:
        with self.lock:
            return list(self.received)
