"""Count the SQL statements Tortoise sends (transaction BEGIN/COMMIT are not counted)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

_LOGGER = logging.getLogger("tortoise.db_client")


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.statements: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == "%s: %s" and record.args:
            self.statements.append(str(record.args[0]))


@contextmanager
def count_sql() -> Iterator[list[str]]:
    """Collects the statements run inside the block: ``with count_sql() as sql: ...``."""
    collector = _Collector()
    previous = _LOGGER.level
    _LOGGER.addHandler(collector)
    _LOGGER.setLevel(logging.DEBUG)
    try:
        yield collector.statements
    finally:
        _LOGGER.removeHandler(collector)
        _LOGGER.setLevel(previous)
