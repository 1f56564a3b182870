"""Read benchmark: GetBatch and a contacts page with 1,000,000 stored contacts.

    python bench/reads.py [--batches 100] [--per-batch 10000] [--samples 200]

Fills the embedded Postgres with --batches batches of --per-batch contacts
(generate_series, varied statuses and attempts), then times GetBatch and
ListContacts pages through gRPC (first page, a status filter, a search, a
page deep inside the batch) and prints p50/p99 per call. Target: a few ms.
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
    args = ap.parse_args()

    from sqlalchemy import create_engine, text

    from batchcalls.v1 import batch_service_pb2 as pb, resources_pb2 as res
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
            cases = {
                "GetBatch": lambda: s.GetBatch(pb.GetBatchRequest(name=name), metadata=md),
                "ListContacts first page (50)": lambda: s.ListContacts(pb.ListContactsRequest(parent=name), metadata=md),
                "ListContacts status=QUEUED (50)": lambda: s.ListContacts(
                    pb.ListContactsRequest(parent=name, statuses=[res.CONTACT_STATUS_QUEUED]), metadata=md),
                "ListContacts deep page (100)": lambda: s.ListContacts(
                    pb.ListContactsRequest(parent=name, page_size=100, page_token=token), metadata=md),
                "ListContacts search phone (50)": lambda: s.ListContacts(
                    pb.ListContactsRequest(parent=name, search="555123"), metadata=md),
            }
            for label, call in cases.items():
                for _ in range(10):
                    call()
                times = []
                for _ in range(args.samples):
                    t = time.perf_counter()
                    call()
                    times.append((time.perf_counter() - t) * 1000)
                print(f"{label}: p50={statistics.median(times):.2f} ms p99={pct(times, 0.99):.2f} ms "
                      f"(contacts stored={total:,})")
        engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
