"""The read path (docs/capacity.md, "Reads"): contact pages are keyset pages
of one batch in id order whichever neighbours the batch has, totals come
from counters or are counted only when needed, GetBatch's histogram sums
equal the ``bc_jsonb_sum`` aggregate, and a read costs few statements."""

from __future__ import annotations

import json
import random

import grpc
import pytest
from sqlalchemy import event, text

from batchcalls.v1 import batch_service_pb2 as bpb, batch_service_pb2_grpc as bgrpc
from server.domain.auth import Principal, Role
from server.service import batches as batch_reads
from tests.support.drive import create_batch

N = 130  # a batch of 130 contacts: 6 pages of 25, the last of 5


def _csv(base: int, n: int = N) -> str:
    return "name,phone\n" + "".join(f"{'Zed' if i % 40 == 7 else 'Person'} {i},+1415555{base + i:04d}\n"
                                    for i in range(n))


@pytest.fixture(scope="module")
def three(stack):  # type: ignore[no-untyped-def]
    """An organization with three batches; the tests read the middle one."""
    org = stack.new_org()
    made = [create_batch(stack, org, _csv(1000 + 200 * k)) for k in range(3)]
    with stack.channel() as ch:
        for b in made:
            bgrpc.BatchServiceStub(ch).CancelBatch(bpb.CancelBatchRequest(name=b.name), metadata=org.md())
    return org, made[1]


def _pages(stub, org, parent: str, **kw):  # type: ignore[no-untyped-def]
    token, pages = "", []
    while True:
        resp = stub.ListContacts(bpb.ListContactsRequest(parent=parent, page_token=token, **kw), metadata=org.md())
        pages.append(resp)
        token = resp.next_page_token
        if not token:
            return pages


def test_pages_walk_the_middle_batch_once_in_order(stack, three):  # type: ignore[no-untyped-def]
    org, batch = three
    with stack.channel() as ch:
        pages = _pages(bgrpc.BatchServiceStub(ch), org, batch.name, page_size=25)
    ids = [int(c.contact_id) for p in pages for c in p.contacts]
    assert [len(p.contacts) for p in pages] == [25] * 5 + [5]
    assert ids == sorted(ids) and len(set(ids)) == N
    assert {c.name.split("/contacts/")[0] for p in pages for c in p.contacts} == {batch.name}
    assert {p.total_size for p in pages} == {N}


def test_search_totals_counted_or_taken_from_the_page(stack, three):  # type: ignore[no-untyped-def]
    org, batch = three
    with stack.channel() as ch:
        stub = bgrpc.BatchServiceStub(ch)
        none = _pages(stub, org, batch.name, search="no such name")
        assert len(none) == 1 and not none[0].contacts and none[0].total_size == 0
        few = _pages(stub, org, batch.name, search="zed")  # rows 7, 47, 87, 127: one page, not counted
        assert [c.display_name for c in few[0].contacts] == ["Zed 7", "Zed 47", "Zed 87", "Zed 127"]
        assert few[0].total_size == 4
        many = _pages(stub, org, batch.name, search="person", page_size=25)  # more than a page: counted
        assert {p.total_size for p in many} == {N - 4}
        assert sum(len(p.contacts) for p in many) == N - 4
        # A phone as people type it: the middle batch's numbers are +14155551200 + i.
        typed = _pages(stub, org, batch.name, search="555-1210")
        assert [c.phone_number for c in typed[0].contacts] == ["+14155551210"] and typed[0].total_size == 1


def test_page_tokens_stay_bound_to_their_filters(stack, three):  # type: ignore[no-untyped-def]
    org, batch = three
    with stack.channel() as ch:
        stub = bgrpc.BatchServiceStub(ch)
        token = stub.ListContacts(bpb.ListContactsRequest(parent=batch.name, page_size=25),
                                  metadata=org.md()).next_page_token
        for req in (bpb.ListContactsRequest(parent=batch.name, page_size=25, page_token=token, search="person"),
                    bpb.ListContactsRequest(parent=batch.name, page_size=25, page_token=token[:-2] + "AA")):
            with pytest.raises(grpc.RpcError) as err:
                stub.ListContacts(req, metadata=org.md())
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_batch_histograms_equal_the_aggregate(stack, three):  # type: ignore[no-untyped-def]
    org, batch = three
    rnd = random.Random(7)

    async def fill_and_read():  # type: ignore[no-untyped-def]
        async with stack.ctx.engine.begin() as conn:
            for shard in range(8):
                hist = {str(k): rnd.randint(0, 50) for k in range(1, 4) if rnd.random() < 0.7}
                outcomes = {f"{k}:{o}": rnd.randint(0, 9) for k in range(1, 3) for o in ("busy", "no_answer")
                            if rnd.random() < 0.5}
                await conn.execute(
                    text("UPDATE batch_counters SET attempt_histogram = CAST(:h AS jsonb),"
                         " outcomes_by_attempt = CAST(:o AS jsonb) WHERE batch_id = :b AND shard = :s"),
                    {"h": json.dumps(hist), "o": json.dumps(outcomes), "b": batch.batch_id, "s": shard},
                )
            want = (await conn.execute(
                text("SELECT bc_jsonb_sum(attempt_histogram), bc_jsonb_sum(outcomes_by_attempt)"
                     " FROM batch_counters WHERE batch_id = :b"), {"b": batch.batch_id})).one()
        p = Principal(org_id=org.org_id, role=Role.OWNER, key_id="k")
        row = await batch_reads.get_batch(stack.ctx, p, batch.batch_id)
        return tuple(want), (row.attempt_histogram, row.outcomes_by_attempt)

    want, got = stack.run(fill_and_read())
    assert got == want and want[0]


def test_a_contacts_page_is_three_statements(stack, three):  # type: ignore[no-untyped-def]
    """The key lookup, the batch with its counters, the page: no COUNT when
    the counters know the total, on autocommit connections (no BEGIN or
    ROLLBACK round trips, which do not show here)."""
    org, batch = three
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        seen.append(statement)

    engine = stack.ctx.engine.sync_engine
    with stack.channel() as ch:
        stub = bgrpc.BatchServiceStub(ch)
        req = bpb.ListContactsRequest(parent=batch.name, page_size=25)
        stub.ListContacts(req, metadata=org.md())  # key's last_used_at written, if due
        event.listen(engine, "before_cursor_execute", count)
        try:
            stub.ListContacts(req, metadata=org.md())
        finally:
            event.remove(engine, "before_cursor_execute", count)
    assert len(seen) == 3, seen
    assert not any("count(" in s.lower() for s in seen)


def _queued_batch(stack):  # type: ignore[no-untyped-def]
    """A running batch of 12 contacts, 9 of them queued: due in three
    different minutes, 4 waiting for their window, 5 retries."""
    org = stack.new_org()
    batch = create_batch(stack, org, _csv(6000, 12))

    async def setup():  # type: ignore[no-untyped-def]
        async with stack.ctx.engine.begin() as conn:
            ids = (await conn.execute(text("SELECT id FROM contacts WHERE batch_id = :b ORDER BY id"),
                                      {"b": batch.batch_id})).scalars().all()
            for i, cid in enumerate(ids[:9]):
                await conn.execute(
                    text("UPDATE contacts SET status = 'queued', attempts = :a, wait_reason = :w,"
                         " next_attempt_at = date_trunc('minute', now()) + make_interval(mins => :m, secs => :s)"
                         " WHERE id = :id"),
                    {"a": 1 if i % 2 else 0, "w": "outside calling window" if i % 3 == 0 else "",
                     "m": 5 + i % 3, "s": 7 * i, "id": cid})
            await conn.execute(text("UPDATE batch_counters SET n_pending = CASE WHEN shard = 0 THEN 3 ELSE 0 END,"
                                    " n_queued = CASE WHEN shard = 0 THEN 9 ELSE 0 END WHERE batch_id = :b"),
                               {"b": batch.batch_id})
            await conn.execute(text("UPDATE batches SET status = 'running' WHERE id = :b"), {"b": batch.batch_id})

    stack.run(setup())
    return org, batch


def test_get_batch_queued_figures_equal_the_separate_query(stack):  # type: ignore[no-untyped-def]
    """GetBatch's one statement (the batch view joined with the queued
    summary) returns what the summary's own query returns, and what a
    direct count says: due minutes, waiting for window, retries."""
    from server.service import analytics

    org, batch = _queued_batch(stack)
    p = Principal(org_id=org.org_id, role=Role.OWNER, key_id="k")

    async def read():  # type: ignore[no-untyped-def]
        joined, figures = await batch_reads.get_batch_with_figures(stack.ctx, p, batch.batch_id)
        now = stack.ctx.clock.now()
        separate = await analytics.queued_summary(stack.ctx, batch.batch_id)
        async with stack.ctx.engine.connect() as conn:
            want = (await conn.execute(text(
                "SELECT array_agg(date_trunc('minute', next_attempt_at) ORDER BY next_attempt_at),"
                " count(*) FILTER (WHERE wait_reason = 'outside calling window'), count(*) FILTER (WHERE attempts > 0)"
                " FROM contacts WHERE batch_id = :b AND status = 'queued'"), {"b": batch.batch_id})).one()
        return analytics.queued_from_row(joined, now), separate, figures, want

    (due, window, retries), (s_due, s_window, s_retries), figures, want = stack.run(read())
    assert sorted(due) == sorted(s_due) == list(want[0]) and len(due) == 9 and len(set(due)) == 3
    assert (window, retries) == (s_window, s_retries) == (want[1], want[2]) == (3, 4)
    assert (figures["waiting_for_window"], figures["retries_pending"]) == (3, 4)
    assert figures["eta"] is not None and figures["eta"] >= max(due)
    with stack.channel() as ch:
        b = bgrpc.BatchServiceStub(ch).GetBatch(bpb.GetBatchRequest(name=batch.name), metadata=org.md()).batch
    assert (b.stats.queued, b.stats.waiting_for_window, b.stats.retries_pending) == (9, 3, 4)


def test_get_batch_statement_gets_a_generic_plan(stack, three):  # type: ignore[no-untyped-def]
    """psycopg prepares GetBatch's statement on its 6th run on a connection;
    Postgres then plans it 5 times for the values given and keeps a generic
    plan only when that plan costs no more. Every value that moves an
    estimate is a literal of the statement (the queued status), so the
    generic plan is the custom one and wins: without it each GetBatch
    planned its statement anew (0.6 ms, more than its execution)."""
    org, batch = three
    compiled = batch_reads._BATCH_WITH_QUEUED_BY_ID.compile(dialect=stack.ctx.engine.dialect)
    # Bound: the batch and organization ids, and constants no estimate reads
    # (the coalesce defaults); the queued status is written in the statement.
    steering = {n for n in compiled.params if n not in ("p_batch_id", "p_org_id")
                and not n.startswith(("coalesce_", "param_"))}
    assert not steering, steering
    assert "contacts.status = 'queued'" in str(compiled)

    async def run():  # type: ignore[no-untyped-def]
        async with stack.ctx.engine.connect() as conn:
            for _ in range(14):
                row = (await conn.execute(batch_reads._BATCH_WITH_QUEUED_BY_ID,
                                          {"p_batch_id": batch.batch_id, "p_org_id": org.org_id})).one()
                assert row.id == batch.batch_id
            return (await conn.execute(text(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
                " WHERE statement LIKE '%queued_by_minute%'"))).all()

    plans = stack.run(run())
    assert len(plans) == 1 and plans[0].generic_plans >= 1, plans
