"""Logging: plain text or one JSON object per line. Secrets are never passed to a logger."""

from __future__ import annotations

import contextvars
import logging
import secrets
import sys

import orjson

from gpugo.settings import Settings

# Database drivers and the ORM log statements and bound values at DEBUG.
QUIET_LOGGERS = ("tortoise", "tortoise.db_client", "aiosqlite", "asyncpg")

# The id of the request being served, on every log line written while serving it.
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def is_share_path(path: str) -> bool:
    return path.startswith("/s/")


def loggable_path(path: str) -> str:
    """The path as log lines may show it: a share code is a capability, never logged."""
    return "/s/…" if is_share_path(path) else path


def new_request_id() -> str:
    value = secrets.token_hex(8)
    request_id.set(value)
    return value


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class JsonFormatter(logging.Formatter):
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
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    # uvicorn's access log would print full URLs, and /s/{code} is a capability.
    logging.getLogger("uvicorn.access").disabled = True
    # Query logging prints statements with their bound values (hashes, e-mails): these
    # loggers stay at WARNING whatever GPUGO_LOG_LEVEL says.
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
