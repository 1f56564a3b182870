"""Read benchmark: GetBatch and a contacts page with 1,000,000 stored contacts.

    python bench/reads.py [--batches 100] [--per-batch 10000] [--samples 200]

Fills the embedded Postgres with --batches batches of --per-batch contacts
(generate_series, varied statuses and attempts), then times GetBatch and
ListContacts pages through gRPC (first page, a status filter, a search, a
page deep inside the batch) and prints p50/p99 per call.

The floor: GetOrganization, the cheapest authenticated RPC of the public API
(the API key lookup every RPC makes, then one organizations row by primary
key), timed the same way in the same run. The calls are timed round-robin
(one of each per round), so a neighbour's load on a shared machine falls on
all of them alike, and each read prints its ratio to the floor: what the
query costs over what any authenticated RPC costs. Targets (issue
"Headroom"): p99 <= 5 ms for GetBatch and the contacts pages, <= 20 ms for
the phone search.

    --explain   also prints, per read, the SQL the server issued for one
                call (round trips per RPC) with EXPLAIN (ANALYZE, BUFFERS),
                the generic plan, and whether Postgres keeps that plan once
                psycopg has prepared the statement or plans every call
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import embedded_stack  # noqa: E402 - after the path is set


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, default=100)
    ap.add_argument("--per-batch", type=int, default=10_000)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the SQL of one call of each read")
    args = ap.parse_args()

    from sqlalchemy import create_engine, text

    from batchcalls.v1 import batch_service_pb2 as pb, organization_service_pb2 as org_pb, resources_pb2 as res
    from batchcalls.v1 import organization_service_pb2_grpc as org_grpc
    from server.adapters.db.engine import normalize_url
    from tests.support.api import create_request, stub

    with embedded_stack("bench-reads-") as stack:
        org = stack.new_org()
        with stack.channel() as ch:
            template = stub(ch).CreateBatch(create_request(org), metadata=org.md()).batch
            stub(ch).CancelBatch(pb.CancelBatchRequest(name=template.name), metadata=org.md())
        engine = create_engine(normalize_url(stack.database_url))
        t0 = time.perf_counter()
        statuses = "ARRAY['completed','failed','queued','pending','no_answer','completed','invalid_number','completed']"
        with engine.begin() as conn:
            ids = []
            for i in range(args.batches):
                bid = f"batch_{uuid.uuid4().hex[:16]}"
                ids.append(bid)
                conn.execute(text(
                    "INSERT INTO batches (id, org_id, display_name, status, agent_id, from_number_id, concurrency_limit,"
                    " max_attempts, total_contacts)"
                    " SELECT :id, org_id, 'bench ' || :i, 'completed', agent_id, from_number_id, 5, 3, :n"
                    " FROM batches WHERE id = :tpl"), {"id": bid, "i": i, "n": args.per_batch, "tpl": template.batch_id})
                conn.execute(text(
                    "INSERT INTO batch_counters (batch_id, shard, n_completed, n_failed, n_queued, n_pending)"
                    " SELECT :id, s, CASE WHEN s = 0 THEN :n / 2 ELSE 0 END, CASE WHEN s = 0 THEN :n / 4 ELSE 0 END,"
                    " CASE WHEN s = 0 THEN :n / 8 ELSE 0 END, CASE WHEN s = 0 THEN :n / 8 ELSE 0 END"
                    " FROM generate_series(0, 7) s"), {"id": bid, "n": args.per_batch})
                conn.execute(text(
                    "INSERT INTO contacts (batch_id, org_id, row_number, phone, name, status, attempts, max_attempts, last_attempt_at)"
                    f" SELECT :id, :org, g + 1, '+1415' || lpad((5000000 + g)::text, 7, '0'), 'Customer ' || g,"
                    f" ({statuses})[1 + g % 8], g % 4, 3, now() - (g || ' seconds')::interval"
                    " FROM generate_series(1, :n) g"), {"id": bid, "org": org.org_id, "n": args.per_batch})
            conn.execute(text("ANALYZE contacts"))
        total = args.batches * args.per_batch
        print(f"stored {total:,} contacts in {args.batches} batches ({time.perf_counter() - t0:.1f} s)")
        target = ids[len(ids) // 2]
        name = f"batches/{target}"
        with stack.channel() as ch:
            s = stub(ch)
            md = org.md()
            second = s.ListContacts(pb.ListContactsRequest(parent=name, page_size=100), metadata=md)
            token = second.next_page_token
            for _ in range(40):  # a page deep in the batch
                token = s.ListContacts(pb.ListContactsRequest(parent=name, page_size=100, page_token=token), metadata=md).next_page_token
            orgs = org_grpc.OrganizationServiceStub(ch)
            floor_label = "floor: GetOrganization (auth + 1 row)"
            cases = {
                floor_label: lambda: orgs.GetOrganization(org_pb.GetOrganizationRequest(), metadata=md),
                "GetBatch": lambda: s.GetBatch(pb.GetBatchRequest(name=name), metadata=md),
                "ListContacts first page (50)": lambda: s.ListContacts(pb.ListContactsRequest(parent=name), metadata=md),
                "ListContacts status=QUEUED (50)": lambda: s.ListContacts(
                    pb.ListContactsRequest(parent=name, statuses=[res.CONTACT_STATUS_QUEUED]), metadata=md),
                "ListContacts deep page (100)": lambda: s.ListContacts(
                    pb.ListContactsRequest(parent=name, page_size=100, page_token=token), metadata=md),
                "ListContacts search phone (50)": lambda: s.ListContacts(
                    pb.ListContactsRequest(parent=name, search="555123"), metadata=md),
            }
            targets = {label: 5.0 for label in cases if label != floor_label}
            targets["ListContacts search phone (50)"] = 20.0
            if args.explain:
                explain(engine, stack, cases)
            for call in cases.values():
                for _ in range(10):
                    call()
            times: dict[str, list[float]] = {label: [] for label in cases}
            for _ in range(args.samples):  # round-robin: one of each per round
                for label, call in cases.items():
                    t = time.perf_counter()
                    call()
                    times[label].append((time.perf_counter() - t) * 1000)
            floor50, floor99 = statistics.median(times[floor_label]), pct(times[floor_label], 0.99)
            print(f"{floor_label}: p50={floor50:.2f} ms p99={floor99:.2f} ms (contacts stored={total:,})")
            for label, ts in times.items():
                if label == floor_label:
                    continue
                p50, p99 = statistics.median(ts), pct(ts, 0.99)
                verdict = "ok" if p99 <= targets[label] else "OVER"
                print(f"{label}: p50={p50:.2f} ms p99={p99:.2f} ms | x floor: p50 {p50 / floor50:.1f} p99 {p99 / floor99:.1f}"
                      f" | target p99 <= {targets[label]:g} ms: {verdict} (contacts stored={total:,})")
        engine.dispose()
    return 0


def explain(engine, stack, cases) -> None:  # type: ignore[no-untyped-def]
    """Captures the statements the server issues for one call of each case
    (all engines of this process: the server runs in it) and prints them
    with their EXPLAIN (ANALYZE, BUFFERS), then the round trips per call."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    seen: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        seen.append((statement, parameters))

    for call in cases.values():
        call()  # warm: connections, compiled statement caches
    for label, call in cases.items():
        seen.clear()
        event.listen(Engine, "before_cursor_execute", capture)
        try:
            call()
        finally:
            event.remove(Engine, "before_cursor_execute", capture)
        print(f"=== {label}: {len(seen)} statement(s)")
        for statement, parameters in seen:
            print(" ".join(statement.split()))
            if not statement.lstrip().upper().startswith("SELECT"):
                continue
            with engine.connect() as conn:
                plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters).all()
                generic = generic_plan(conn, statement, parameters)
                custom = generic_plan(conn, statement, parameters, mode="force_custom_plan")
            for (line,) in plan:
                print("    " + line)
            # psycopg prepares a statement run 5 times; Postgres may then
            # plan it once for any values: the plan the server runs later.
            print("    generic plan: " + " | ".join(line.strip() for line in generic if "Scan" in line or "Sort" in line))
            print("    " + plan_cache_verdict(custom, generic))


def plan_cache_verdict(custom: list[str], generic: list[str]) -> str:
    """Whether Postgres keeps the generic plan of the prepared statement.
    After 5 custom plans it keeps the generic one only if that costs less
    than their average, which counts an allowance for planning (1000 x
    cpu_operator_cost x (relations + 1), a few units); otherwise it plans
    the statement again on every call (its Planning Time above, each time).
    A bound value the estimates read (``status = $1``) makes the two differ."""
    import re

    def total(lines: list[str]) -> float:
        m = re.search(r"cost=[0-9.]+\.\.([0-9.]+)", lines[0]) if lines else None
        return float(m.group(1)) if m else float("nan")

    c, g = total(custom), total(generic)
    allowance = 1000 * 0.0025 * 2  # the smallest: one relation, the default cpu_operator_cost
    verdict = "generic plan kept (planned once)" if g < c + allowance else "PLANNED ON EVERY CALL"
    return f"plan cache: custom cost {c:.2f}, generic cost {g:.2f}: {verdict}"


def generic_plan(conn, statement: str, parameters, mode: str = "force_generic_plan") -> list[str]:  # type: ignore[no-untyped-def]
    """EXPLAIN of ``statement`` as a prepared statement planned for any
    values (plan_cache_mode = force_generic_plan), or for the values given
    (``mode`` = force_custom_plan)."""
    import re

    from psycopg import sql

    names: list[str] = []

    def number(m: re.Match) -> str:  # type: ignore[type-arg]
        if m.group(1) not in names:  # psycopg numbers a name once, as here
            names.append(m.group(1))
        return f"${names.index(m.group(1)) + 1}"

    text_ = re.sub(r"%\((\w+)\)s", number, statement)
    raw = conn.connection.driver_connection
    literals = sql.SQL(", ").join(sql.Literal(parameters[n]) for n in names).as_string(raw)
    conn.exec_driver_sql(f"SET plan_cache_mode = {mode}")
    conn.exec_driver_sql("PREPARE bench_generic AS " + text_.replace("%%", "%"))
    try:
        return [r[0] for r in conn.exec_driver_sql(f"EXPLAIN EXECUTE bench_generic({literals})".replace("%", "%%")).all()]
    finally:
        conn.exec_driver_sql("DEALLOCATE bench_generic")
        conn.exec_driver_sql("RESET plan_cache_mode")


if __name__ == "__main__":
    raise SystemExit(main())
