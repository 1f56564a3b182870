"""Issue 15 item 4 end to end: two `batchcalls server` processes (replicas)
on one PostgreSQL and Redis, a dialer given both internal addresses (one
gRPC channel, round-robin: contract/channels.py), the simulated carrier.
One replica is killed with kill -9 mid-batch; checked at the carrier's
record: every contact reaches a final state, none is dialed beyond its max
attempts, never two calls at once to one contact, the limits hold, and the
carrier is without a live call only briefly after the kill (printed; the
bound is loose on purpose, bench/ measures speed)."""

from __future__ import annotations

import itertools
import subprocess
import time

import pytest
from batchcalls.v1 import resources_pb2 as res

from simcarrier import spawn
from simcarrier.model import number_with_outcome
from tests.support.dialing import (
    Carrier,
    assert_invariants,
    create,
    kill9,
    start_dialer,
    wait_status,
)
from tests.support.helpers import free_port

DONE = {res.BATCH_STATUS_COMPLETED}
# 180 simulated seconds last 0.9 s: a batch of 120 contacts runs several seconds.
TIME_SCALE = 0.005


@pytest.fixture()
def carrier(tmp_path):
    with spawn(time_scale=TIME_SCALE, record_file=str(tmp_path / "calls.jsonl")) as proc:
        yield Carrier(proc.url)


@pytest.fixture()
def replicas(embedded, stack):
    """Start `batchcalls server` processes; each is (process, internal address)."""
    from launcher.devstack import _read_ready

    procs: list[subprocess.Popen] = []

    def start(internal_port: int = 0) -> tuple[subprocess.Popen, str]:
        port, internal_port = free_port(), internal_port or free_port()
        env = {"BATCHCALLS_GRPC_PORT": str(port), "BATCHCALLS_INTERNAL_ADDR": f"127.0.0.1:{internal_port}",
               "BATCHCALLS_AUTO_MIGRATE": "0", "BATCHCALLS_LOG_LEVEL": "WARNING"}
        # The session server's key (trunk secrets at rest), where there is one.
        import tests.support.stack as stack_module
        key = stack.env.get("BATCHCALLS_SECRETS_KEY") or getattr(stack_module, "TEST_SECRETS_KEY", "")
        if key:
            env["BATCHCALLS_SECRETS_KEY"] = key
        p = stack.spawn(["-m", "launcher.cli", "server"], env=env, stdout=subprocess.PIPE, text=True)
        procs.append(p)
        _read_ready(p, "SERVER_READY")
        return p, f"127.0.0.1:{internal_port}"


    yield start
    for p in procs:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def idle_gaps(calls: list[dict], since: float, until: float) -> list[tuple[float, float]]:
    """Intervals within [since, until] with no call live at the carrier."""
    spans = sorted((float(c["start"]), float(c.get("end") or until)) for c in calls)
    gaps, covered = [], since
    for start, end in spans:
        if end <= covered:
            continue
        if start > covered:
            gaps.append((covered, min(start, until)))
        covered = max(covered, end)
        if covered >= until:
            break
    return [(a, b) for a, b in gaps if b > a]


def start_gap(calls: list[dict], since: float, until: float) -> float:
    """The longest time within [since, until] between two call starts."""
    starts = sorted(float(c["start"]) for c in calls if since <= float(c["start"]) <= until)
    points = [since, *starts] if since else starts
    return max((b - a for a, b in itertools.pairwise(points)), default=0.0)


def test_kill_9_of_one_replica_mid_batch_loses_nothing(stack, carrier, replicas):
    org = stack.new_org(concurrency_limit=5)
    kinds = ["random", "completed", "no_answer_then_completed", "busy", "random"]
    numbers = [number_with_outcome(kinds[i % len(kinds)], 900 + i) for i in range(120)]
    a = create(stack, org, numbers, concurrency_limit=4, max_attempts=2)
    (victim, addr1), (_, addr2) = replicas(), replicas()
    dialer = start_dialer(stack, carrier, "d-two-servers", BATCHCALLS_SERVER_ADDR=f"{addr1},{addr2}")
    try:
        deadline = time.monotonic() + 30
        while len(carrier.calls(a.batch_id)) < 30:
            assert time.monotonic() < deadline, "the dialer should be dialing through both replicas"
            time.sleep(0.02)
        killed_at = time.time()
        kill9(victim)
        wait_status(stack, org, a.name, DONE, timeout=120)
        calls = carrier.calls(a.batch_id)
        last_start = max(float(c["start"]) for c in calls)
        after = [c for c in calls if float(c["start"]) > killed_at]
        gaps = idle_gaps(calls, killed_at, last_start)
        longest = max((b - a_ for a_, b in gaps), default=0.0)
        starts_before = start_gap(calls, 0.0, killed_at)
        starts_after = start_gap(calls, killed_at, last_start)
        print(f"\n{len(calls)} calls, {len(after)} started after the kill; longest time without a live call "
              f"after the kill: {longest:.3f}s ({len(gaps)} idle interval(s)); longest time between call starts "
              f"before the kill {starts_before:.3f}s, after it {starts_after:.3f}s")
        assert after, "calls went on after the kill"
        assert longest < 5.0 and starts_after < 5.0
        assert_invariants(stack, org, carrier, [a], org_limit=5)
        assert dialer.poll() is None
    finally:
        if dialer.poll() is None:
            dialer.terminate()
            dialer.wait(timeout=20)


def test_calls_resume_within_a_second_of_a_server_answering_again(stack, carrier, replicas):
    """Both replicas killed mid-batch, one started again on its address: the
    dialer's next call starts within about a second of it answering (bounded
    reconnect back-off, StartAttempt waiting for a ready server, a claiming
    pause of at most 1 s). Printed; asserted loosely."""
    org = stack.new_org(concurrency_limit=4)
    numbers = [number_with_outcome("completed", 1100 + i) for i in range(150)]
    a = create(stack, org, numbers, concurrency_limit=4, max_attempts=1)
    (r1, addr1), (r2, addr2) = replicas(), replicas()
    dialer = start_dialer(stack, carrier, "d-resume", BATCHCALLS_SERVER_ADDR=f"{addr1},{addr2}")
    try:
        deadline = time.monotonic() + 30
        while len(carrier.calls(a.batch_id)) < 20:
            assert time.monotonic() < deadline, "the dialer should be dialing"
            time.sleep(0.02)
        kill9(r1)
        kill9(r2)
        time.sleep(3.0)  # the dialer's back-off grows to its cap meanwhile
        replicas(int(addr2.rsplit(":", 1)[1]))
        ready_at = time.time()
        deadline = time.monotonic() + 30
        while not [c for c in carrier.calls(a.batch_id) if float(c["start"]) > ready_at]:
            assert time.monotonic() < deadline, "no call after a server came back"
            time.sleep(0.02)
        first = min(float(c["start"]) for c in carrier.calls(a.batch_id) if float(c["start"]) > ready_at)
        print(f"\nfirst call {first - ready_at:.3f}s after the restarted server printed SERVER_READY")
        assert first - ready_at < 2.0
        wait_status(stack, org, a.name, DONE, timeout=120)
        assert_invariants(stack, org, carrier, [a], org_limit=4)
    finally:
        if dialer.poll() is None:
            dialer.terminate()
            dialer.wait(timeout=20)
