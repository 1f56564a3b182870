"""Dispatch benchmark: 10,000 contacts, concurrency 50, simulated calls of
200 ms mean, through the real server process, real dialer process(es) and
the simulated carrier process (embedded Postgres and Redis).

    python bench/dispatch.py [--contacts 10000] [--concurrency 50] [--mean-ms 200] [--dialers 1 2]

For each dialer count prints the completion time (batch start to COMPLETED),
the ideal (contacts x mean call duration / concurrency, with the mean taken
from the carrier's own record of the calls), ratio=<completion/ideal>, the
peak of live calls seen at the carrier, and claim-to-dial p50/p99 from the
dialers' Prometheus histograms. Target: ratio <= 1.05 and peak <= 50.

It also prints CPU milliseconds per call for each process, read from /proc
(bench/proc_cpu.py) between CreateBatch and COMPLETED: the server process the
dialers talk to, each dialer, the simulated carrier, Postgres (postmaster and
backends) and Redis, and their total. By default CreateBatch and the GetBatch
polls go to the benchmark's own in-process server, whose CPU is in
``bench`` (not in the total); ``--api server`` sends them to the server
process instead, so that all server work is in ``server`` (bench/capacity.py
does).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import embedded_stack  # noqa: E402 - after the path is set


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def histogram_quantiles(texts: list[str], name: str, qs: tuple[float, ...]) -> list[float]:
    """Quantiles from summed Prometheus histogram buckets (upper bounds)."""
    buckets: dict[float, float] = {}
    for text in texts:
        for line in text.splitlines():
            if line.startswith(f"{name}_bucket{{"):
                le = line.split('le="', 1)[1].split('"', 1)[0]
                bound = float("inf") if le == "+Inf" else float(le)
                buckets[bound] = buckets.get(bound, 0.0) + float(line.rsplit(" ", 1)[1])
    ordered = sorted(buckets.items())
    total = ordered[-1][1] if ordered else 0
    out = []
    for q in qs:
        target = q * total
        out.append(next((b for b, c in ordered if c >= target), float("nan")))
    return out


def sum_samples(texts: list[str], sample: str) -> float:
    """Sum of one labelled Prometheus sample over the dialers' scrapes."""
    total = 0.0
    for text in texts:
        for line in text.splitlines():
            if line.startswith(sample + " "):
                total += float(line.rsplit(" ", 1)[1])
    return total


def bench_numbers(n: int) -> list[str]:
    """Distinct valid US numbers whose last four digits force no outcome at
    the simulated carrier (its overrides end in 0001…0010)."""
    import phonenumbers

    out: list[str] = []
    i = 0
    while len(out) < n:
        candidate = f"+1{[212, 415, 646, 718, 310, 617][i % 6]}{2000000 + (i * 7919) % 7999999:07d}"
        i += 1
        if candidate[-4:] <= "0010" or not phonenumbers.is_valid_number(phonenumbers.parse(candidate)):
            continue
        out.append(candidate)
    return sorted(set(out))[:n] if len(set(out)) >= n else out


async def _grant_to_dial(ctx, batch_id: str, calls: list[dict]) -> tuple[float, float]:
    """p50/p99 of (carrier's call start - attempts.started_at), matched by
    contact: how long a granted attempt waits before its call exists."""
    from sqlalchemy import select

    from server.adapters.db.schema import attempts

    async with ctx.engine.connect() as conn:
        rows = await conn.execute(select(attempts.c.contact_id, attempts.c.started_at)
                                  .where(attempts.c.batch_id == batch_id))
        granted = {str(r.contact_id): r.started_at.timestamp() for r in rows}
    waits = sorted(c["start"] - granted[c["contact_id"]] for c in calls if c["contact_id"] in granted)
    if not waits:
        return float("nan"), float("nan")
    return waits[len(waits) // 2], waits[min(len(waits) - 1, int(len(waits) * 0.99))]


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=60) as r:
        return json.loads(r.read())


def spawn_server(stack, port: int, internal_addr: str = "127.0.0.1:0", **kw) -> tuple[subprocess.Popen, str]:
    """Starts `batchcalls server` on ``port`` (public) and ``internal_addr``
    (the dialers' listener; port 0 = any) and returns it once both listen,
    with its internal address (bench/restart.py restarts it on the same
    ports). ``kw`` goes to ``stack.spawn`` (e.g. ``stderr``)."""
    from launcher.devstack import _read_ready

    server = stack.spawn(["-m", "launcher.cli", "server"],
                         env={"BATCHCALLS_GRPC_PORT": str(port), "BATCHCALLS_AUTO_MIGRATE": "0",
                              "BATCHCALLS_INTERNAL_ADDR": internal_addr},
                         stdout=subprocess.PIPE, text=True, **kw)
    internal = _read_ready(server, "INTERNAL_READY")  # the dialers' (DialerService) listener
    _read_ready(server, "SERVER_READY")  # both listeners up
    return server, internal


def bench_number(stack, org):
    """The org's simulated caller number: every call completes, 200 simulated
    seconds mean, 1 s ringing, not paced."""
    from server.domain.auth import Principal, Role
    from server.service import catalog

    owner = Principal(org_id=org.org_id, role=Role.OWNER, key_id="bench")
    return stack.run(catalog.create_phone_number(
        stack.ctx, owner, f"+1415555{secrets.randbelow(9000) + 1000:04d}", "bench",
        {"kind": "simulated", "simulation": {"weight_completed": 1.0, "mean_call_seconds": 200.0,
                                             "ring_seconds": 1.0},
         "calls_per_second": 1000.0},  # not a pacing benchmark (bench/pacing.py is)
    ))


def spawn_dialers(stack, internal: str, carrier_url: str, n: int, poll_seconds: str, tag: str,
                  **kw) -> tuple[list[subprocess.Popen], list[int]]:
    """``n`` dialer processes on ``internal``; returns them and their metrics
    ports. ``kw`` goes to ``stack.spawn`` (e.g. ``stderr``)."""
    metrics_ports = [free_port() for _ in range(n)]
    dialers = [
        stack.spawn(["-m", "dialer"], env={
            "BATCHCALLS_SERVER_ADDR": internal, "BATCHCALLS_SIMCARRIER_URL": carrier_url,
            "BATCHCALLS_DIALER_ID": f"bench-{tag}-{i}", "BATCHCALLS_POLL_SECONDS": poll_seconds,
            "BATCHCALLS_DIALER_METRICS_PORT": str(metrics_ports[i]), "BATCHCALLS_LOG_LEVEL": "WARNING",
            # One more server transaction per completed call: not what this measures.
            "BATCHCALLS_SIMULATED_AGENT_REPORTS": "0",
        }, **kw)
        for i in range(n)
    ]
    return dialers, metrics_ports


def main(argv: list[str] | None = None, results: list[dict] | None = None) -> int:
    """``results``, when given, gets one dict per dialer count (calls,
    completion, ideal, cpu_seconds by process name): bench/capacity.py."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--contacts", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--mean-ms", type=float, default=200.0)
    ap.add_argument("--dialers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--poll-seconds", default="0.05", help="the dialers' BATCHCALLS_POLL_SECONDS (default: theirs)")
    ap.add_argument("--api", choices=("inprocess", "server"), default="inprocess",
                    help="where CreateBatch/GetBatch go: the bench's in-process server (default) or the server process")
    args = ap.parse_args(argv)

    from batchcalls.v1 import batch_service_pb2 as pb
    from batchcalls.v1 import resources_pb2 as res

    from bench.proc_cpu import CpuMeter, delta, format_per_call, postgres_pid, redis_pid
    from simcarrier import spawn
    from simcarrier.analysis import check_record
    from tests.support.api import stub
    from bench.proc_cpu import CpuMeter, delta, format_per_call, postgres_pid, redis_pid

    # 1 simulated second = 1 ms: a 200 s mean call lasts 200 ms.
    scale = args.mean_ms / 200.0 / 1000.0
    numbers = bench_numbers(args.contacts)
    csv = ("phone,name\n" + "".join(f"{n},C{i}\n" for i, n in enumerate(numbers))).encode()
    # The in-process server only creates the orgs and numbers: keep its
    # background duties (scheduler, reconciler) out of the measurement.
    quiet = {"scheduler_interval_seconds": 30.0, "reconcile_interval_seconds": 3600.0}
    with embedded_stack("bench-dispatch-", env={"BATCHCALLS_LOG_LEVEL": "WARNING"}, server_settings=quiet) as stack, \
            spawn(time_scale=scale) as carrier:
        port = free_port()
        server, internal = spawn_server(stack, port)
        for n_dialers in args.dialers:
            org = stack.new_org(concurrency_limit=args.concurrency, credits_usd=1_000_000)
            number = bench_number(stack, org)
            dialers, metrics_ports = spawn_dialers(stack, internal, carrier.url, n_dialers, args.poll_seconds,
                                                   str(n_dialers))
            time.sleep(1.5)  # dialers connected and idle
            roots = {"server": server.pid, **{f"dialer{i + 1}": d.pid for i, d in enumerate(dialers)},
                     "carrier": carrier.process.pid, "postgres": postgres_pid(stack.services),
                     "redis": redis_pid(stack.services), "bench": os.getpid()}
            meter = CpuMeter({k: v for k, v in roots.items() if v}, self_only={"bench"})
            cpu_before = meter.snapshot()
            api = stack.channel() if args.api == "inprocess" else stack._open(f"127.0.0.1:{port}")
            with api as ch:
                batch = stub(ch).CreateBatch(pb.CreateBatchRequest(
                    request_id=str(uuid.uuid4()), display_name=f"dispatch x{n_dialers}", agent=org.agent_name,
                    from_phone_number=f"phoneNumbers/{number.id}", csv_content=csv, filename="d.csv",
                    concurrency_limit=args.concurrency, max_attempts=1,
                    calling_window_mode=res.CALLING_WINDOW_MODE_NONE), metadata=org.md()).batch
                while True:
                    b = stub(ch).GetBatch(pb.GetBatchRequest(name=batch.name), metadata=org.md()).batch
                    if b.status == res.BATCH_STATUS_COMPLETED:
                        break
                    time.sleep(0.25)  # completion is read from the batch, not from this poll
            cpu = delta(cpu_before, meter.snapshot())
            completion = (b.complete_time.ToDatetime() - b.start_time.ToDatetime()).total_seconds()
            calls = get_json(f"{carrier.url}/calls?batch_id={batch.batch_id}")
            check = check_record(calls)
            mean = sum(c["end"] - c["start"] for c in calls) / len(calls)
            ideal = args.contacts * mean / args.concurrency
            texts = []
            for p in metrics_ports:
                with urllib.request.urlopen(f"http://127.0.0.1:{p}/metrics", timeout=10) as r:
                    texts.append(r.read().decode())
            p50, p99 = histogram_quantiles(texts, "batchcalls_dialer_claim_to_dial_seconds", (0.5, 0.99))
            grant_to_dial = stack.run(_grant_to_dial(stack.ctx, batch.batch_id, calls))
            busy = sum(c["end"] - c["start"] for c in calls)
            print(f"dialers={n_dialers} contacts={args.contacts} concurrency={args.concurrency} "
                  f"calls={len(calls)} mean_call={mean * 1000:.1f} ms")
            print(f"completion={completion:.2f} s ideal={ideal:.2f} s ratio={completion / ideal:.3f} (target <= 1.05)")
            print(f"peak_live_at_provider={check.max_concurrent_by_org.get(org.org_id, 0)} (limit {args.concurrency}) "
                  f"claim_to_dial p50<={p50 * 1000:.0f} ms p99<={p99 * 1000:.0f} ms (histogram bucket bounds)")
            fresh = sum_samples(texts, 'batchcalls_dialer_claims_total{result="ok"}')
            ahead = sum_samples(texts, 'batchcalls_dialer_claims_total{result="reserved"}')
            not_dialed = sum_samples(texts, 'batchcalls_dialer_outcomes_total{outcome="not_dialed"}')
            print(f"claims: {fresh:.0f} with a slot, {ahead:.0f} granted ahead; returned not dialed: {not_dialed:.0f}")
            handoffs = {to: sum_samples(texts, f'batchcalls_dialer_slot_hand_offs_total{{to="{to}"}}')
                        for to in ("own", "line", "round")}
            print("call ends handed their slot to: {own:.0f} own reservations, {line:.0f} the org's waiting line "
                  "(any dialer), {round:.0f} a claim round (none waiting)".format(**handoffs))
            print(f"grant_to_dial p50={grant_to_dial[0] * 1000:.1f} ms p99={grant_to_dial[1] * 1000:.1f} ms "
                  f"(attempt granted in Postgres -> call received by the carrier); "
                  f"mean live calls={busy / completion:.1f} of {args.concurrency}")
            print(format_per_call(cpu, len(calls), exclude=("bench",))
                  + (" [bench = this process: its in-process server took CreateBatch and the GetBatch polls]"
                     if args.api == "inprocess" else ""), flush=True)
            if results is not None:
                results.append({"dialers": n_dialers, "calls": len(calls), "completion": completion,
                                "ideal": ideal, "cpu_seconds": cpu, "api": args.api})
            for d in dialers:
                d.terminate()
                d.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
