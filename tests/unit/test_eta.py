import heapq
import time
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.domain.eta import (
    DEFAULT_MEAN_CALL_SECONDS,
    EtaInputs,
    estimate_completion,
    remaining_seconds,
)

NOW = datetime(2024, 1, 15, 10, 31, tzinfo=timezone.utc)


def eta(**kw):
    base = dict(now=NOW, pending=0, queued_due=[], in_progress=0, concurrency=5, mean_call_seconds=60.0)
    base.update(kw)
    return estimate_completion(EtaInputs(**base))


def reference(inputs: EtaInputs) -> float:
    """Straightforward per-call heap simulation (the specification)."""
    mean = inputs.mean_call_seconds or DEFAULT_MEAN_CALL_SECONDS
    c = inputs.concurrency
    busy = min(inputs.in_progress, c)
    slots = [mean / 2] * busy + [0.0] * (c - busy)
    heapq.heapify(slots)
    last = mean / 2 if inputs.in_progress else 0.0
    for _ in range(inputs.pending):
        start = heapq.heappop(slots)
        heapq.heappush(slots, start + mean)
    for due in sorted(inputs.queued_due):
        off = max(0.0, (due - inputs.now).total_seconds())
        start = max(off, heapq.heappop(slots))
        heapq.heappush(slots, start + mean)
    extra = int(inputs.expected_extra_attempts + 0.5)
    for _ in range(extra):
        start = heapq.heappop(slots)
        heapq.heappush(slots, start + mean)
    return max([last] + slots)


def test_nothing_left_returns_now():
    assert eta() == NOW
    assert remaining_seconds(EtaInputs(now=NOW, pending=0, queued_due=[], in_progress=0,
                                       concurrency=5, mean_call_seconds=None)) == 0.0


def test_pending_fill_slots_round_robin():
    # 10 calls of 60 s on 5 slots: two rounds.
    assert eta(pending=10) == NOW + timedelta(seconds=120)
    assert eta(pending=11) == NOW + timedelta(seconds=180)
    assert eta(pending=1) == NOW + timedelta(seconds=60)


def test_ideal_completion_matches_design_formula():
    # contacts x mean / concurrency
    assert eta(pending=10_000, concurrency=50, mean_call_seconds=120) == NOW + timedelta(
        seconds=10_000 * 120 / 50
    )


def test_in_progress_are_half_done():
    assert eta(in_progress=3) == NOW + timedelta(seconds=30)
    # 5 busy slots free at 30 s, then 5 pending take 60 s
    assert eta(in_progress=5, pending=5) == NOW + timedelta(seconds=90)
    # 2 busy, 3 idle: 3 pending start now, the other 2 at 30 s
    assert eta(in_progress=2, pending=5) == NOW + timedelta(seconds=90)
    assert eta(in_progress=2, pending=3) == NOW + timedelta(seconds=60)


def test_in_progress_above_limit():
    # limit lowered to 2 while 4 calls run: they still all end at mean/2
    assert eta(in_progress=4, concurrency=2) == NOW + timedelta(seconds=30)


def test_queued_start_at_due_time():
    due = NOW + timedelta(minutes=30)
    assert eta(queued_due=[due]) == due + timedelta(seconds=60)
    # past due counts as now
    assert eta(queued_due=[NOW - timedelta(hours=1)]) == NOW + timedelta(seconds=60)
    # slots busy with pending past the due time: starts when a slot frees
    assert eta(pending=50, queued_due=[NOW + timedelta(seconds=1)]) == NOW + timedelta(seconds=660)


def test_queued_group_larger_than_concurrency():
    due = NOW + timedelta(minutes=5)
    # 12 retries due at once on 5 slots: 3 rounds from the due time
    assert eta(queued_due=[due] * 12) == due + timedelta(seconds=180)
    # slots still busy with pending work when the group is due
    assert eta(pending=25, queued_due=[NOW + timedelta(seconds=10)] * 5) == NOW + timedelta(seconds=360)


def test_default_mean_is_three_minutes():
    assert eta(pending=5, mean_call_seconds=None) == NOW + timedelta(seconds=180)
    assert eta(pending=5, mean_call_seconds=0) == NOW + timedelta(seconds=180)
    assert eta(pending=5, mean_call_seconds=float("nan")) == NOW + timedelta(seconds=180)


def test_expected_extra_attempts_add_work():
    assert eta(pending=10, expected_extra_attempts=2.6) == NOW + timedelta(seconds=180)
    assert eta(pending=10, expected_extra_attempts=0.4) == NOW + timedelta(seconds=120)


def test_zero_concurrency_with_work_is_unknown():
    assert eta(pending=1, concurrency=0) is None
    assert eta(concurrency=0) == NOW  # nothing left anyway


def test_decreases_as_work_is_done():
    """Simulate a batch draining: the remaining time never goes up."""
    pending, in_progress, done = 40, 0, 0
    previous = None
    while pending or in_progress:
        r = remaining_seconds(EtaInputs(now=NOW, pending=pending, queued_due=[], in_progress=in_progress,
                                        concurrency=5, mean_call_seconds=60))
        if previous is not None:
            assert r <= previous
        previous = r
        if in_progress < 5 and pending:
            pending -= 1
            in_progress += 1
        else:
            in_progress -= 1
            done += 1
    assert remaining_seconds(EtaInputs(now=NOW, pending=0, queued_due=[], in_progress=0,
                                       concurrency=5, mean_call_seconds=60)) == 0.0
    assert done == 40


@settings(max_examples=300, deadline=None)
@given(
    pending=st.integers(0, 60),
    in_progress=st.integers(0, 12),
    concurrency=st.integers(1, 10),
    offsets=st.lists(st.integers(-100, 2000), max_size=60),
    mean=st.floats(1, 600),
    extra=st.floats(0, 20),
)
def test_matches_reference_simulation(pending, in_progress, concurrency, offsets, mean, extra):
    # Few distinct offsets so identical due times (the grouped path) are common.
    dues = [NOW + timedelta(seconds=(o // 100) * 100) for o in offsets]
    inputs = EtaInputs(now=NOW, pending=pending, queued_due=dues, in_progress=in_progress,
                       concurrency=concurrency, mean_call_seconds=mean, expected_extra_attempts=extra)
    got = remaining_seconds(inputs)
    assert got == pytest.approx(reference(inputs), rel=1e-9, abs=1e-6)


@settings(max_examples=200, deadline=None)
@given(
    pending=st.integers(1, 40),
    concurrency=st.integers(1, 8),
    offsets=st.lists(st.integers(0, 3000), max_size=30),
)
def test_removing_work_never_increases_estimate(pending, concurrency, offsets):
    dues = [NOW + timedelta(seconds=o) for o in offsets]
    full = remaining_seconds(EtaInputs(NOW, pending, dues, 0, concurrency, 60))
    assert remaining_seconds(EtaInputs(NOW, pending - 1, dues, 0, concurrency, 60)) <= full
    if dues:
        assert remaining_seconds(EtaInputs(NOW, pending, dues[1:], 0, concurrency, 60)) <= full


def test_ten_thousand_queued_is_cheap():
    # Worst case for grouping: all due times distinct.
    dues = [NOW + timedelta(seconds=i * 7) for i in range(10_000)]
    inputs = EtaInputs(now=NOW, pending=0, queued_due=dues, in_progress=3, concurrency=50,
                       mean_call_seconds=150)
    t0 = time.perf_counter()
    for _ in range(5):
        estimate_completion(inputs)
    per_call = (time.perf_counter() - t0) / 5
    # "a few ms"; generous bound so a loaded CI machine does not flake
    assert per_call < 0.1
    same = EtaInputs(now=NOW, pending=0, queued_due=[NOW + timedelta(minutes=5)] * 10_000, in_progress=0,
                     concurrency=50, mean_call_seconds=150)
    assert estimate_completion(same) == NOW + timedelta(minutes=5, seconds=200 * 150)
