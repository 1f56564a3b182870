"""Connections for reads: autocommit, so a read costs its statements' round
trips and nothing else.

A connection of the server's engine starts a transaction with its first
statement (psycopg sends ``BEGIN``, a round trip of its own) and the pool
rolls it back when the connection is returned (another). A read of one
statement paid three round trips; GetOrganization, two reads, paid six.
Under READ COMMITTED, the server's isolation level, every statement takes
its own snapshot whether or not a transaction is open, so reads that run
outside one see exactly what they saw inside it. An autocommit connection
sends neither ``BEGIN`` nor ``ROLLBACK`` (psycopg skips a rollback when no
transaction is open).

Writes keep ``engine.begin()``: only a read, or a read followed by a single
self-contained write (the API key's ``last_used_at``), uses these.
"""

from __future__ import annotations

import weakref
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

_AUTOCOMMIT: weakref.WeakKeyDictionary[Any, AsyncEngine] = weakref.WeakKeyDictionary()


def read_engine(engine: AsyncEngine) -> AsyncEngine:
    """``engine``'s autocommit twin: the same pool, connections checked out
    in autocommit and returned in the pool's default isolation level."""
    sync = engine.sync_engine
    twin = _AUTOCOMMIT.get(sync)
    if twin is None:
        twin = engine.execution_options(isolation_level="AUTOCOMMIT")
        _AUTOCOMMIT[sync] = twin
    return twin


def read_connection(engine: AsyncEngine) -> AsyncConnection:
    """``async with read_connection(ctx.engine) as conn:`` for reads."""
    return read_engine(engine).connect()
