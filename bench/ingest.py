"""Ingest benchmark: a 10,000-row CSV through ValidateContacts + CreateBatch
on a running server (embedded Postgres and Redis), against the floor: the
bare cost of parsing and validating the same 10,000 numbers with
phonenumbers in this process.

    python bench/ingest.py [--rows 10000] [--runs 3]

Prints the wall times and ratio=<total/floor> (target <= 1.5, goal 1.2;
issue 17 item 5).
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import embedded_stack  # noqa: E402 - after the path is set

import phonenumbers  # noqa: E402


def make_numbers(n: int) -> list[str]:
    out, i = [], 0
    while len(out) < n:
        candidate = f"+1{[212, 415, 646, 718, 310, 617][i % 6]}{2000000 + i * 7 % 7999999:07d}"
        i += 1
        if phonenumbers.is_valid_number(phonenumbers.parse(candidate)):
            out.append(candidate)
    return out


def floor_seconds(numbers: list[str]) -> float:
    t = time.perf_counter()
    for n in numbers:
        phonenumbers.is_valid_number(phonenumbers.parse(n, None))
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()


    from batchcalls.v1 import batch_service_pb2 as pb
    from tests.support.api import stub

    numbers = make_numbers(args.rows)
    csv = ("phone,name,email,plan\n" + "".join(
        f"{n},Customer {i},c{i}@example.com,gold\n" for i, n in enumerate(numbers))).encode()
    with embedded_stack("bench-ingest-") as stack:
        org = stack.new_org(concurrency_limit=10)
        totals, validates, creates, floors = [], [], [], []
        with stack.channel() as ch:
            s = stub(ch)
            # warm-up: worker processes (a file past the runner's in-process
            # threshold of 2,000 rows starts them), connections
            s.ValidateContacts(pb.ValidateContactsRequest(csv_content=csv[:200000].rsplit(b"\n", 1)[0] + b"\n",
                                                          filename="w.csv"), metadata=org.md())
            for run in range(args.runs):
                body = csv.replace(b"gold", f"g{run}".encode())  # a new file each run: no cache across runs
                t0 = time.perf_counter()
                rep = s.ValidateContacts(pb.ValidateContactsRequest(csv_content=body, filename="c.csv"), metadata=org.md())
                t1 = time.perf_counter()
                created = s.CreateBatch(pb.CreateBatchRequest(
                    request_id=str(uuid.uuid4()), display_name=f"bench {run}", agent=org.agent_name,
                    from_phone_number=org.phone_number_name, csv_content=body, filename="c.csv",
                ), metadata=org.md())
                t2 = time.perf_counter()
                assert rep.report.valid_rows == args.rows and created.batch.stats.total_contacts == args.rows
                validates.append(t1 - t0)
                creates.append(t2 - t1)
                totals.append(t2 - t0)
                floors.append(floor_seconds(numbers))
        best = min(range(args.runs), key=lambda i: totals[i])
        total, floor = totals[best], min(floors)
        print(f"rows={args.rows} validate={validates[best]*1000:.0f} ms create={creates[best]*1000:.0f} ms "
              f"total={total*1000:.0f} ms")
        print(f"floor (phonenumbers parse+validate of {args.rows} numbers)={floor*1000:.0f} ms")
        print(f"ratio={total/floor:.2f} (target <= 1.5, goal 1.2)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
