"""Which exceptions mean "the database cannot be reached now" (an outage, not a bug).

Both doors answer them as ``service_unavailable``: REST in gpugo/rest/errors.py,
GraphQL in gpugo/schema/errors.py.
"""

from __future__ import annotations

import asyncpg
from tortoise.exceptions import DBConnectionError

_UNREACHABLE = (
    OSError,  # refused, reset, timed out
    DBConnectionError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # shutting down, starting up
    asyncpg.exceptions.TooManyConnectionsError,
)


def database_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it wraps) is a lost or refused database connection."""
    seen: BaseException | None = exc
    for _ in range(8):  # the chain of causes is short; bound it anyway
        if seen is None:
            return False
        if isinstance(seen, _UNREACHABLE):
            return True
        if isinstance(seen, asyncpg.InterfaceError) and "closed" in str(seen):
            return True
        # A connection the server terminated (restart, failover) while a statement was
        # being sent: its protocol state machine refuses the statement.
        if isinstance(seen, asyncpg.InternalClientError) and "cannot switch to state" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
