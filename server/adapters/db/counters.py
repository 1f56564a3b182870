"""Sharded batch counters: written per shard, read as sums (8 rows)."""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Float, Numeric, cast, func, insert, literal, literal_column, select, true, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from server.adapters.db.schema import COUNTER_SHARDS, SUMMED_COUNTERS, batch_counters, batches
from server.domain.contact_rules import IN_CALL, WAITING, ContactStatus, counter_column

bc = batch_counters
#: Counters of contacts waiting for a dial, and of those in a call.
WAITING_COLUMNS = tuple(counter_column(s) for s in ContactStatus if s in WAITING)
IN_CALL_COLUMNS = tuple(counter_column(s) for s in ContactStatus if s in IN_CALL)
#: Contacts the batch still works on: waiting or in a call.
PROCESSING_COLUMNS = WAITING_COLUMNS + IN_CALL_COLUMNS


def _sum_of(columns: tuple[str, ...]) -> Any:
    """SQL ``a + b + ...`` of counter columns of one shard row."""
    return sum((bc.c[c] for c in columns[1:]), bc.c[columns[0]])


def _summed(column: str) -> Any:
    """sum() of a bigint is numeric in Postgres: cast back so Python gets ints."""
    col = getattr(bc.c, column)
    total = func.coalesce(func.sum(col), 0)
    return total if isinstance(col.type, Float) else cast(total, BigInteger)


def totals_lateral(columns: tuple[str, ...] | None = None) -> Any:
    """LATERAL subquery of a batch's summed counters, labelled like columns,
    so a joined row reads them as its own columns (``row.n_pending``).
    ``columns``: only these summed counters (a contacts page needs the
    status counts, not the histograms, whose jsonb sums cost more than
    the rest of the read); None = every counter and both histograms."""
    if columns is not None:
        return select(*[_summed(c).label(c) for c in columns]).where(bc.c.batch_id == batches.c.id).lateral("totals")
    return (
        select(
            *[_summed(c).label(c) for c in SUMMED_COUNTERS],
            func.max(bc.c.last_grant_at).label("last_grant_at"),
            _jsonb_total("attempt_histogram").label("attempt_histogram"),
            _jsonb_total("outcomes_by_attempt").label("outcomes_by_attempt"),
        )
        .where(bc.c.batch_id == batches.c.id)
        .lateral("totals")
    )


def _jsonb_total(column: str) -> Any:
    """The shards' ``{key: number}`` objects summed per key, as
    ``bc_jsonb_sum`` sums them, in one grouped pass over the 8 rows: the
    aggregate calls its SQL transition function once a row, which cost a
    GetBatch more than the rest of its statement (0.3 ms of 0.4 ms)."""
    shard = bc.alias(f"bc_{column}")
    entry = func.jsonb_each_text(getattr(shard.c, column)).table_valued("key", "value").lateral(f"e_{column}")
    per_key = (
        select(entry.c.key.label("k"), func.sum(cast(entry.c.value, Numeric)).label("s"))
        .select_from(shard)
        .join(entry, true())
        .where(shard.c.batch_id == batches.c.id)
        .group_by(entry.c.key)
        .correlate(batches)
        .subquery(f"sum_{column}")
    )
    return (
        select(func.coalesce(func.jsonb_object_agg(per_key.c.k, per_key.c.s), literal({}, JSONB)))
        .scalar_subquery()
    )


async def init_shards(conn: AsyncConnection, batch_id: str, *, pending: int, suppressed: int) -> None:
    rows = [
        {"batch_id": batch_id, "shard": s, "n_pending": pending if s == 0 else 0,
         "n_suppressed": suppressed if s == 0 else 0}
        for s in range(COUNTER_SHARDS)
    ]
    await conn.execute(insert(bc), rows)


async def add(conn: AsyncConnection, batch_id: str, shard: int, **values: Any) -> None:
    """``values`` maps a column to an expression built from ``bc.c``."""
    if values:
        await conn.execute(update(bc).where(bc.c.batch_id == batch_id, bc.c.shard == shard).values(**values))


def _processing_total() -> Any:
    """Summed contacts still waiting or in a call."""
    return func.coalesce(func.sum(_sum_of(PROCESSING_COLUMNS)), 0)


async def processing(conn: AsyncConnection, batch_id: str) -> int:
    return int((await conn.execute(select(_processing_total()).where(bc.c.batch_id == batch_id))).scalar_one())


async def in_call(conn: AsyncConnection, batch_id: str) -> int:
    total = func.coalesce(func.sum(_sum_of(IN_CALL_COLUMNS)), 0)
    return int((await conn.execute(select(total).where(bc.c.batch_id == batch_id))).scalar_one())


async def last_grant(conn: AsyncConnection, batch_id: str) -> datetime | None:
    return (await conn.execute(select(func.max(bc.c.last_grant_at)).where(bc.c.batch_id == batch_id))).scalar_one()


def processing_is_zero(batch_id_column: Any = batches.c.id) -> Any:
    """SQL condition: the batch has no contact waiting or in a call."""
    total = select(_processing_total()).where(bc.c.batch_id == batch_id_column).scalar_subquery()
    return total == literal_column("0")


class Deltas:
    """Counter changes of many contacts, summed per batch in Python and
    written to ONE shard row per batch, picked at random per transaction.

    Which shard a change lands on does not matter (readers sum the shards);
    what matters is that concurrent transactions (grants, answers, outcomes
    of one batch, from several dialers) rarely wait for each other's row
    lock, and that one transaction costs one statement, not one per contact.
    """

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}

    def add(self, batch_id: str, column: str, amount: float) -> None:
        row = self.rows.setdefault(batch_id, {})
        row[column] = row.get(column, 0) + amount

    def move(self, batch_id: str, from_status: str, to_status: str) -> None:
        """One contact moving between statuses."""
        if from_status != to_status:
            self.add(batch_id, f"n_{from_status}", -1)
            self.add(batch_id, f"n_{to_status}", 1)

    def bump(self, batch_id: str, json_column: str, key: str, amount: int = 1) -> None:
        bumps = self.rows.setdefault(batch_id, {}).setdefault(json_column, {})
        bumps[key] = bumps.get(key, 0) + amount

    def granted(self, batch_id: str, at: datetime) -> None:
        row = self.rows.setdefault(batch_id, {})
        row["last_grant_at"] = max(row.get("last_grant_at") or at, at)


_JSON_COLUMNS = ("attempt_histogram", "outcomes_by_attempt")


def one_or_many(rows: list[dict[str, Any]]) -> dict[str, Any] | list[dict[str, Any]]:
    """Parameters for ``conn.execute``: a single row runs as a plain execute
    (an executemany of one costs a pipeline round of its own in psycopg)."""
    return rows[0] if len(rows) == 1 else rows


_APPLY_CACHE: dict[tuple[str, ...], Any] = {}


def _apply_statement(columns: tuple[str, ...]) -> Any:
    """The UPDATE adding deltas to ``columns``, built once per column set
    (SQLAlchemy then reuses its compiled form)."""
    stmt = _APPLY_CACHE.get(columns)
    if stmt is None:
        from sqlalchemy import bindparam
        from sqlalchemy.dialects.postgresql import JSONB

        values: dict[str, Any] = {}
        for c in columns:
            col = getattr(bc.c, c)
            if c in _JSON_COLUMNS:
                values[c] = func.bc_jsonb_add(col, bindparam(f"p_{c}", type_=JSONB))
            elif c == "last_grant_at":
                values[c] = func.greatest(col, bindparam("p_last_grant_at", type_=col.type))
            else:
                values[c] = col + bindparam(f"p_{c}", type_=col.type)
        stmt = (
            update(bc)
            .where(bc.c.batch_id == bindparam("p_batch_id"), bc.c.shard == bindparam("p_shard"))
            .values(**values)
        )
        _APPLY_CACHE[columns] = stmt
    return stmt


async def apply(conn: AsyncConnection, deltas: Deltas) -> None:
    """Writes ``deltas`` in batch order, the one lock order every writer of
    several batches' counter rows follows, so concurrent flushes never
    deadlock. Call it last before the commit: the row lock is held until then."""
    rows = [(key, d) for key, d in sorted(deltas.rows.items()) if d]
    if not rows:
        return
    columns = tuple(sorted({c for _, d in rows for c in d}))
    params = []
    for batch_id, d in rows:
        p: dict[str, Any] = {"p_batch_id": batch_id, "p_shard": random.randrange(COUNTER_SHARDS)}
        for c in columns:
            default: Any = {} if c in _JSON_COLUMNS else (None if c == "last_grant_at" else 0)
            p[f"p_{c}"] = d.get(c, default)
        params.append(p)
    await conn.execute(_apply_statement(columns), one_or_many(params))


async def waiting_totals(conn: AsyncConnection, batch_ids: list[str]) -> dict[str, int]:
    """Waiting contacts (pending + queued) per batch, as this transaction sees them."""
    rows = await conn.execute(_WAITING, {"p_ids": batch_ids}) if batch_ids else []
    return {r.batch_id: int(r.waiting) for r in rows}


def _waiting_statement() -> Any:
    from sqlalchemy import String, any_, bindparam
    from sqlalchemy.dialects.postgresql import ARRAY

    return (
        select(bc.c.batch_id, func.sum(_sum_of(WAITING_COLUMNS)).label("waiting"))
        .where(bc.c.batch_id == any_(bindparam("p_ids", type_=ARRAY(String))))
        .group_by(bc.c.batch_id)
    )


_WAITING = _waiting_statement()
