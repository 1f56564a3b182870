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

from sqlalchemy import literal_column
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


def sql_constant(value: str | int) -> Any:
    """``value`` written into a read's SQL text, not bound.

    psycopg prepares a statement run 5 times on a connection; Postgres plans
    a prepared statement for the values given 5 times, then keeps a generic
    plan (planned once) only if it costs no more than those. A bound value
    whose selectivity the planner estimates apart from its own frequency (a
    status: 1/distinct statuses; a LIMIT: a tenth of the rows) made the
    generic plan's cost differ, so the statement was planned on every call
    (GetBatch's queued summary: 0.6 ms, more than running it; the deep
    contacts page: cost 7,991 generic against 367 with LIMIT 101;
    bench/reads.py --explain). Constants written into the text leave only
    the ids bound. For the reads' own constants (statuses, reasons, sizes),
    never for a user's input."""
    if isinstance(value, int):
        return literal_column(str(value))
    return literal_column("'" + value.replace("'", "''") + "'")
