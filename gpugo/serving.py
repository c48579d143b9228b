"""How `gpugo serve` holds connections: deadlines for reading a request, a cap on them all.

uvicorn (httptools) gives a client all the time it wants: a socket that sends
nothing, or a byte of its headers or body now and then, is kept for good, and
enough of them starve every other client. Its ``limit_concurrency`` answers a
plain-text 503, and only once a request's headers are complete, so it neither
speaks the contract nor counts WebSocket handshakes. This protocol adds:

- the request line and headers must arrive within ``read_timeout`` seconds of the
  connection opening (or of a kept-alive connection's next request starting), and
  hold at most ``MAX_HEADER_BYTES``;
- the body must arrive within ``read_timeout`` seconds of the headers (time the
  server itself spends not reading, e.g. flow control, does not count);
- past the deadline the client gets 408 with the contract's body when an answer is
  still possible (nothing on a connection that never sent a byte), and the
  connection is closed;
- beyond ``max_connections`` open connections, a complete request (a WebSocket
  handshake too) closes the connection that has waited longest for its client (one
  dripping its headers or body, or idle between requests); only when none is
  waiting does it get 503 ``service_unavailable`` (and its connection is closed).

It also writes each response in one piece (``HeldWrites``): uvicorn writes the status
line and headers, then the body, two send() calls where one does.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import resource
import time
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from gpugo.errors import GpugoError, RequestHeadersTooLarge, RequestTimeout, ServiceUnavailable
from gpugo.rest.errors import error_response
from gpugo.rest.middleware import RequestEnvelope, security_headers
from gpugo.settings import Settings

log = logging.getLogger("gpugo.connections")

MAX_HEADER_BYTES = 64 * 1024
# Open files beyond the connections: database pool, data files, logs, listening sockets.
FILE_HEADROOM = 256

_ORDER = itertools.count()


def _now() -> tuple[float, int]:
    """A time, and an order for equal times (uvloop's clock advances once per loop turn)."""
    return time.monotonic(), next(_ORDER)


# Writes up to this long (a response's headers, a small body or chunk) wait for the next
# one. Longer ones go out at once, after anything held in the same send() (no copy):
# holding them would delay much data and hide it from flow control for little gain.
HOLD_MAX = 16 * 1024


class HeldWrites:
    """A connection's transport whose small writes wait for the next write, or for the
    end of the loop turn, so that one send() carries them both.

    uvicorn's cycle writes a response's status line and headers on
    ``http.response.start`` and its body on ``http.response.body``: two send() calls,
    two TCP segments for the client to read (bench/README.md, "One write per
    response"). Held, the headers leave with the body when the app sends both in one
    loop turn (every response but a stream's); a stream's headers and chunks are at
    most a turn late (``call_soon``). Close and write_eof send what is held first,
    abort drops it; everything else is the transport's own. Only ``bytes`` are held
    (immutable: the caller's buffer cannot change under it).
    """

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    @property
    def transport(self) -> asyncio.Transport:
        """The socket's own transport (a WebSocket protocol takes it over)."""
        return self._transport

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        small = type(data) is bytes and len(data) <= HOLD_MAX
        if held is None:
            if not small:
                self._transport.write(data)
            elif data:
                self._held = data  # type: ignore[assignment]
                self._loop.call_soon(self.flush)
        else:
            self._held = None
            if small:
                self._transport.write(held + data)  # type: ignore[operator]
            else:
                self._transport.writelines((held, data))  # one send() still, no copy

    def writelines(self, chunks: Any) -> None:
        held, self._held = self._held, None
        self._transport.writelines([held, *chunks] if held is not None else chunks)

    def flush(self) -> None:
        """Send what is held now (nothing once the connection is closing: it is lost)."""
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        # get_extra_info, pause_reading, set_write_buffer_limits...: the transport's own.
        return getattr(self._transport, name)


BUSY = ServiceUnavailable("The server is at its connection limit; try again shortly.")


def _raw_response(error: GpugoError, common: list[tuple[bytes, bytes]]) -> bytes:
    """An error as bytes for the wire, written by the protocol itself (no app involved)."""
    response = error_response(error)
    lines = [STATUS_LINE[error.status]]
    for name, value in [*response.raw_headers, (b"connection", b"close"), *common]:
        lines += [name, b": ", value, b"\r\n"]
    lines += [b"\r\n", response.body]
    return b"".join(lines)


async def _busy(scope: Scope, receive: Receive, send: Send) -> None:
    response = error_response(BUSY)
    response.headers["Retry-After"] = "1"
    response.headers["Connection"] = "close"
    await response(scope, receive, send)


class LimitedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with read deadlines and a connection cap.

    ``http_protocol(settings)`` makes the class ``gpugo serve`` runs with.
    """

    read_timeout: float = 20.0
    max_connections: int = 1000
    # The app that answers a request beyond the cap (behind the header middleware).
    busy_app: ASGIApp = _busy
    # 408 and 503 as bytes (headers included), for answers written without the app.
    timeout_response: bytes = b""
    busy_response: bytes = b""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._phase = "headers"  # "headers", "body" or "" (nothing being read)
        self._started = False  # a byte of the current request has arrived
        self._header_bytes = 0
        # Since when the connection has been waiting for its client (see _make_room).
        self._since = _now()

    # --- deadlines ------------------------------------------------------------------------

    def _arm(self, phase: str) -> None:
        """Enter a reading phase; its deadline starts now.

        The timer itself is set when the data at hand is parsed (``_set_timer``): a
        request that arrives whole in one read enters and leaves its phases without
        ever creating one.
        """
        self._disarm()
        self._phase = phase
        self._since = _now()

    def _set_timer(self) -> None:
        if self._phase in ("headers", "body") and self._deadline is None:
            delay = self.read_timeout - (time.monotonic() - self._since[0])
            self._deadline = self.loop.call_later(max(delay, 0.0), self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._phase = ""

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self._phase == "body" and self.flow.read_paused:
            # The server stopped reading (the app is behind, or requests are pipelined).
            self._arm("body")
            self._set_timer()
            return
        if self._phase == "headers" and not self._started:
            self._cut(None)  # a connection that never sent a byte: no request to answer
            return
        log.info(
            "closing a connection from %s: request %s not received within %g s",
            self.client[0] if self.client else "-",
            self._phase,
            self.read_timeout,
        )
        self._cut(self.timeout_response)

    def _cut(self, answer: bytes | None) -> None:
        """Stop reading the request, answer it if an answer is still possible, close."""
        cycle = self.cycle
        phase = self._phase
        self._disarm()
        if phase == "headers":
            # No answer before a request began, or amid an earlier (pipelined) response.
            if not self._started or (cycle is not None and not cycle.response_complete):
                answer = None
        elif phase == "body" and cycle is not None and not cycle.response_started:
            # The app's next receive() sees a disconnect; whatever it sends is dropped.
            cycle.disconnected = True
            cycle.message_event.set()
        else:
            answer = None
        if answer is not None:
            self.transport.write(answer)
        self.transport.close()

    # --- the connection cap ---------------------------------------------------------------

    def _waiting_on_client(self) -> bool:
        """Reading a request, or idle between two: nothing of the server's is in flight."""
        cycle = self.cycle
        if self.transport.is_closing() or self.pipeline:
            return False
        if self._phase == "headers":
            return cycle is None or cycle.response_complete
        if self._phase == "body":
            return cycle is not None and not cycle.response_started
        return cycle is None or cycle.response_complete

    def _make_room(self) -> bool:
        """At the cap, close the connection that has waited longest for its client.

        A complete request is worth more than a connection still dripping its headers
        or body (or idling between requests): past the cap, slow clients make room
        for whole requests instead of starving them. False when every other connection
        is busy on the server's side (requests in progress, streams, WebSockets).
        """
        waiting = [
            other
            for other in self.connections
            if other is not self
            and isinstance(other, LimitedHttpProtocol)
            and other._waiting_on_client()
        ]
        if not waiting:
            return False
        oldest = min(waiting, key=lambda other: other._since)
        log.info(
            "at the connection limit: closing a connection from %s that waited %.1f s",
            oldest.client[0] if oldest.client else "-",
            time.monotonic() - oldest._since[0],
        )
        oldest._cut(self.busy_response)
        return True

    def _over_limit(self) -> bool:
        return len(self.connections) > self.max_connections and not self._make_room()

    # --- uvicorn's protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # Every write of the connection goes through it, in order: the cycles', and the
        # 408/431/503 written here. (Flow control pauses reading on the transport itself.)
        self.transport = HeldWrites(transport, self.loop)  # type: ignore[assignment]
        self._arm("headers")
        self._set_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def eof_received(self) -> None:
        # The transport closes itself next (the client sent all it will): what is held
        # still goes out first, as it would have without HeldWrites.
        self.transport.flush()  # type: ignore[attr-defined]
        super().eof_received()

    def data_received(self, data: bytes) -> None:
        if self._phase == "headers":
            self._header_bytes += len(data)
        super().data_received(data)
        if self.transport.is_closing():
            return
        if self._phase == "headers" and self._header_bytes > MAX_HEADER_BYTES:
            self._disarm()
            self.transport.write(_raw_response(RequestHeadersTooLarge(), self._common_headers()))
            self.transport.close()
            return
        self._set_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._started = True
        if self._phase != "headers":
            # The next request of a kept-alive connection (or a pipelined one).
            self._header_bytes = 0
            self._arm("headers")

    def on_headers_complete(self) -> None:
        upgrade = self.parser.should_upgrade() and self._should_upgrade()
        app = self.app
        if not upgrade and self._over_limit():
            self.app = self.busy_app
        try:
            super().on_headers_complete()
        finally:
            self.app = app
        if upgrade:
            self._phase = "upgrade"  # see handle_websocket_upgrade
        else:
            self._arm("body")

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()
        self._started = False

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self._phase:
            self._since = _now()  # idle from now on

    def handle_websocket_upgrade(self) -> None:
        if self._over_limit():
            log.warning("refusing a WebSocket: %d connections open", len(self.connections))
            self._disarm()
            self.transport.write(self.busy_response)
            self.transport.close()
            return
        self._disarm()
        # The WebSocket protocol gets the socket's own transport, after anything held.
        held: HeldWrites = self.transport  # type: ignore[assignment]
        held.flush()
        self.transport = held.transport
        super().handle_websocket_upgrade()

    def _common_headers(self) -> list[tuple[bytes, bytes]]:
        return list(self.server_state.default_headers)


def http_protocol(settings: Settings) -> type[LimitedHttpProtocol]:
    """The protocol class `gpugo serve` runs with, configured from the settings."""
    common = security_headers(https=settings.secure_cookies)

    class Protocol(LimitedHttpProtocol):
        read_timeout = settings.request_read_timeout_seconds
        max_connections = settings.max_connections
        busy_app = RequestEnvelope(
            _busy, https=settings.secure_cookies, max_body_bytes=settings.max_body_bytes
        )
        timeout_response = _raw_response(RequestTimeout(), common)
        busy_response = _raw_response(BUSY, [(b"retry-after", b"1"), *common])

        def _common_headers(self) -> list[tuple[bytes, bytes]]:
            return [*self.server_state.default_headers, *common]

    return Protocol


def ensure_file_limit(max_connections: int) -> int:
    """Raise the soft open-file limit to the hard limit; the connection cap it allows.

    Every connection is a file descriptor; at the common soft limit of 1024 the process
    would run out of them (accept() failing, handshakes dropped without an answer, the
    database unreachable) before the connection cap ever answered. The soft limit goes
    as high as the hard one allows, and the figure is logged. If even that is short of
    ``max_connections`` plus the files the process needs besides (``FILE_HEADROOM``),
    the cap is lowered to fit, with a warning: refusals stay answers (503, or a
    WebSocket closed with 1013) instead of failures.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = max_connections + FILE_HEADROOM
    target = max(soft, needed) if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as error:
            log.warning("could not raise the open-file limit from %d: %s", soft, error)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        log.info("open-file limit %s for at most %d connections", soft, max_connections)
        return max_connections
    cap = max(soft - FILE_HEADROOM, 1)
    log.warning(
        "the open-file limit (%d, hard limit %s) is below GPUGO_MAX_CONNECTIONS (%d) plus "
        "%d: at most %d connections (raise the hard limit, e.g. LimitNOFILE or ulimit -Hn)",
        soft,
        hard,
        max_connections,
        FILE_HEADROOM,
        cap,
    )
    return cap
