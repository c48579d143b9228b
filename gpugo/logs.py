"""Logging: plain text or one JSON object per line. Secrets are never passed to a logger."""

from __future__ import annotations

import contextvars
import logging
import random
import sys
from typing import Any

import orjson

from gpugo.settings import Settings

# Loggers that write secrets or bound values below a level stay at that level whatever
# GPUGO_LOG_LEVEL says. The database drivers and the ORM print statements with their bound
# values (hashes, e-mails) at DEBUG. uvicorn hands "uvicorn.error" to the websockets library,
# which at DEBUG prints every handshake header (the session cookie) and the head and tail of
# every frame (a PAT in connection_init); "websockets" is its own logger otherwise.
QUIET_LOGGERS: dict[str, int] = {
    "tortoise": logging.WARNING,
    "tortoise.db_client": logging.WARNING,
    "aiosqlite": logging.WARNING,
    "asyncpg": logging.WARNING,
    "uvicorn.error": logging.INFO,
    "websockets": logging.INFO,
}

# The id of the request being served, on every log line written while serving it.
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


# The most of one request value a log line carries, and of one logged trace.
MAX_LOGGED_VALUE = 200
MAX_LOGGED_TRACE = 8000


def loggable(value: object, limit: int = MAX_LOGGED_VALUE) -> str:
    """A value from a request as a log line may carry it: cut to ``limit`` characters and
    with control, format and separator characters (and backslashes) escaped, so that no
    value can start a line of its own or make a line huge. Every log line that includes
    request data (a path, a method, an operation name) passes it through here."""
    text = str(value)
    shown = text[:limit]
    if not shown.isprintable() or "\\" in shown:
        shown = "".join(
            c if c.isprintable() and c != "\\" else c.encode("unicode_escape").decode("ascii")
            for c in shown
        )
    if len(shown) > limit or len(text) > limit:
        shown = f"{shown[:limit]}…[{len(text)} characters]"
    return shown


def is_share_path(path: str) -> bool:
    return path.startswith("/s/")


def loggable_path(path: str) -> str:
    """The path as log lines may show it: a share code is a capability, never logged."""
    return "/s/…" if is_share_path(path) else loggable(path)


def new_request_id() -> str:
    # A label to find a request's log lines by, not a secret: the Mersenne Twister (reseeded
    # in every forked process) instead of a system call per request.
    value = f"{random.getrandbits(64):016x}"
    request_id.set(value)
    return value


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class _BoundedTraces(logging.Formatter):
    """Traces keep their head and tail: an exception's message may quote request data."""

    def formatException(self, ei: Any) -> str:
        trace = super().formatException(ei)
        if len(trace) <= MAX_LOGGED_TRACE:
            return trace
        half = MAX_LOGGED_TRACE // 2
        return f"{trace[:half]}\n…[{len(trace) - 2 * half} characters cut]…\n{trace[-half:]}"


class JsonFormatter(_BoundedTraces):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        if record.exc_info:
            entry["trace"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            _BoundedTraces("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    # uvicorn's access log would print full URLs, and /s/{code} is a capability.
    logging.getLogger("uvicorn.access").disabled = True
    for name, level in QUIET_LOGGERS.items():
        # Never below their floor, and never louder than the rest of the log.
        logging.getLogger(name).setLevel(max(level, root.level))
