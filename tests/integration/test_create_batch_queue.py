"""CreateBatch fills the new batch's ready queue while Postgres copies the
contacts (server/service/batches.py, _QueueFill): the queue a running batch
ends up with is exactly its PENDING contacts, due at creation; a batch that
does not start (held, scheduled) has none; a failed fill falls back to the
activation's own ZADDs; the contact ids come from one sequence statement
whether or not they are contiguous (server/adapters/db/contacts_copy.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from batchcalls.v1 import resources_pb2 as res
from google.protobuf.timestamp_pb2 import Timestamp

from contract import keys
from server.adapters.db.contacts_copy import _IDS, _ids
from server.domain.clock import FakeClock
from tests.support.clocked_stack import add_dnc, clocked_stack, create_batch, query, utc

NUMBERS = ["+12125550143", "+13105550199", "+14155552671", "+16175550123", "+17185550145"]


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock(utc(2025, 3, 12, 15))


@pytest.fixture(scope="module")
def cs(embedded, clock):  # type: ignore[no-untyped-def]
    with clocked_stack(embedded, clock) as s:
        yield s


def _redis(cs, coro_fn):  # type: ignore[no-untyped-def]
    return cs.run(coro_fn(cs.ctx.redis_state.redis))


def _queue(cs, org_id: str, batch_id: str) -> dict[str, float]:  # type: ignore[no-untyped-def]
    async def read(r):  # type: ignore[no-untyped-def]
        return {m.decode(): s for m, s in await r.zrange(keys.batch_ready(org_id, batch_id), 0, -1, withscores=True)}

    return _redis(cs, read)


def _exists(cs, *names: str) -> int:  # type: ignore[no-untyped-def]
    async def read(r):  # type: ignore[no-untyped-def]
        return await r.exists(*names)

    return _redis(cs, read)


def _pending_ids(cs, batch_id: str) -> set[str]:  # type: ignore[no-untyped-def]
    rows = query(cs, "SELECT id FROM contacts WHERE batch_id = :b AND status = 'pending'", b=batch_id)
    return {str(r.id) for r in rows}


def test_running_batch_queue_is_its_pending_contacts_due_at_creation(cs, clock) -> None:  # type: ignore[no-untyped-def]
    org = cs.new_org()
    add_dnc(cs, org, [NUMBERS[1]])  # suppressed: stored, never queued
    batch = create_batch(cs, org, NUMBERS).batch
    assert batch.status == res.BATCH_STATUS_RUNNING
    pending = _pending_ids(cs, batch.batch_id)
    assert len(pending) == len(NUMBERS) - 1
    queue = _queue(cs, org.org_id, batch.batch_id)
    assert set(queue) == pending
    assert set(queue.values()) == {round(clock.now().timestamp() * 1000)}
    assert _exists(cs, keys.batch_meta(org.org_id, batch.batch_id)) == 1


def test_held_batch_has_no_queue(cs) -> None:  # type: ignore[no-untyped-def]
    org = cs.new_org(credits_usd=0)  # no credits: held PENDING, not started
    batch = create_batch(cs, org, NUMBERS).batch
    assert batch.status == res.BATCH_STATUS_PENDING
    assert _exists(cs, keys.batch_ready(org.org_id, batch.batch_id), keys.batch_meta(org.org_id, batch.batch_id)) == 0


def test_scheduled_batch_has_no_queue(cs, clock) -> None:  # type: ignore[no-untyped-def]
    org = cs.new_org()
    when = Timestamp()
    when.FromDatetime(clock.now() + timedelta(days=1))
    batch = create_batch(cs, org, NUMBERS, scheduled_start_time=when).batch
    assert batch.status == res.BATCH_STATUS_SCHEDULED
    assert _exists(cs, keys.batch_ready(org.org_id, batch.batch_id)) == 0


def test_failed_fill_falls_back_to_the_activation(cs, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    async def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise ConnectionError("redis went away")

    monkeypatch.setattr(cs.ctx.redis_state, "fill_ready", broken)
    org = cs.new_org()
    batch = create_batch(cs, org, NUMBERS).batch
    assert batch.status == res.BATCH_STATUS_RUNNING
    assert set(_queue(cs, org.org_id, batch.batch_id)) == _pending_ids(cs, batch.batch_id)


def test_discard_keeps_the_queue_of_an_activated_batch(cs) -> None:  # type: ignore[no-untyped-def]
    org = cs.new_org()
    batch = create_batch(cs, org, NUMBERS).batch
    state = cs.ctx.redis_state
    assert cs.run(state.discard_ready_if_inactive(org.org_id, batch.batch_id)) is False
    assert len(_queue(cs, org.org_id, batch.batch_id)) == len(NUMBERS)
    # No meta (never activated): the queue goes.
    cs.run(state.fill_ready(org.org_id, "batch_never_started", [1, 2, 3], 1.0))
    assert cs.run(state.discard_ready_if_inactive(org.org_id, "batch_never_started")) is True
    assert _exists(cs, keys.batch_ready(org.org_id, "batch_never_started")) == 0


@pytest.mark.parametrize("increment", [1, 3])
def test_ids_statement_contiguous_or_listed(cs, increment: int) -> None:  # type: ignore[no-untyped-def]
    """The bounds alone when the ids are one run, the sorted ids otherwise."""
    sql = _IDS.replace("contacts_id_seq", f"ids_probe_{increment}")

    async def take():  # type: ignore[no-untyped-def]
        async with cs.ctx.engine.connect() as conn:
            pg = (await conn.get_raw_connection()).driver_connection
            async with pg.cursor() as cur:
                await cur.execute(f"CREATE TEMP SEQUENCE ids_probe_{increment} INCREMENT {increment} START 10")
                await cur.execute(sql, (5,))
                row = await cur.fetchone()
            await conn.rollback()
            return row

    lo, hi, listed = cs.run(take())
    expected = [10 + increment * i for i in range(5)]
    assert (lo, hi) == (expected[0], expected[-1])
    assert (listed is None) == (increment == 1)
    assert list(_ids(lo, hi, listed)) == expected
