"""A transaction cancelled while it starts leaves the SQLite connection usable
(gpugo/sqlite_engine.py): before, the connection's lock stayed taken and every later
write of the process waited forever."""

from __future__ import annotations

import asyncio

import pytest
from tortoise.transactions import in_transaction

from gpugo.models import User


async def test_a_transaction_cancelled_while_it_begins_releases_the_connection(app, is_postgres):
    if is_postgres:
        pytest.skip("SQLite's single connection and its lock")
    started = asyncio.Event()

    async def transaction() -> None:
        started.set()
        async with in_transaction():
            await asyncio.sleep(10)

    task = asyncio.create_task(transaction())
    await started.wait()
    # The task has taken the lock and waits for BEGIN on the database's thread.
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with asyncio.timeout(5):
        async with in_transaction():
            assert await User.all().count() == 0
        assert await User.all().count() == 0
