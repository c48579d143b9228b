"""Tortoise's SQLite engine, with a transaction whose start survives cancellation.

SQLite has one connection per process, guarded by a lock that a transaction holds from
``BEGIN`` to its end. Tortoise's ``SqliteTransactionContext.__aenter__`` takes that lock
and then awaits ``BEGIN``: a task cancelled during that await (a client gone, a stream
or subscription closed, a server stopping) leaves ``__aenter__`` by the exception, so
``__aexit__`` never runs and the lock is never released. Every later transaction of the
process then waits for it forever; the test suite met it as a rare hang at teardown,
and a SQLite server would stop writing the same way. Here the start releases what it
took when it does not finish. (If BEGIN itself ran, the next transaction's start
commits that empty transaction first: Tortoise's ``begin`` does.)

Selected by ``gpugo.db.tortoise_config`` as the engine of ``sqlite://`` URLs.
"""

from __future__ import annotations

from typing import Any

from tortoise.backends.base.client import TransactionalDBClient, TransactionContext
from tortoise.backends.sqlite.client import (
    SqliteClient,
    SqliteTransactionContext,
    SqliteTransactionWrapper,
)
from tortoise.connection import get_connections


class _CancellationSafeTransactionContext(SqliteTransactionContext):
    async def __aenter__(self) -> TransactionalDBClient:
        await self._trxlock.acquire()
        try:
            await self.ensure_connection()
            self.token = get_connections().set(self.connection_name, self.connection)
            try:
                await self.connection.begin()
            except BaseException:
                get_connections().reset(self.token)
                raise
        except BaseException:
            self._trxlock.release()
            raise
        return self.connection


class Client(SqliteClient):
    def _in_transaction(self) -> TransactionContext:
        return _CancellationSafeTransactionContext(SqliteTransactionWrapper(self), self._lock)


client_class = Client


def get_client_class(db_info: dict[str, Any]) -> type[SqliteClient]:
    return Client
