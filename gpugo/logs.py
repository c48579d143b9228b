"""Logging: plain text or one JSON object per line. Secrets are never passed to a logger."""

from __future__ import annotations

import logging
import sys

import orjson

from gpugo.settings import Settings


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["trace"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    # uvicorn's access log would print full URLs, and /s/{code} is a capability.
    logging.getLogger("uvicorn.access").disabled = True
    # Query logging prints bound values (hashes, e-mails): never above WARNING here.
    logging.getLogger("tortoise").setLevel(logging.WARNING)
