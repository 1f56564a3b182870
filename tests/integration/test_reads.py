"""The read path (docs/capacity.md, "Reads"): contact pages are keyset pages
of one batch in id order whichever neighbours the batch has, totals come
from counters or are counted only when needed, GetBatch's histogram sums
equal the ``bc_jsonb_sum`` aggregate, and a read costs few statements."""

from __future__ import annotations

import asyncio
import json
import random
import time

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


def test_a_contacts_page_is_two_statements(stack, three):  # type: ignore[no-untyped-def]
    """The key lookup, then the batch with its total joined to the page: no
    COUNT when the counters know the total, on autocommit connections (no
    BEGIN or ROLLBACK round trips, which do not show here)."""
    org, batch = three
    seen: list[tuple[object, str]] = []

    def count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        # The listener runs inside the asyncio task that issued the statement
        # (SQLAlchemy's greenlet runs within that task's step).
        seen.append((asyncio.current_task(), statement))

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
    # The server's background duties (scheduler, reconciler) share the engine
    # and may run statements inside the window, in tasks of their own: the
    # RPC's statements are those of the task that read its contacts page.
    rpc_task = next(task for task, statement in seen if "FROM contacts" in statement)
    own = [statement for task, statement in seen if task is rpc_task]
    assert len(own) == 2, own
    assert not any("count(" in s.lower() for s in own)


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


BIG = 3000  # contacts of the large batch: a page is a small share of it


@pytest.fixture(scope="module")
def big(stack):  # type: ignore[no-untyped-def]
    """A cancelled batch of BIG contacts with every field varied (variables,
    timezones, times, outcomes, consent, texts) and counters that add up."""
    from server.domain.contact_rules import COUNTER_COLUMNS

    org = stack.new_org()
    batch = create_batch(stack, org, _csv(8000, 3))
    with stack.channel() as ch:
        bgrpc.BatchServiceStub(ch).CancelBatch(bpb.CancelBatchRequest(name=batch.name), metadata=org.md())
    statuses = "ARRAY['completed','failed','queued','pending','no_answer','completed','invalid_number','cancelled']"

    async def fill():  # type: ignore[no-untyped-def]
        async with stack.ctx.engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO contacts (batch_id, org_id, row_number, phone, name, email, variables, status, attempts,"
                " max_attempts, last_outcome, failure_reason, wait_reason, last_attempt_at, next_attempt_at,"
                " call_started_at, call_ended_at, duration_seconds, recording_uri, transcript, cost_micros,"
                " timezones, tz_fallback, consent_at, consent_source)"
                " SELECT :b, :org, g + 4, '+1415' || lpad((3000000 + g)::text, 7, '0'),"
                " CASE WHEN g % 9 = 0 THEN '' ELSE 'Customer ' || g END,"
                " CASE WHEN g % 4 = 0 THEN 'c' || g || '@example.com' ELSE '' END,"
                " CASE WHEN g % 5 = 0 THEN jsonb_build_object('plan', 'gold', 'n', g, 'vip', g % 2 = 0,"
                "   'nested', jsonb_build_object('a', 1)) ELSE '{}'::jsonb END,"
                f" ({statuses})[1 + g % 8], g % 4, 3,"
                " CASE WHEN g % 6 = 0 THEN 'no_answer' WHEN g % 6 = 1 THEN 'completed' ELSE '' END,"
                " CASE WHEN g % 13 = 0 THEN 'permanently_failed' ELSE '' END,"
                " CASE WHEN g % 17 = 0 THEN 'outside calling window' ELSE '' END,"
                " CASE WHEN g % 3 = 0 THEN NULL"
                "   ELSE timestamptz '2024-03-10 01:59:59.123456-08' + make_interval(secs => g * 37.000001) END,"
                " CASE WHEN g % 7 = 0 THEN timestamptz '1969-12-31 23:59:58.5+00' - make_interval(days => g) END,"
                " CASE WHEN g % 10 = 0 THEN now() - make_interval(secs => g) END,"
                " CASE WHEN g % 10 = 0 THEN now() END,"
                " CASE WHEN g % 10 = 0 THEN g / 7.0 ELSE 0 END,"
                " CASE WHEN g % 11 = 0 THEN 's3://rec/' || g ELSE '' END,"
                " CASE WHEN g % 11 = 0 THEN repeat('words ', g % 50) ELSE '' END,"
                " (g % 5) * 1000,"
                " CASE WHEN g % 8 = 0 THEN ARRAY['America/New_York', 'America/Chicago'] ELSE '{}' END,"
                " g % 8 = 0,"
                " CASE WHEN g % 12 = 0 THEN timestamptz '2023-01-01 00:00:00+05:30' END,"
                " CASE WHEN g % 12 = 0 THEN 'web form' ELSE '' END"
                " FROM generate_series(1, :n) g"), {"b": batch.batch_id, "org": org.org_id, "n": BIG})
            counts = ", ".join(
                f"{c} = CASE WHEN shard = 0 THEN (SELECT count(*) FROM contacts"
                f" WHERE batch_id = :b AND status = '{c[2:]}') ELSE 0 END" for c in COUNTER_COLUMNS)
            await conn.execute(text(f"UPDATE batch_counters SET {counts} WHERE batch_id = :b"), {"b": batch.batch_id})
            await conn.execute(text("UPDATE batches SET total_contacts = (SELECT count(*) FROM contacts"
                                    " WHERE batch_id = :b) WHERE id = :b"), {"b": batch.batch_id})

    stack.run(fill())
    return org, batch


def _contacts_as_before(stack, batch_id: str, where: str = "", **params):  # type: ignore[no-untyped-def]
    """The batch's contacts in id order as ListContacts made them before its
    page became one statement of fewer columns: every column read with
    ``SELECT *`` and converted by ``convert.contact_msg``."""
    from server.api import convert

    async def read():  # type: ignore[no-untyped-def]
        async with stack.ctx.engine.connect() as conn:
            return (await conn.execute(text(f"SELECT * FROM contacts WHERE batch_id = :b {where} ORDER BY id"),
                                       {"b": batch_id, **params})).all()

    return [convert.contact_msg(r) for r in stack.run(read())]


def _paced(stub, org, **kw):  # type: ignore[no-untyped-def]
    """ListContacts within the API key's rate limit (50 a second, bursts of 100)."""
    while True:
        try:
            return stub.ListContacts(bpb.ListContactsRequest(**kw), metadata=org.md())
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise
            time.sleep(0.05)


def _paced_pages(stub, org, parent: str, **kw):  # type: ignore[no-untyped-def]
    token, pages = "", []
    while True:
        resp = _paced(stub, org, parent=parent, page_token=token, **kw)
        pages.append(resp)
        token = resp.next_page_token
        if not token:
            return pages


@pytest.mark.parametrize("size, statuses, search, min_attempts, where", [
    (100, (), "", None, ""),
    (25, (), "", None, ""),
    (50, ("QUEUED",), "", None, "AND status = 'queued'"),
    (100, ("FAILED", "COMPLETED", "FAILED"), "", None, "AND status IN ('failed', 'completed')"),
    (50, ("DIALING",), "", None, "AND status = 'dialing'"),
    (100, (), "4153001", None, "AND phone LIKE '%4153001%'"),
    (25, ("PENDING",), "", 2, "AND status = 'pending' AND attempts >= 2"),
])
def test_pages_are_the_contacts_as_before(stack, big, size, statuses, search, min_attempts, where):  # type: ignore[no-untyped-def]
    """Walking every page gives each contact once, in id order, the same
    message the full row gave, and total_size the count, whichever
    statement the filter takes (the counters', or a count)."""
    from batchcalls.v1 import resources_pb2 as res

    org, batch = big
    want = _contacts_as_before(stack, batch.batch_id, where)
    kw = {"statuses": [getattr(res, f"CONTACT_STATUS_{s}") for s in statuses], "search": search}
    if min_attempts is not None:
        kw["min_attempts"] = min_attempts
    with stack.channel() as ch:
        pages = _paced_pages(bgrpc.BatchServiceStub(ch), org, batch.name, page_size=size, **kw)
    got = [c for p in pages for c in p.contacts]
    assert len(got) == len(want) and got == want
    assert {p.total_size for p in pages} == {len(want)}
    assert all(len(p.contacts) == size for p in pages[:-1])
    if not where:  # every field was set on some contact, and left unset on some
        for field in ("display_name", "email", "variables", "last_outcome", "failure_reason", "wait_reason",
                      "last_attempt_time", "next_attempt_time", "call_start_time", "call_end_time",
                      "duration_seconds", "recording_uri", "transcript", "cost_micros", "timezones",
                      "timezone_fallback", "consent_time", "consent_source"):
            have = [c.HasField(field) if field.endswith("_time") else bool(getattr(c, field)) for c in got]
            assert any(have) and not all(have), field


def test_an_empty_page_and_someone_elses_batch(stack, big, three):  # type: ignore[no-untyped-def]
    """A filter nothing matches: no contacts, total_size 0, no token; the
    batch of another organization: NOT_FOUND, as before."""
    from batchcalls.v1 import resources_pb2 as res

    org, batch = big
    other_org, _ = three
    with stack.channel() as ch:
        stub = bgrpc.BatchServiceStub(ch)
        for kw in ({"statuses": [res.CONTACT_STATUS_CONNECTED]}, {"search": "no such contact"}):
            resp = _paced(stub, org, parent=batch.name, **kw)
            assert (list(resp.contacts), resp.total_size, resp.next_page_token) == ([], 0, "")
        with pytest.raises(grpc.RpcError) as err:
            _paced(stub, other_org, parent=batch.name)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND


#: The planner's estimates of bench/reads.py's database, on a small scale:
#: PLAN_BATCHES batches of PLAN_BATCH contacts, in tables of their own
#: (schema reads_plans), whatever the other tests left in the shared ones.
PLAN_BATCHES, PLAN_BATCH = 40, 2500
PAGES = 20  # psycopg prepares on the 6th run, Postgres plans 5 custom plans first


def test_contacts_page_statements_get_a_generic_plan(stack, three):  # type: ignore[no-untyped-def]
    """psycopg prepares a page's statement on its 6th run on a connection;
    Postgres keeps a generic plan only when it costs no more than the plans
    of the values given. The page's LIMIT and statuses are written in the
    statement (a bound LIMIT is estimated at a tenth of the rows in the
    generic plan, a bound status at any status's share): only the batch,
    organization and position are bound, and walking a batch page by page
    on one connection plans each statement once, not every page. (Where
    fewer rows than a page are estimated after the position, as in a batch
    much smaller than the others, the plan for the values costs less and
    Postgres plans it every call, as it planned every page before.)"""
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    from server.adapters.db.engine import normalize_url

    cases = ((25, ()), (100, ()), (25, ("completed",)), (25, ("failed", "queued")))
    for size, statuses in cases:
        compiled = batch_reads._page_of_statuses(size, statuses).compile(dialect=stack.ctx.engine.dialect)
        steering = {n for n in compiled.params if n not in ("p_batch_id", "p_org_id", "p_batch_ids", "p_after")
                    and not n.startswith("coalesce_")}
        assert not steering, (statuses, steering)
        assert f"LIMIT {size + 1}" in str(compiled)
        assert all(f"'{s}'" in str(compiled) for s in statuses)

    org, batch = three
    statuses_sql = "ARRAY['completed','failed','queued','pending','cancelled','completed','invalid_number','completed']"

    async def setup():  # type: ignore[no-untyped-def]
        async with stack.ctx.engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA IF EXISTS reads_plans CASCADE"))
            await conn.execute(text("CREATE SCHEMA reads_plans"))
            for table in ("batches", "batch_counters", "contacts"):
                await conn.execute(text(f"CREATE TABLE reads_plans.{table} (LIKE public.{table} INCLUDING ALL)"))
            await conn.execute(text(
                "INSERT INTO reads_plans.batches SELECT (jsonb_populate_record(b, jsonb_build_object("
                " 'id', 'plans_' || i, 'total_contacts', :n))).* FROM batches b, generate_series(1, :k) i"
                " WHERE b.id = :b"), {"b": batch.batch_id, "k": PLAN_BATCHES, "n": PLAN_BATCH})
            await conn.execute(text(
                "INSERT INTO reads_plans.contacts (batch_id, org_id, row_number, phone, status, attempts, max_attempts)"
                " SELECT 'plans_' || (1 + g / :n), :org, 1 + g % :n, '+1415' || lpad(g::text, 7, '0'),"
                f" ({statuses_sql})[1 + g % 8], g % 4, 3 FROM generate_series(0, CAST(:last AS integer)) g"),
                {"org": org.org_id, "n": PLAN_BATCH, "last": PLAN_BATCHES * PLAN_BATCH - 1})
            await conn.execute(text("ANALYZE reads_plans.contacts"))

    async def walk():  # type: ignore[no-untyped-def]
        engine = create_async_engine(normalize_url(stack.database_url), poolclass=NullPool,
                                     connect_args={"options": "-c search_path=reads_plans"})
        try:
            return await _walk_and_plans(engine, org.org_id, f"plans_{PLAN_BATCHES // 2}", cases)
        finally:
            await engine.dispose()
            async with stack.ctx.engine.begin() as conn:
                await conn.execute(text("DROP SCHEMA reads_plans CASCADE"))

    stack.run(setup())
    for (size, statuses), found in zip(cases, stack.run(walk())):
        assert len(found) == 1 and found[0].generic_plans >= 1, (size, statuses, found)


async def _walk_and_plans(engine, org_id: str, batch_id: str, cases):  # type: ignore[no-untyped-def]
    """Walks the batch's first PAGES pages of each (size, statuses) on one
    connection; each statement's (generic_plans, custom_plans) rows."""
    plans = []
    async with engine.connect() as conn:
        for size, statuses in cases:
            stmt = batch_reads._page_of_statuses(size, statuses)
            after, seen = 0, []
            for _ in range(PAGES):
                rows = (await conn.execute(stmt, {"p_batch_id": batch_id, "p_org_id": org_id,
                                                  "p_batch_ids": [batch_id], "p_after": after})).all()
                assert len(rows) == size + 1 and {r.batch_id for r in rows} == {batch_id}
                assert {r.status for r in rows} <= set(statuses or {r.status for r in rows})
                seen += [r.id for r in rows[:size]]
                after = rows[size - 1].id
            assert seen == sorted(set(seen)) and len(seen) == PAGES * size
            status = "IN (" + ", ".join(f"'{s}'" for s in statuses) + ")" if statuses else "LIMIT"
            plans.append((await conn.execute(text(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
                " WHERE statement LIKE '%AS page ON true%' AND statement LIKE :limit"
                " AND statement LIKE :status AND (:any OR statement NOT LIKE '%contacts.status IN%')"),
                {"limit": f"%LIMIT {size + 1})%", "status": f"%{status}%", "any": bool(statuses)})).all())
    return plans
