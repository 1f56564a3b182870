"""docs/design.md §5 invariants 1–7 end to end: the real server, real dialer
processes, the simulated carrier process; checked at the carrier's record.

Invariants: (1) no contact dialed more than max_attempts times, (2) never two
calls at once to one contact, (3) live calls never exceed the org's nor a
batch's limit at the carrier, (4) every contact of a batch that is not paused
or cancelled reaches a final state, also across kill -9 of dialers, a server
restart and a Redis flush, (5) paused: no new call starts, live calls finish
and are recorded, (6) cancelled: no call starts after the cancel returns,
(7) scheduled: no call before the scheduled instant.
"""

from __future__ import annotations

import subprocess
import time
from datetime import datetime, timedelta, timezone

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from batchcalls.v1 import batch_service_pb2 as pb, resources_pb2 as res
from simcarrier import spawn
from simcarrier.model import number_with_outcome
from tests.support.api import stub
from tests.support.helpers import free_port
from tests.support.dialing import (
    Carrier, assert_invariants, contacts, create, get, kill9, start_dialer, wait_status,
)

DONE = {res.BATCH_STATUS_COMPLETED}
# 180 simulated seconds last 0.36 s: batches run in seconds.
TIME_SCALE = 0.002


@pytest.fixture(scope="module")
def carrier(tmp_path_factory):
    record = tmp_path_factory.mktemp("carrier") / "calls.jsonl"
    with spawn(time_scale=TIME_SCALE, record_file=str(record)) as proc:
        yield Carrier(proc.url)


def mixed_numbers(n: int, offset: int = 0) -> list[str]:
    """Retries included: busy (all attempts), no answer then completed, the random mix."""
    kinds = ["random", "random", "busy", "no_answer_then_completed", "random", "completed"]
    return [number_with_outcome(kinds[i % len(kinds)], offset + i) for i in range(n)]


@pytest.fixture()
def dialers(stack, carrier):
    procs: list[subprocess.Popen] = []

    def start(name: str, **env: str) -> subprocess.Popen:
        p = start_dialer(stack, carrier, name, **env)
        procs.append(p)
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def test_seed_example_two_batches_share_the_org_limit(stack, carrier, dialers):
    """Org limit 5, batches A and B limit 5 each: never more than 5 live."""
    org = stack.new_org(concurrency_limit=5)
    a = create(stack, org, mixed_numbers(30, 0), concurrency_limit=5, max_attempts=3)
    b = create(stack, org, mixed_numbers(10, 100), concurrency_limit=5, max_attempts=3)
    dialers("d1")
    dialers("d2")
    for batch in (a, b):
        wait_status(stack, org, batch.name, DONE)
    check = assert_invariants(stack, org, carrier, [a, b], org_limit=5)
    assert check.max_concurrent_by_org[org.org_id] == 5, "the limit should be reached, not just respected"
    busy = [c for c in contacts(stack, org, a.name) if c.phone_number.endswith("0001")]
    assert busy and all(c.status == res.CONTACT_STATUS_FAILED and c.attempts == 3
                        and c.failure_reason == "permanently_failed"
                        and c.last_outcome == res.CALL_OUTCOME_BUSY for c in busy)


def test_batch_limit_below_org_limit(stack, carrier, dialers):
    org = stack.new_org(concurrency_limit=10)
    a = create(stack, org, mixed_numbers(20, 200), concurrency_limit=2, max_attempts=2)
    dialers("d1")
    wait_status(stack, org, a.name, DONE)
    check = assert_invariants(stack, org, carrier, [a], org_limit=10)
    assert check.max_concurrent_by_batch[a.batch_id] == 2


def test_kill_9_of_a_dialer_with_live_calls_and_a_restart(stack, carrier, dialers):
    org = stack.new_org(concurrency_limit=6)
    numbers = [number_with_outcome("completed_long", 300 + i) for i in range(6)] + mixed_numbers(24, 310)
    # completed_long calls last the batch's maximum: 3600 simulated s = 7.2 s here.
    a = create(stack, org, numbers, concurrency_limit=6, max_attempts=2, max_call_duration_seconds=3600)
    victim = dialers("victim")
    assert wait_live(carrier, 3), "the victim should have calls live at the carrier"
    kill9(victim)
    dialers("survivor")
    time.sleep(0.5)
    restarted = dialers("victim")  # the same id restarted
    wait_status(stack, org, a.name, DONE, timeout=120)
    assert restarted.poll() is None
    assert_invariants(stack, org, carrier, [a], org_limit=6)


def test_redis_flushall_with_calls_live(stack, carrier, dialers):
    import redis

    org = stack.new_org(concurrency_limit=4)
    numbers = [number_with_outcome("completed_long", 400 + i) for i in range(4)] + mixed_numbers(20, 410)
    a = create(stack, org, numbers, concurrency_limit=4, max_attempts=2, max_call_duration_seconds=1800)
    dialers("d1")
    assert wait_live(carrier, 3), "calls should be live when Redis is flushed"
    redis.Redis.from_url(stack.redis_url).flushall()
    wait_status(stack, org, a.name, DONE, timeout=120)
    assert_invariants(stack, org, carrier, [a], org_limit=4)


def test_pause_stops_new_calls_and_live_calls_finish(stack, carrier, dialers):
    org = stack.new_org(concurrency_limit=5)
    a = create(stack, org, mixed_numbers(40, 500), concurrency_limit=5, max_attempts=1)
    dialers("d1")
    assert wait_live(carrier, 3), "calls should be live when the batch is paused"
    with stack.channel() as ch:
        stub(ch).PauseBatch(pb.PauseBatchRequest(name=a.name), metadata=org.md())
    paused_at = time.time()
    time.sleep(2.0)
    after = [c for c in carrier.calls(a.batch_id) if c["start"] > paused_at]
    assert not after, f"{len(after)} calls started after PauseBatch returned"
    b = get(stack, org, a.name)
    assert b.status == res.BATCH_STATUS_PAUSED
    assert b.stats.dialing == 0 and b.stats.connected == 0, "live calls finish and are recorded"
    assert b.stats.pending > 0, "the queue is kept"
    with stack.channel() as ch:
        stub(ch).ResumeBatch(pb.ResumeBatchRequest(name=a.name), metadata=org.md())
    wait_status(stack, org, a.name, DONE)
    assert_invariants(stack, org, carrier, [a], org_limit=5)


def test_cancel_no_call_after_ack_and_queue_discarded(stack, carrier, dialers):
    org = stack.new_org(concurrency_limit=5)
    a = create(stack, org, mixed_numbers(40, 600), concurrency_limit=5, max_attempts=2)
    dialers("d1")
    assert wait_live(carrier, 3), "calls should be live when the batch is cancelled"
    with stack.channel() as ch:
        stub(ch).CancelBatch(pb.CancelBatchRequest(name=a.name), metadata=org.md())
    cancelled_at = time.time()
    time.sleep(2.0)
    after = [c for c in carrier.calls(a.batch_id) if c["start"] > cancelled_at]
    assert not after, f"{len(after)} calls started after CancelBatch returned"
    cs = contacts(stack, org, a.name)
    assert any(c.status == res.CONTACT_STATUS_CANCELLED for c in cs)
    assert get(stack, org, a.name).status == res.BATCH_STATUS_CANCELLED
    assert_invariants(stack, org, carrier, [a], org_limit=5)


def test_scheduled_batch_no_call_before_its_instant(stack, carrier, dialers):
    org = stack.new_org(concurrency_limit=5)
    start = datetime.now(timezone.utc) + timedelta(seconds=2)
    ts = Timestamp()
    ts.FromDatetime(start)
    dialers("d1")
    a = create(stack, org, mixed_numbers(10, 700), scheduled_start_time=ts)
    wait_status(stack, org, a.name, DONE)
    first = min(c["start"] for c in carrier.calls(a.batch_id))
    assert first >= start.timestamp(), f"first call {start.timestamp() - first:.3f}s early"
    assert_invariants(stack, org, carrier, [a], org_limit=5)


def test_server_restart_mid_batch(embedded, carrier, dialers, stack):
    """A second server process (a replica) is killed and restarted while its
    dialer works; the batch still completes with every invariant."""
    from launcher.devstack import _read_ready

    org = stack.new_org(concurrency_limit=4)
    port, internal_port = free_port(), free_port()
    env = {"BATCHCALLS_GRPC_PORT": str(port), "BATCHCALLS_INTERNAL_ADDR": f"127.0.0.1:{internal_port}",
           "BATCHCALLS_AUTO_MIGRATE": "0", "BATCHCALLS_LOG_LEVEL": "WARNING"}

    def start_server() -> subprocess.Popen:
        p = stack.spawn(["-m", "launcher.cli", "server"], env=env, stdout=subprocess.PIPE, text=True)
        _read_ready(p, "SERVER_READY")
        return p

    server = start_server()
    a = create(stack, org, mixed_numbers(30, 800), concurrency_limit=4, max_attempts=2)
    dialers("d-replica", BATCHCALLS_SERVER_ADDR=f"127.0.0.1:{internal_port}")
    time.sleep(1.0)
    kill9(server)
    time.sleep(1.0)
    server = start_server()
    try:
        wait_status(stack, org, a.name, DONE, timeout=120)
        assert_invariants(stack, org, carrier, [a], org_limit=4)
    finally:
        server.terminate()
        server.wait(timeout=20)


def wait_live(carrier: Carrier, n: int, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if carrier.live() >= n:
            return True
        time.sleep(0.02)
    return False
