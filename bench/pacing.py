"""Pacing benchmark (issue 13): calls per second at the carrier, through the
real server process, two real dialer processes and the simulated carrier
process (embedded Postgres and Redis).

    python bench/pacing.py [--contacts 2000] [--concurrency 50] [--mean-ms 200] [--cps 10] [--dialers 2]
                           [--pushback-contacts N] [--pushback-after 4] [--pushback-seconds 4] [--retry-after 2]

Run 1: one batch of ``--contacts`` 200 ms calls on a trunk of ``--cps`` calls
per second, concurrency 50. Prints, from the carrier's own record, the most
calls started in any one-second window (must be <= cps) and the achieved
rate over the run / cps (target >= 0.97).

Run 2: the same on a fresh organization and trunk (``--pushback-contacts``,
default: ``--contacts``), with the carrier answering every new call
``503`` + ``Retry-After`` for ``--pushback-seconds`` from ``--pushback-after``
seconds into the batch. Prints the same two numbers, the refusals, the calls
started at that trunk before a refusal's Retry-After had passed (must be 0)
and the attempts spent on throttled calls (must be 0: Postgres attempts and
the contacts' attempt counts against the calls the carrier accepted).
"""

from __future__ import annotations

import argparse
import json
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.dispatch import bench_numbers, free_port
from bench.harness import embedded_stack


def max_in_any_second(starts: list[float]) -> int:
    """Most starts in any half-open one-second window [t, t + 1)."""
    starts = sorted(starts)
    best, j = 0, 0
    for i, t in enumerate(starts):
        while starts[j] <= t - 1.0:
            j += 1
        best = max(best, i - j + 1)
    return best


def load_record(path: Path, batch_id: str) -> list[dict]:
    """The carrier's record of one batch, last line per call id, refusals included."""
    last: dict[str, dict] = {}
    for line in path.read_text().splitlines():
        r = json.loads(line)
        if r.get("batch_id") == batch_id:
            last[r["call_id"]] = r
    return sorted(last.values(), key=lambda r: r["start"])


def post_json(url: str, payload: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


async def _attempt_counts(ctx, batch_id: str) -> tuple[int, int, int]:
    """(attempt rows, sum of the contacts' attempt counts, carrier_error attempts) in Postgres."""
    from sqlalchemy import func, select

    from server.adapters.db.schema import attempts, contacts

    async with ctx.engine.connect() as conn:
        rows = (await conn.execute(select(func.count()).select_from(attempts)
                                   .where(attempts.c.batch_id == batch_id))).scalar_one()
        spent = (await conn.execute(select(func.coalesce(func.sum(contacts.c.attempts), 0))
                                    .where(contacts.c.batch_id == batch_id))).scalar_one()
        errors = (await conn.execute(select(func.count()).select_from(attempts)
                                     .where(attempts.c.batch_id == batch_id,
                                            attempts.c.outcome == "carrier_error"))).scalar_one()
    return int(rows), int(spent), int(errors)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--contacts", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--mean-ms", type=float, default=200.0)
    ap.add_argument("--cps", type=float, default=10.0)
    ap.add_argument("--dialers", type=int, default=2)
    ap.add_argument("--pushback-contacts", type=int, default=None, help="contacts of run 2 (default: --contacts)")
    ap.add_argument("--pushback-after", type=float, default=4.0, help="seconds into run 2 the period starts")
    ap.add_argument("--pushback-seconds", type=float, default=4.0, help="length of the 503 period")
    ap.add_argument("--retry-after", type=float, default=2.0)
    ap.add_argument("--skip-steady", action="store_true", help="run 2 only")
    ap.add_argument("--skip-pushback", action="store_true", help="run 1 only")
    args = ap.parse_args()

    from batchcalls.v1 import batch_service_pb2 as pb
    from batchcalls.v1 import resources_pb2 as res

    from launcher.devstack import _read_ready
    from server.domain.auth import Principal, Role
    from server.service import catalog
    from simcarrier import spawn
    from tests.support.api import stub

    scale = args.mean_ms / 200.0 / 1000.0  # a 200 s simulated call lasts mean-ms
    record = Path(tempfile.mkdtemp(prefix="bench-pacing-")) / "record.jsonl"
    quiet = {"scheduler_interval_seconds": 30.0, "reconcile_interval_seconds": 3600.0}
    with embedded_stack("bench-pacing-", env={"BATCHCALLS_LOG_LEVEL": "WARNING"}, server_settings=quiet) as stack, \
            spawn(time_scale=scale, record_file=str(record)) as carrier:
        port = free_port()
        server = stack.spawn(["-m", "launcher.cli", "server"],
                             env={"BATCHCALLS_GRPC_PORT": str(port), "BATCHCALLS_AUTO_MIGRATE": "0",
                                  "BATCHCALLS_INTERNAL_ADDR": "127.0.0.1:0"},
                             stdout=subprocess.PIPE, text=True)
        internal = _read_ready(server, "INTERNAL_READY")
        _read_ready(server, "SERVER_READY")
        dialers = [
            stack.spawn(["-m", "dialer"], env={
                "BATCHCALLS_SERVER_ADDR": internal, "BATCHCALLS_SIMCARRIER_URL": carrier.url,
                "BATCHCALLS_DIALER_ID": f"pacing-{i}", "BATCHCALLS_POLL_SECONDS": "0.05",
                "BATCHCALLS_DIALER_METRICS_PORT": "0", "BATCHCALLS_LOG_LEVEL": "WARNING",
            })
            for i in range(args.dialers)
        ]
        time.sleep(1.5)

        def run_batch(n: int, label: str, during=None):
            org = stack.new_org(concurrency_limit=args.concurrency, credits_usd=1_000_000)
            owner = Principal(org_id=org.org_id, role=Role.OWNER, key_id="bench")
            caller = f"+1415555{secrets.randbelow(9000) + 1000:04d}"
            number = stack.run(catalog.create_phone_number(
                stack.ctx, owner, caller, "bench",
                {"kind": "simulated", "calls_per_second": args.cps,
                 "simulation": {"weight_completed": 1.0, "mean_call_seconds": 200.0, "ring_seconds": 1.0}},
            ))
            numbers = bench_numbers(n)
            csv = ("phone,name\n" + "".join(f"{x},C{i}\n" for i, x in enumerate(numbers))).encode()
            with stack.channel() as ch:
                batch = stub(ch).CreateBatch(pb.CreateBatchRequest(
                    request_id=str(uuid.uuid4()), display_name=label, agent=org.agent_name,
                    from_phone_number=f"phoneNumbers/{number.id}", csv_content=csv, filename="p.csv",
                    concurrency_limit=args.concurrency, max_attempts=1,
                    calling_window_mode=res.CALLING_WINDOW_MODE_NONE), metadata=org.md()).batch
                if during is not None:
                    threading.Thread(target=during, daemon=True).start()
                while True:
                    b = stub(ch).GetBatch(pb.GetBatchRequest(name=batch.name), metadata=org.md()).batch
                    if b.status == res.BATCH_STATUS_COMPLETED:
                        break
                    time.sleep(0.25)
            calls = load_record(record, batch.batch_id)
            accepted = [c for c in calls if not c.get("refused")]
            starts = [c["start"] for c in accepted]
            peak = max_in_any_second(starts)
            rate = (len(starts) - 1) / (max(starts) - min(starts)) if len(starts) > 1 else float("nan")
            print(f"[{label}] contacts={n} concurrency={args.concurrency} dialers={args.dialers} "
                  f"trunk_cps={args.cps:g} calls_at_carrier={len(accepted)}")
            print(f"[{label}] max_calls_started_in_any_1s_window={peak} (must be <= {args.cps:g}) "
                  f"achieved_rate/cps={rate / args.cps:.3f} (target >= 0.97; {rate:.3f} calls/s over "
                  f"{max(starts) - min(starts):.1f} s)")
            return batch, calls, accepted

        if not args.skip_steady:
            run_batch(args.contacts, "steady")

        if args.skip_pushback:
            for d in dialers:
                d.terminate()
                d.wait(timeout=30)
            return 0
        n2 = args.pushback_contacts or args.contacts

        def push_back() -> None:
            time.sleep(args.pushback_after)
            post_json(f"{carrier.url}/pushback", {"seconds": args.pushback_seconds, "retry_after": args.retry_after})

        batch, calls, accepted = run_batch(n2, "pushback", during=push_back)
        refused = [c for c in calls if c.get("refused")]
        early = 0
        for r in refused:
            early += sum(1 for c in calls if c is not r and c["from"] == r["from"]
                         and r["start"] < c["start"] < r["start"] + float(r.get("retry_after") or 0))
        rows, spent, errors = stack.run(_attempt_counts(stack.ctx, batch.batch_id))
        print(f"[pushback] carrier answered 503 + Retry-After: {args.retry_after:g} for {args.pushback_seconds:g} s: "
              f"refused={len(refused)} calls_started_before_retry_after_passed={early} (must be 0)")
        print(f"[pushback] attempts_spent_on_throttled_calls={spent - len(accepted)} (must be 0; Postgres: "
              f"{rows} attempt rows, contacts' attempts sum {spent}, calls accepted by the carrier "
              f"{len(accepted)}, carrier_error attempts {errors})")
        for d in dialers:
            d.terminate()
            d.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
