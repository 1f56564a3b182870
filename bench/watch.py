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
"""

from __future__ import annotations

import argparse
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--contacts", type=int, default=200)
    ap.add_argument("--watchers", type=int, default=20)
    ap.add_argument("--drivers", type=int, default=4, help="concurrent attempts (driver threads)")
    ap.add_argument("--call-seconds", type=float, default=0.2, help="real time each call lasts (answered to end)")
    ap.add_argument("--timeout", type=float, default=50.0)
    ap.add_argument("--in-process", action="store_true", help="serve from the benchmark's own process")
    args = ap.parse_args()
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
        stack.start_server()
        org = stack.new_org(credits_usd=100_000, concurrency_limit=50)
        csv_text = "name,phone\n" + "".join(f"c{i},+1628555{i:04d}\n" for i in range(args.contacts))
        with stack.channel() as ch:
            stub = bgrpc.BatchServiceStub(ch)
            batch = stub.CreateBatch(
                bpb.CreateBatchRequest(display_name="watch bench", agent=org.agent_name,
                                       from_phone_number=org.phone_number_name, csv_content=csv_text.encode(),
                                       filename="bench.csv", concurrency_limit=50,
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
        shares = [ids[i::args.drivers] for i in range(args.drivers)]
        threads = [threading.Thread(target=drive, args=(stack, org, batch.batch_id, share, finished, lock,
                                                        args.call_seconds, internal), daemon=True) for share in shares]
        d0 = time.monotonic()
        for t in threads:
            t.start()
        deadline = d0 + args.timeout
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
    sys.exit(main())
