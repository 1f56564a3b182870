"""Restart benchmark: how soon calls are back after the server is killed and
started again mid-batch (issue "Headroom", item 6).

    python bench/restart.py [--contacts N] [--concurrency 50] [--mean-ms 200] [--dialers 1]
                            [--down-seconds 0.5] [--repeat 1] [--timeout 300]

The stack is bench/dispatch.py's (its helpers, imported): embedded Postgres
and Redis, one `batchcalls server` process, ``--dialers`` dialer processes on
its internal listener, the simulated carrier. A batch of ``--contacts``
contacts (concurrency ``--concurrency``, calls of ``--mean-ms`` mean) runs;
once live calls at the carrier have been at >= 90 % of the limit for
``--warm-seconds``, the server process gets SIGKILL, and after
``--down-seconds`` it is started again on the same ports (public and
internal). ``--repeat N`` does that N times in one batch.

Measured per restart, against the carrier's own record of the calls
(wall-clock start and end of every call it received):

- ``server_answers_after``: SIGKILL -> the new server answers a gRPC health
  check for DialerService on the internal listener (polled every few ms on a
  fresh connection; includes ``--down-seconds`` and the server's start-up,
  shown apart as ``startup``);
- ``first_call_after_answer``: that answer -> the first call the carrier
  receives after it;
- ``full_speed_after_answer``: that answer -> live calls at the carrier
  back to >= 90 % of the limit;
- ``longest_no_live_call_gap``: the longest time between the kill and full
  speed with no call live at the carrier;
- on the next line, ``first_grant_after_answer``: that answer -> the first
  attempt the new server granted (``attempts.started_at`` in Postgres): the
  part of ``first_call_after_answer`` spent reconnecting and in the server.

A machine too busy to reach 90 % of the limit within ``--warm-max-seconds``
before a kill is measured against 90 % of the level it did reach (printed).

Target: calls resume within 1 s of the server answering; ``ratio`` is
first_call_after_answer / 1 s (<= 1 meets it). The dialers' logs (JSON lines,
WARNING and up) and the servers' stderr are kept in a temporary directory,
printed at the end; ``--save-calls FILE`` writes the carrier's record and
the restart instants. ``--timeout`` bounds the whole run (exit code 3 when it
is hit); otherwise the exit code is 0 (1 with ``--strict`` when a restart
misses the target).
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import math
import signal
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.dispatch import (
    bench_number,
    bench_numbers,
    free_port,
    get_json,
    spawn_dialers,
    spawn_server,
)
from bench.harness import embedded_stack

TARGET_SECONDS = 1.0
FULL_SPEED_SHARE = 0.9
DIALER_SERVICE = "batchcalls.v1.DialerService"


class BenchTimeout(Exception):
    pass


def _on_alarm(signum, frame):
    faulthandler.dump_traceback(all_threads=True)  # where it was stuck, on stderr
    raise BenchTimeout()


def health_answers(address: str, token: str, timeout: float = 0.25) -> bool:
    """One try on a fresh channel (a local subchannel pool, so no reconnect
    back-off is inherited from an earlier try): does ``address`` answer a
    health check saying DialerService is SERVING?"""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)]) as ch:
        try:
            reply = health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(service=DIALER_SERVICE),
                metadata=(("authorization", f"Bearer {token}"),), timeout=timeout)
        except grpc.RpcError:
            return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


class Probe(threading.Thread):
    """Polls :func:`health_answers` every 5 ms until it answers (``answered``:
    the wall-clock time of that answer) or for ``limit`` seconds."""

    def __init__(self, address: str, token: str, limit: float = 60.0) -> None:
        super().__init__(daemon=True)
        self.address, self.token, self.limit = address, token, limit
        self.answered = math.nan

    def run(self) -> None:
        deadline = time.monotonic() + self.limit
        while time.monotonic() < deadline:
            if health_answers(self.address, self.token):
                self.answered = time.time()
                return
            time.sleep(0.005)


def carrier_live(url: str) -> int:
    return int(get_json(f"{url}/healthz")["live_calls"])


def live_steps(calls: list[dict], now: float) -> list[tuple[float, int]]:
    """(instant, live calls from that instant on) at every call start and end
    in the carrier's record; a call still live counts until ``now``. At one
    instant ends go before starts (a call replacing another is no overlap)."""
    events = []
    for c in calls:
        events.append((float(c["start"]), 1))
        events.append((float(c["end"]) if c.get("end") is not None else now, -1))
    events.sort(key=lambda e: (e[0], e[1]))
    steps, live = [], 0
    for t, d in events:
        live += d
        if steps and steps[-1][0] == t:
            steps[-1] = (t, live)
        else:
            steps.append((t, live))
    return steps


def live_at(steps: list[tuple[float, int]], t: float) -> int:
    live = 0
    for at, n in steps:
        if at > t:
            break
        live = n
    return live


def measure(calls: list[dict], now: float, killed: float, answered: float, need: int) -> dict:
    """Figures of one restart from the carrier's record (wall-clock seconds)."""
    steps = live_steps(calls, now)
    after = [float(c["start"]) for c in calls if float(c["start"]) >= answered]
    first = min(after) if after else math.nan
    full = answered if live_at(steps, answered) >= need else next(
        (t for t, n in steps if t >= answered and n >= need), math.nan)
    # Longest stretch with no live call between the kill and full speed
    # (or now, when full speed never came).
    until = full if not math.isnan(full) else now
    longest, idle_since = 0.0, (killed if live_at(steps, killed) == 0 else None)
    for t, n in steps:
        if t <= killed:
            continue
        if t >= until:
            break
        if n == 0 and idle_since is None:
            idle_since = t
        elif n > 0 and idle_since is not None:
            longest, idle_since = max(longest, t - idle_since), None
    if idle_since is not None:
        longest = max(longest, until - idle_since)
    return {"first": first, "full": full, "longest_idle": longest,
            "started_while_down": sum(1 for c in calls if killed < float(c["start"]) < answered)}


async def first_grant_after(ctx, batch_id: str, since: float) -> float:
    """Wall-clock time of the first attempt the server granted (its
    ``attempts.started_at`` in Postgres) at or after ``since``; NaN if none."""
    from datetime import UTC, datetime

    from sqlalchemy import func, select

    from server.adapters.db.schema import attempts

    async with ctx.engine.connect() as conn:
        first = (await conn.execute(select(func.min(attempts.c.started_at)).where(
            attempts.c.batch_id == batch_id, attempts.c.started_at >= datetime.fromtimestamp(since, UTC)))).scalar()
    return first.timestamp() if first is not None else math.nan


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--contacts", type=int, default=0,
                    help="contacts in the batch (default: 5000, or 2500 per restart + 2500 if more)")
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--mean-ms", type=float, default=200.0)
    ap.add_argument("--dialers", type=int, default=1)
    ap.add_argument("--down-seconds", type=float, default=0.5, help="pause between SIGKILL and the restart")
    ap.add_argument("--warm-seconds", type=float, default=1.0,
                    help="time at full speed before each kill")
    ap.add_argument("--warm-max-seconds", type=float, default=10.0,
                    help="longest wait for full speed before a kill (then the level reached counts)")
    ap.add_argument("--settle-seconds", type=float, default=10.0,
                    help="longest wait for full speed after a restart before measuring anyway")
    ap.add_argument("--repeat", type=int, default=1, help="restarts in one run (one batch)")
    ap.add_argument("--poll-seconds", default="0.05", help="the dialers' BATCHCALLS_POLL_SECONDS")
    ap.add_argument("--timeout", type=float, default=300.0, help="bound on the whole run, seconds")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a restart misses the 1 s target")
    ap.add_argument("--save-calls", default="",
                    help="write the carrier's record and the restarts' instants here (JSON), for a closer look")
    args = ap.parse_args(argv)
    contacts = args.contacts or max(5000, 2500 * (args.repeat + 1))
    need = math.ceil(FULL_SPEED_SHARE * args.concurrency)

    signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, args.timeout)
    logs = Path(tempfile.mkdtemp(prefix="bench-restart-logs-"))
    results: list[dict] = []
    try:
        run(args, contacts, need, logs, results)
    except BenchTimeout:
        print(f"restart: timed out after {args.timeout:.0f} s (--timeout) with {len(results)} of "
              f"{args.repeat} restart(s) measured; logs in {logs}", flush=True)
        return 3
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    print(f"logs (dialers, servers): {logs}")
    missed = [r for r in results if not (r["first"] - r["answered"] <= TARGET_SECONDS)]
    return 1 if args.strict and missed else 0


def run(args, contacts: int, need: int, logs: Path, results: list[dict]) -> None:
    from batchcalls.v1 import batch_service_pb2 as pb
    from batchcalls.v1 import resources_pb2 as res

    from simcarrier import spawn
    from simcarrier.analysis import check_record
    from tests.support.api import stub

    scale = args.mean_ms / 200.0 / 1000.0  # 1 simulated second = 1 ms at 200 ms (bench/dispatch.py)
    numbers = bench_numbers(contacts)
    csv = ("phone,name\n" + "".join(f"{n},C{i}\n" for i, n in enumerate(numbers))).encode()
    quiet = {"scheduler_interval_seconds": 30.0, "reconcile_interval_seconds": 3600.0}
    with embedded_stack("bench-restart-", env={"BATCHCALLS_LOG_LEVEL": "WARNING"}, server_settings=quiet) as stack, \
            spawn(time_scale=scale) as carrier:
        port, internal_port = free_port(), free_port()
        internal_addr = f"127.0.0.1:{internal_port}"
        server_logs = [open(logs / f"server-{i}.log", "w") for i in range(args.repeat + 1)]  # noqa: SIM115
        dialer_logs = [open(logs / f"dialer-{i}.log", "w") for i in range(args.dialers)]  # noqa: SIM115
        try:
            server, internal = spawn_server(stack, port, internal_addr, stderr=server_logs[0])
            org = stack.new_org(concurrency_limit=args.concurrency, credits_usd=1_000_000)
            number = bench_number(stack, org)
            dialers = []
            for i in range(args.dialers):
                d, _ = spawn_dialers(stack, internal, carrier.url, 1, args.poll_seconds, f"restart{i}",
                                     stderr=dialer_logs[i])
                dialers += d
            time.sleep(1.5)  # dialers connected and idle
            with stack.channel() as ch:  # the in-process server: not the one killed
                batch = stub(ch).CreateBatch(pb.CreateBatchRequest(
                    request_id=str(uuid.uuid4()), display_name="restart", agent=org.agent_name,
                    from_phone_number=f"phoneNumbers/{number.id}", csv_content=csv, filename="r.csv",
                    concurrency_limit=args.concurrency, max_attempts=1,
                    calling_window_mode=res.CALLING_WINDOW_MODE_NONE), metadata=org.md()).batch
            print(f"restart bench: dialers={args.dialers} contacts={contacts} concurrency={args.concurrency} "
                  f"mean_call={args.mean_ms:.0f} ms down={args.down_seconds:.2f} s repeat={args.repeat} "
                  f"(full speed = >= {need} live calls at the carrier)", flush=True)
            for k in range(args.repeat):
                # Full speed for --warm-seconds before the kill; a machine too
                # busy to reach it within --warm-max-seconds is measured
                # against 90 % of the level it did reach (said so).
                since, seen, give_up = None, [], time.monotonic() + args.warm_max_seconds
                while since is None or time.monotonic() - since < args.warm_seconds:
                    now_m = time.monotonic()
                    seen = [(t, n) for t, n in seen if now_m - t <= 2.0] + [(now_m, carrier_live(carrier.url))]
                    if seen[-1][1] >= need:
                        since = since or now_m
                    else:
                        since = None
                    if now_m > give_up:
                        break
                    time.sleep(0.02)
                level = sum(n for _, n in seen) / len(seen)
                bar = need if since is not None else max(1, min(need, math.ceil(FULL_SPEED_SHARE * level)))
                if bar != need:
                    print(f"  (limit not reached in {args.warm_max_seconds:.0f} s: {level:.1f} live calls on average "
                          f"over the 2 s before the kill; full speed taken as >= {bar} live)", flush=True)
                killed = time.time()
                server.kill()
                server.wait(timeout=10)
                time.sleep(args.down_seconds)
                # The probe runs beside spawn_server, which returns at the
                # server's READY lines: the listener may answer a little before.
                probe = Probe(internal_addr, stack.service_token)
                spawned = time.time()
                probe.start()
                try:
                    server, _ = spawn_server(stack, port, internal_addr, stderr=server_logs[k + 1])
                finally:
                    probe.join()  # answered by now, or stopped by a failed start
                answered = probe.answered
                # Wait for full speed at the carrier (or --settle-seconds).
                settle_until = time.monotonic() + args.settle_seconds
                while carrier_live(carrier.url) < bar and time.monotonic() < settle_until:
                    time.sleep(0.02)
                time.sleep(0.2)
                now = time.time()
                calls = get_json(f"{carrier.url}/calls?batch_id={batch.batch_id}")
                m = measure(calls, now, killed, answered, bar)
                r = {**m, "killed": killed, "spawned": spawned, "answered": answered}
                results.append(r)
                first_ms = (m["first"] - answered) * 1000
                full_ms = (m["full"] - answered) * 1000
                ratio = first_ms / (TARGET_SECONDS * 1000)
                ran_out = len(calls) >= contacts
                missing = f"none_within_{args.settle_seconds:g}_s"
                print(f"restart: server_answers_after={answered - killed:.2f} s "
                      f"first_call_after_answer={missing if math.isnan(first_ms) else f'{first_ms:.0f} ms'} "
                      f"full_speed_after_answer={missing if math.isnan(full_ms) else f'{full_ms:.0f} ms'} "
                      f"longest_no_live_call_gap={m['longest_idle'] * 1000:.0f} ms "
                      f"(target: calls resume within 1 s of the server answering) ratio={ratio:.2f}"
                      f"{' OK' if ratio <= 1 else ' OVER TARGET'}", flush=True)
                granted_ms = (stack.run(first_grant_after(stack.ctx, batch.batch_id, answered)) - answered) * 1000
                print(f"  #{k + 1}: startup={answered - spawned:.2f} s (spawn -> health SERVING) "
                      f"first_grant_after_answer={granted_ms:.0f} ms (first StartAttempt granted by the new server) "
                      f"calls_started_while_down={m['started_while_down']} calls_so_far={len(calls)}/{contacts}"
                      + (" [the batch ran out of contacts: figures unreliable, raise --contacts]"
                         if ran_out else ""), flush=True)
            calls = get_json(f"{carrier.url}/calls?batch_id={batch.batch_id}")
            check = check_record(calls)
            peak = check.max_concurrent_by_org.get(org.org_id, 0)
            firsts = [(r["first"] - r["answered"]) * 1000 for r in results]
            print(f"restart summary: {len(results)} restart(s), first_call_after_answer max={max(firsts):.0f} ms "
                  f"ratio={max(firsts) / (TARGET_SECONDS * 1000):.2f} (target <= 1); "
                  f"peak_live_at_provider={peak} (limit {args.concurrency})", flush=True)
            if args.save_calls:
                Path(args.save_calls).write_text(json.dumps({"restarts": results, "calls": calls}))
            for d in dialers:
                d.terminate()
                d.wait(timeout=30)
        finally:
            for f in server_logs + dialer_logs:
                f.close()


if __name__ == "__main__":
    raise SystemExit(main())
