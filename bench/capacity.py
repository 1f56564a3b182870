"""Capacity model: CPU per call for each process kind, and the cores a
given call rate needs.

    python bench/capacity.py [--contacts 5000] [--dialers 2] [--headroom 0.3] [--cps 10 50 100 250 500 1000]

Runs the dispatch workload (bench/dispatch.py, with CreateBatch and the
GetBatch polls sent to the server process so that every bit of server work
is in it), reads each process's CPU time from /proc between CreateBatch and
COMPLETED (bench/proc_cpu.py), and prints:

* CPU milliseconds per call for each kind: server, dialer (all dialer
  processes summed), simulated carrier, Postgres (postmaster + backends),
  Redis;
* a table of cores per kind for each calls-per-second figure:
  ``ceil(cpu_ms_per_call x cps / 1000 x (1 + headroom))`` (30 % headroom by
  default: nothing runs well at 100 % of a core);
* which limit is hit first in each deployment shape (docs/capacity.md).

CPU time, not wall time: on a busy machine the figures move much less than
completion times do, but they are not load-free (caches, context switches,
idle polling amortised over fewer calls per second). The simulated carrier
stands in for a carrier and is not part of a deployment: its row is for
completeness only and it is left out of the totals that size a deployment.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import dispatch  # after the path is set

KINDS = ("server", "dialer", "carrier", "postgres", "redis")
DEPLOYED = ("server", "dialer", "postgres", "redis")  # the carrier is someone else's


def by_kind(cpu_seconds: dict[str, float]) -> dict[str, float]:
    out = {k: 0.0 for k in KINDS}
    for name, sec in cpu_seconds.items():
        kind = "dialer" if name.startswith("dialer") else name
        if kind in out:
            out[kind] += sec
    return out


def cores(ms_per_call: float, cps: float, headroom: float) -> int:
    return max(1, math.ceil(ms_per_call * cps / 1000.0 * (1.0 + headroom)))


def machine() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/loadavg") as f:
            load = " ".join(f.read().split()[:3])
    except OSError:
        load = "?"
    return f"{os.cpu_count()} cores, {model}, Linux {platform.release()}, load average {load}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--contacts", type=int, default=5_000)
    ap.add_argument("--dialers", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--mean-ms", type=float, default=200.0)
    ap.add_argument("--headroom", type=float, default=0.30, help="fraction of a core kept free (default 0.30)")
    ap.add_argument("--cps", type=float, nargs="+", default=[10, 50, 100, 250, 500, 1000])
    args = ap.parse_args(argv)

    print(f"machine: {machine()}")
    results: list[dict] = []
    dispatch.main(["--contacts", str(args.contacts), "--dialers", str(args.dialers),
                   "--concurrency", str(args.concurrency), "--mean-ms", str(args.mean_ms),
                   "--api", "server"], results)
    r = results[-1]
    calls = r["calls"]
    kind_sec = by_kind(r["cpu_seconds"])
    ms = {k: v * 1000.0 / calls for k, v in kind_sec.items()}
    deployed_total = sum(ms[k] for k in DEPLOYED)
    achieved = calls / r["completion"]

    print()
    print(f"capacity: {calls} calls, {args.dialers} dialer(s), {r['completion']:.2f} s "
          f"({achieved:.0f} calls/s achieved); CPU from /proc between CreateBatch and COMPLETED")
    print("cpu_ms_per_call_by_kind " + " ".join(f"{k}={ms[k]:.2f}" for k in KINDS)
          + f" total={sum(ms.values()):.2f} deployed_total={deployed_total:.2f} (without the simulated carrier)")
    print()
    h = round(args.headroom * 100)
    print(f"cores needed = ceil(cpu_ms_per_call x calls/s / 1000 x {1 + args.headroom:.2f})  ({h}% headroom)")
    header = ["calls/s", *KINDS, "deployed total"]
    rows = []
    for cps in args.cps:
        row = [f"{cps:g}"] + [str(cores(ms[k], cps, args.headroom)) for k in KINDS]
        row.append(str(cores(deployed_total, cps, args.headroom)))
        rows.append(row)
    widths = [max(len(header[i]), *(len(row[i]) for row in rows)) for i in range(len(header))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(c.rjust(w) for c, w in zip(row, widths)) + " |")

    per_core = {k: 1000.0 / ms[k] / (1.0 + args.headroom) for k in DEPLOYED if ms[k] > 0}
    first = max(DEPLOYED, key=lambda k: ms[k])
    print()
    print("calls/s one core carries (with headroom): "
          + " ".join(f"{k}={per_core[k]:.0f}" for k in DEPLOYED if k in per_core))
    print(f"largest per-call cost: {first} ({ms[first]:.2f} ms): the first kind to need another core")
    one_core = 1000.0 / deployed_total / (1.0 + args.headroom)
    redis_primary = per_core.get("redis", float("inf"))
    pg_core = per_core.get("postgres", float("inf"))
    # A server or dialer is one Python process: about one core at most.
    server_proc, dialer_proc = per_core.get("server", float("inf")), per_core.get("dialer", float("inf"))
    proc_cap = min(server_proc, dialer_proc)
    proc_kind = "server" if server_proc <= dialer_proc else "dialer"
    print(f"limit, one machine (batchcalls up: one server, one dialer, Postgres, Redis on C cores): "
          f"~{one_core:.0f} calls/s per core, all kinds together, so the machine's cores come first up to "
          f"{proc_cap / one_core:.1f} cores; above that the single {proc_kind} process (~{proc_cap:.0f} calls/s, "
          f"one core) is hit first")
    pg_cores_for_redis = redis_primary / pg_core if pg_core else float("inf")
    print(f"limit, N servers + N dialers on one Postgres and one Redis: a server process carries ~{server_proc:.0f} "
          f"calls/s, a dialer process ~{dialer_proc:.0f} (add processes); Redis ~{redis_primary:.0f} calls/s "
          f"(one core per primary); Postgres ~{pg_core:.0f} calls/s per core (a bigger machine only): first hit: "
          f"postgres while its machine has fewer than {pg_cores_for_redis:.1f} cores for it, then redis")
    print(f"limit, Redis Cluster: Redis scales by organization (~{redis_primary:.0f} calls/s per primary; one "
          f"organization's keys share one slot, so one organization stays under one primary's figure); "
          f"first hit: postgres (~{pg_core:.0f} calls/s per core, one machine)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
