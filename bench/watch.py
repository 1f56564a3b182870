"""WatchBatch latency benchmark (docs/design.md §8: live events reach a WatchBatch
client within 100 ms of the outcome).

Standalone: starts the embedded PostgreSQL + Redis and the gRPC server
itself (as the test suite does), opens WATCHERS WatchBatch streams on one
batch, then drives the batch through the internal DialerService from a few
driver threads (StartAttempt, MarkAnswered, FinishAttempt: what a dialer
does). For every attempt it measures, at every client, the delay from the
attempt's end (the instant the outcome is known and FinishAttempt is sent)
to the ContactChange carrying that outcome; also from FinishAttempt's
return. Bounded: gives up after --timeout seconds.

The delay from the attempt's end includes the server's FinishAttempt work
(its transaction, then the publish); the delay from FinishAttempt's return
isolates the WatchBatch path (events are published before FinishAttempt
answers, so it is often 0). By default the server under test runs as its own
process (`batchcalls server`, as deployed), so the 20 client threads do not
share its GIL; --in-process measures the single-process setup of the tests.

    .venv/bin/python bench/watch.py [--contacts 200] [--watchers 20] [--drivers 4] [--call-seconds 0.2]

``--load`` measures the same under the dispatch benchmark's load
(bench/dispatch.py: concurrency 50, calls of 200 ms, so ~250 attempt ends
per second): a driver process runs ``--concurrency`` calls at a time through
the dialer's own ``ServerClient`` (dialer/server_client.py), so starts and
outcomes travel as the dialer sends them, in coalesced BatchStartAttempts /
BatchFinishAttempts calls with their lingers (group commit). The attempt's
end is the instant before the outcome is handed to ``ServerClient``; the
driver runs in its own process (CLOCK_MONOTONIC is shared) so the watcher
threads do not delay it. Calls last 0.5-1.5 x --call-seconds and start spread
over one call, as a dispatch run's calls of varied length are. It prints
p50/p99 from the attempt's end and their ratio to the 100 ms target (goal
50 ms). ``--flush-early`` makes the driver's outcome group commit do what
the dialer's is asked to (docs/design.md §8): while the batch's watched
marker is live (a WatchBatch stream is open on it), an outcome is sent at
once instead of lingering for company. ``--finish-linger`` and
``--finish-in-flight`` are what-if knobs on the dialer's outcome coalescer.

    .venv/bin/python bench/watch.py --load [--flush-early] [--concurrency 50] [--contacts 2500] [--watchers 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402

from batchcalls.v1 import (  # noqa: E402
    batch_service_pb2 as bpb,
    batch_service_pb2_grpc as bgrpc,
    dialer_service_pb2 as dpb,
    dialer_service_pb2_grpc as dgrpc,
    resources_pb2 as res,
)

TARGET_P99_MS = 100.0
GOAL_P99_MS = 50.0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(q / 100.0 * (len(s) - 1)))))
    return s[k]


class Watchers:
    """WATCHERS streams, one client thread each (sync grpc: grpc.aio on a
    second event loop in the server's process is not supported well)."""

    def __init__(self, address: str, md: list[tuple[str, str]], batch_id: str, count: int) -> None:
        self.address, self.md, self.batch_id, self.count = address, md, batch_id, count
        # (client index, contact_id, attempts) -> arrival (monotonic)
        self.arrivals: dict[tuple[int, str, int], float] = {}
        self.snapshot_events = [threading.Event() for _ in range(count)]
        self.ended = 0
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._one, args=(i,), daemon=True) for i in range(count)]
        self.channels = [grpc.insecure_channel(address) for _ in range(count)]

    def start(self) -> bool:
        for t in self.threads:
            t.start()
        return all(e.wait(30) for e in self.snapshot_events)

    def _one(self, i: int) -> None:
        stub = bgrpc.BatchServiceStub(self.channels[i])
        try:
            for msg in stub.WatchBatch(bpb.WatchBatchRequest(name=f"batches/{self.batch_id}"), metadata=self.md):
                kind = msg.WhichOneof("event")
                if kind == "snapshot":
                    self.snapshot_events[i].set()
                elif kind == "contact_change":
                    c = msg.contact_change
                    if c.outcome != res.CALL_OUTCOME_UNSPECIFIED:
                        self.arrivals[(i, c.contact_id, c.attempts)] = time.monotonic()
            with self.lock:
                self.ended += 1
        except grpc.RpcError as exc:
            self.errors.append(f"watcher {i}: {exc.code().name} {exc.details()}")
        finally:
            self.snapshot_events[i].set()

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        for ch in self.channels:
            ch.close()


def drive(stack, org, batch_id: str, contact_ids: list[str], finished: dict, lock: threading.Lock,
          duration: float, address: str) -> None:
    from google.protobuf.timestamp_pb2 import Timestamp

    md = [("authorization", f"Bearer {stack.service_token}")]
    with grpc.insecure_channel(address) as ch:
        dialer = dgrpc.DialerServiceStub(ch)
        for cid in contact_ids:
            token = secrets.randbelow(2**40)
            start = dialer.StartAttempt(
                dpb.StartAttemptRequest(organization_id=org.org_id, batch_id=batch_id, contact_id=cid,
                                        fencing_token=token, lease_id=f"bench-{token}", dialer_id="bench",
                                        provider_call_id=f"bench-{token}"),
                metadata=md,
            )
            if start.decision != dpb.START_ATTEMPT_DECISION_GRANTED:
                continue
            answered = Timestamp()
            answered.FromDatetime(datetime.now(timezone.utc))
            dialer.MarkAnswered(dpb.MarkAnsweredRequest(attempt_id=start.attempt_id, fencing_token=token,
                                                        answer_time=answered), metadata=md)
            if duration:
                time.sleep(duration)
            ended = time.monotonic()
            end_ts = Timestamp()
            end_ts.FromDatetime(datetime.now(timezone.utc))
            dialer.FinishAttempt(
                dpb.FinishAttemptRequest(attempt_id=start.attempt_id, fencing_token=token,
                                         outcome=res.CALL_OUTCOME_COMPLETED, answer_time=answered,
                                         end_time=end_ts, duration_seconds=30.0, closed_by="bench"),
                metadata=md,
            )
            returned = time.monotonic()
            with lock:
                finished[(cid, start.attempt_number)] = (ended, returned)


async def _drive_load(address: str, token: str, org_id: str, batch_id: str, ids: list[str],
                      call_seconds: float, concurrency: int, finish_linger: float | None = None,
                      finish_in_flight: int | None = None, flush_early_redis: str = "") -> dict[str, list[float]]:
    """``concurrency`` calls at a time through the dialer's ServerClient (its
    coalescing and lingers included). Returns contact:attempt -> [ended, returned].

    Calls last call_seconds × U(0.5, 1.5) and the slots start spread over
    one call, as the carrier's calls of varied length spread a dispatch run
    (not 50 calls ending in lockstep); each slot's next contact is granted
    ahead while its call lasts, and its outcome is recorded in the
    background, as the dialer does, so the slots stay busy (~250 attempt
    ends/s at 50 slots of 200 ms). With ``flush_early_redis`` (a Redis
    URL) the driver does what the dialer's outcome group commit is asked to
    do: while the batch's watched marker is live (server.api.streams), an
    outcome goes out at once (no linger; still one call in flight, so under
    load the outcomes that pile up meanwhile still travel together) instead of
    through the lingering coalescer."""
    import random

    from dialer.server_client import Coalescer, FinishAnswer, ItemRejected, ServerClient
    from google.protobuf.timestamp_pb2 import Timestamp

    finished: dict[str, list[float]] = {}
    todo = iter(ids)
    rng = random.Random(7)
    done = asyncio.Event()
    watched = {"now": False}
    async with grpc.aio.insecure_channel(address) as ch:
        client = ServerClient(ch, token)
        # What-if knobs for the dialer's outcome group commit (default: as the dialer runs it).
        if finish_linger is not None:
            client._finishes.linger_seconds = finish_linger
        if finish_in_flight is not None:
            client._finishes.max_in_flight = finish_in_flight
        urgent = Coalescer(client._finishes._send, max_items=client._finishes.max_items, max_in_flight=1,
                           linger_seconds=0.0)

        async def watch_marker() -> None:
            import redis.asyncio as aioredis

            from contract.keys import batch_watched

            r = aioredis.Redis.from_url(flush_early_redis)
            try:
                while not done.is_set():
                    watched["now"] = bool(await r.exists(batch_watched(org_id, batch_id)))
                    try:
                        await asyncio.wait_for(done.wait(), 0.5)
                    except asyncio.TimeoutError:
                        pass
            finally:
                await r.aclose()

        async def finish(req: Any) -> bool:
            if not watched["now"]:
                status, _ = await client.finish_once(req)
                return status is FinishAnswer.OK
            try:
                await urgent.submit(req)
                return True
            except (grpc.aio.AioRpcError, ItemRejected):
                return False

        async def grant(ahead: bool) -> tuple[str, Any, int] | None:
            """The next contact granted (None once every contact is taken)."""
            for cid in todo:  # one iterator shared by the slots of this loop
                fence = secrets.randbelow(2**40)
                start = await client.start_attempt(
                    organization_id=org_id, batch_id=batch_id, contact_id=cid, fencing_token=fence,
                    lease_id=f"bench-{fence}", dialer_id="bench", provider_call_id=f"bench-{fence}", ahead=ahead)
                if start.decision == dpb.START_ATTEMPT_DECISION_GRANTED:
                    return cid, start, fence
            return None

        async def record(cid: str, start: Any, fence: int, answered: datetime) -> None:
            ended = time.monotonic()
            answer_ts, end_ts = Timestamp(), Timestamp()
            answer_ts.FromDatetime(answered)
            end_ts.FromDatetime(datetime.now(timezone.utc))
            ok = await finish(dpb.FinishAttemptRequest(
                attempt_id=start.attempt_id, fencing_token=fence, outcome=res.CALL_OUTCOME_COMPLETED,
                answer_time=answer_ts, end_time=end_ts, duration_seconds=30.0, closed_by="bench"))
            if ok:
                finished[f"{cid}:{start.attempt_number}"] = [ended, time.monotonic()]

        outcomes: list[asyncio.Task] = []

        async def slot(k: int) -> None:
            """One of ``concurrency`` call slots, as the dialer runs one: the
            next contact is granted ahead while a call lasts, and the slot is
            free again when the call ends (its outcome is recorded meanwhile)."""
            await asyncio.sleep(call_seconds * k / concurrency)
            current = await grant(ahead=False)
            while current is not None:
                cid, start, fence = current
                following = asyncio.create_task(grant(ahead=True))
                answered = datetime.now(timezone.utc)
                await client.mark_answered(start.attempt_id, fence, answered)  # lingers, dropped by the finish
                await asyncio.sleep(call_seconds * rng.uniform(0.5, 1.5))
                outcomes.append(asyncio.create_task(record(cid, start, fence, answered)))
                current = await following

        marker = asyncio.create_task(watch_marker()) if flush_early_redis else None
        if marker is not None:
            await asyncio.sleep(0.6)  # the first read of the marker
        try:
            await asyncio.gather(*(slot(k) for k in range(concurrency)))
            await asyncio.gather(*outcomes)
        finally:
            done.set()
            if marker is not None:
                await marker
    return finished


def load_driver_main() -> int:
    """The --load driver process: its job on stdin (JSON), its records on stdout."""
    job = json.loads(sys.stdin.read())
    finished = asyncio.run(_drive_load(job["address"], job["token"], job["org_id"], job["batch_id"], job["ids"],
                                       job["call_seconds"], job["concurrency"],
                                       job.get("finish_linger"), job.get("finish_in_flight"),
                                       job.get("flush_early_redis", "")))
    sys.stdout.write(json.dumps(finished))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--contacts", type=int, default=200)
    ap.add_argument("--watchers", type=int, default=20)
    ap.add_argument("--drivers", type=int, default=4, help="concurrent attempts (driver threads)")
    ap.add_argument("--call-seconds", type=float, default=0.2, help="real time each call lasts (answered to end)")
    ap.add_argument("--timeout", type=float, default=50.0)
    ap.add_argument("--in-process", action="store_true", help="serve from the benchmark's own process")
    ap.add_argument("--load", action="store_true",
                    help="dispatch-like load: --concurrency calls at a time through the dialer's ServerClient")
    ap.add_argument("--concurrency", type=int, default=50, help="--load: calls at a time (dispatch benchmark: 50)")
    ap.add_argument("--finish-linger", type=float, default=None,
                    help="--load what-if: the outcome coalescer's linger in seconds (default: the dialer's)")
    ap.add_argument("--finish-in-flight", type=int, default=None,
                    help="--load what-if: BatchFinishAttempts calls in flight at once (default: the dialer's)")
    ap.add_argument("--flush-early", action="store_true",
                    help="--load: while the batch's watched marker is live, send outcomes at once (what the "
                         "dialer's outcome group commit is asked to do) instead of lingering for company")
    args = ap.parse_args()
    if args.load:
        # Defaults of the load mode (about 10 s at ~250 attempt ends/s).
        if "--contacts" not in sys.argv:
            args.contacts = 2500
        if "--watchers" not in sys.argv:
            args.watchers = 5
        if "--timeout" not in sys.argv:
            args.timeout = 90.0
        args.drivers = args.concurrency
    t0 = time.monotonic()

    from server.adapters.db.engine import migrate
    from launcher.embedded import start_embedded
    from tests.support.stack import Stack

    data_dir = Path(tempfile.mkdtemp(prefix="batchcalls-bench-watch-"))
    services = start_embedded(data_dir, persistent=False)
    stack = None
    try:
        migrate(services.database_url)
        stack = Stack(database_url=services.database_url, redis_url=services.redis_url,
                      service_token=secrets.token_urlsafe(32))
        stack.env = {
            "DATABASE_URL": stack.database_url,
            "REDIS_URL": stack.redis_url,
            "BATCHCALLS_SERVICE_TOKEN": stack.service_token,
            "BATCHCALLS_DIAL_GRACE_SECONDS": "1.0",
            "BATCHCALLS_SCHEDULER_INTERVAL_SECONDS": "0.5",
            # WATCHERS streams of one key: above the default stream caps.
            "BATCHCALLS_WATCH_MAX_PER_KEY": str(max(10, args.watchers)),
            "BATCHCALLS_WATCH_MAX_PER_ORG": str(max(50, args.watchers)),
            "BATCHCALLS_RATE_LIMIT_RPS": "0",
        }
        # --load grants each slot's next contact ahead, as the dialer does: twice the calls may be granted.
        limit = max(50, 2 * args.concurrency if args.load else 0)
        stack.start_server()
        org = stack.new_org(credits_usd=100_000, concurrency_limit=limit)
        csv_text = "name,phone\n" + "".join(f"c{i},+1628{5550000 + i:07d}\n" for i in range(args.contacts))
        with stack.channel() as ch:
            stub = bgrpc.BatchServiceStub(ch)
            batch = stub.CreateBatch(
                bpb.CreateBatchRequest(display_name="watch bench", agent=org.agent_name,
                                       from_phone_number=org.phone_number_name, csv_content=csv_text.encode(),
                                       filename="bench.csv", concurrency_limit=min(50, limit),
                                       calling_window_mode=res.CALLING_WINDOW_MODE_NONE),
                metadata=org.md(),
            ).batch
            ids: list[str] = []
            token = ""
            while True:
                page = stub.ListContacts(bpb.ListContactsRequest(parent=batch.name, page_size=100, page_token=token),
                                         metadata=org.md())
                ids += [c.contact_id for c in page.contacts]
                token = page.next_page_token
                if not token:
                    break
        address = stack.grpc_address
        internal = stack.internal_address  # DialerService: the internal listener
        if not args.in_process:
            from launcher.devstack import _read_ready

            server_proc = stack.spawn(["-m", "launcher.cli", "server"],
                                      env={"BATCHCALLS_GRPC_PORT": "0", "BATCHCALLS_AUTO_MIGRATE": "0",
                                           "BATCHCALLS_INTERNAL_ADDR": "127.0.0.1:0",
                                           "BATCHCALLS_LOG_LEVEL": "WARNING"},
                                      stdout=subprocess.PIPE, text=True)
            internal = _read_ready(server_proc, "INTERNAL_READY")
            address = _read_ready(server_proc, "SERVER_READY")
        setup = time.monotonic() - t0

        watchers = Watchers(address, org.md("member"), batch.batch_id, args.watchers)
        if not watchers.start():
            print("watchers did not start", file=sys.stderr)
            return 2

        finished: dict[tuple[str, int], tuple[float, float]] = {}
        lock = threading.Lock()
        d0 = time.monotonic()
        deadline = d0 + args.timeout
        if args.load:
            job = dict(address=internal, token=stack.service_token, org_id=org.org_id, batch_id=batch.batch_id,
                       ids=ids, call_seconds=args.call_seconds, concurrency=args.concurrency,
                       finish_linger=args.finish_linger, finish_in_flight=args.finish_in_flight,
                       flush_early_redis=stack.redis_url if args.flush_early else "")
            driver = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--load-driver"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=str(ROOT))
            try:
                out, _ = driver.communicate(json.dumps(job), timeout=args.timeout)
            except subprocess.TimeoutExpired:
                driver.kill()
                out, _ = driver.communicate()
            for k, v in (json.loads(out) if out.strip() else {}).items():
                cid, attempt = k.rsplit(":", 1)
                finished[(cid, int(attempt))] = (v[0], v[1])
        else:
            shares = [ids[i::args.drivers] for i in range(args.drivers)]
            threads = [threading.Thread(target=drive, args=(stack, org, batch.batch_id, share, finished, lock,
                                                            args.call_seconds, internal), daemon=True)
                       for share in shares]
            for t in threads:
                t.start()
            for t in threads:
                t.join(max(0.0, deadline - time.monotonic()))
        drive_s = time.monotonic() - d0
        watchers.join(max(0.5, deadline - time.monotonic()))
        watchers.close()

        from_end: list[float] = []
        from_return: list[float] = []
        missing = 0
        for (cid, attempt), (ended, returned) in finished.items():
            for i in range(args.watchers):
                arrived = watchers.arrivals.get((i, cid, attempt))
                if arrived is None:
                    missing += 1
                    continue
                from_end.append((arrived - ended) * 1000)
                from_return.append(max(0.0, arrived - returned) * 1000)

        p50, p99 = percentile(from_end, 50), percentile(from_end, 99)
        print(f"server={'in-process' if args.in_process else 'separate process'} "
              f"watchers={args.watchers} attempts={len(finished)} drivers={args.drivers} "
              f"events_measured={len(from_end)} missing={missing} setup={setup:.1f}s drive={drive_s:.1f}s "
              f"(~{len(finished) * 3 / max(drive_s, 1e-9):.0f} events/s published, "
              f"{len(finished) * 3 * args.watchers / max(drive_s, 1e-9):.0f}/s delivered)")
        print(f"streams ended at completion: {watchers.ended}/{args.watchers}"
              + (f"; errors: {watchers.errors[:3]}" if watchers.errors else ""))
        print(f"from FinishAttempt return: p50={percentile(from_return, 50):.1f} ms "
              f"p99={percentile(from_return, 99):.1f} ms max={max(from_return, default=float('nan')):.1f} ms")
        print(f"from attempt end (outcome sent): mean={statistics.fmean(from_end) if from_end else float('nan'):.1f} ms "
              f"max={max(from_end, default=float('nan')):.1f} ms")
        print(f"p50={p50:.1f} ms p99={p99:.1f} ms")
        if args.load:
            # The outcome's own trip: its group commit's wait and the server's transaction.
            trip = [(returned - ended) * 1000 for ended, returned in finished.values()]
            print(f"attempt end to FinishAttempt return (group commit + transaction): "
                  f"p50={percentile(trip, 50):.1f} ms p99={percentile(trip, 99):.1f} ms")
            print(f"load: concurrency={args.concurrency} call={args.call_seconds * 1000:.0f} ms "
                  f"outcomes={'flushed early while watched' if args.flush_early else 'dialer group commit'} "
                  f"~{len(finished) / max(drive_s, 1e-9):.0f} attempt ends/s; from attempt end "
                  f"p50={p50:.1f} ms p99={p99:.1f} ms; p99/target={p99 / TARGET_P99_MS:.2f} "
                  f"(target {TARGET_P99_MS:.0f} ms, goal {GOAL_P99_MS:.0f} ms: p99/goal={p99 / GOAL_P99_MS:.2f})")
        ok = from_end and p99 <= TARGET_P99_MS and missing == 0
        print(f"target p99<={TARGET_P99_MS:.0f} ms: {'ok' if ok else 'MISSED'}")
        return 0 if ok else 1
    finally:
        if stack is not None:
            try:
                stack.stop()
            except Exception as exc:  # noqa: BLE001
                print(f"stop: {exc}", file=sys.stderr)
        services.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["--load-driver"]:
        sys.exit(load_driver_main())
    sys.exit(main())
