"""Estimated completion time of a batch (pure, no I/O).

The estimate simulates the dialer: ``concurrency`` slots, every call takes
``mean_call_seconds`` (ring + talk, observed over the batch's finished
attempts; 180 s, the seed's three-minute assumption, until there is one).

* Calls in progress are assumed half done: each frees its slot at
  ``now + mean / 2``.
* Pending contacts (dialable now) take the earliest free slot, one after
  another.
* Queued contacts (retries, or waiting for their calling window) start at
  ``max(next_attempt_at, earliest free slot)``; a due time in the past counts
  as "now".
* ``expected_extra_attempts`` (optional, e.g. ``remaining x observed retry
  rate``) adds that many calls, rounded half up, started as slots free after
  all the known work. Retry delays of those future retries are not modelled,
  so this part is optimistic.

The answer is the instant the last simulated call ends.

Return value: ``now`` when nothing remains (no pending, queued, in-progress
or expected extra work), so "remaining time" is exactly zero when the batch
is done; ``None`` when work remains but cannot progress (effective
concurrency < 1, e.g. the organization limit is exhausted/zero). For a fixed
``now`` the estimate never increases when work is removed, so it goes down as
the batch progresses and reaches ``now`` at the end.

Cost: O(c log c + q log q) for c slots and q queued contacts: identical due
times are grouped, and a group of at least ``c`` calls is placed in closed
form (see ``_place``), so pending work of any size costs O(c log c) and
10,000 queued contacts take a few milliseconds.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["DEFAULT_MEAN_CALL_SECONDS", "EtaInputs", "estimate_completion", "remaining_seconds"]

#: The seed's cost calculator assumes 3-minute calls; used until calls finish.
DEFAULT_MEAN_CALL_SECONDS = 180.0


@dataclass(frozen=True)
class EtaInputs:
    now: datetime
    pending: int  # never attempted, dialable now
    queued_due: list[datetime]  # next_attempt_at of queued contacts (retries, window waits)
    in_progress: int  # dialing + connected
    concurrency: int  # effective: min(batch limit, org limit)
    mean_call_seconds: float | None  # observed mean attempt (ring + talk); None/<=0 -> 180 s
    expected_extra_attempts: float = 0.0


def _mean_seconds(value: float | None) -> float:
    if value is None or not math.isfinite(value) or value <= 0:
        return DEFAULT_MEAN_CALL_SECONDS
    return float(value)


def _place(slots: list[float], n: int, mean: float, release: float) -> list[float]:
    """Place ``n`` calls of length ``mean``, none starting before ``release``,
    each on the earliest free slot (``slots``: a heap of free times).

    Returns the new heap. The greedy start times are the ``n`` smallest of
    the "opportunities" ``f_i + k * mean`` (k >= 0) of the slots, so large
    ``n`` is placed in closed form: first every slot is filled up to the
    busiest one (``hi``), after which the free times lie within one call of
    each other and further calls go round-robin, a full round adding
    ``mean`` to every slot. Small ``n`` is placed one call at a time.
    """
    if n <= 0:
        return slots
    c = len(slots)
    if n < c:
        for _ in range(n):
            start = slots[0]
            if start < release:
                start = release
            heapq.heapreplace(slots, start + mean)
        return slots
    free = [t if t > release else release for t in slots]
    hi = max(free)
    # Opportunities strictly before `hi`, per slot.
    fill = [math.ceil((hi - t) / mean) if t < hi else 0 for t in free]
    needed = sum(fill)
    if n < needed:
        heapq.heapify(free)
        return _place_one_by_one(free, n, mean)
    levelled = sorted(t + k * mean for t, k in zip(free, fill))
    rounds, rest = divmod(n - needed, c)
    shift = rounds * mean
    out = [t + shift + (mean if i < rest else 0.0) for i, t in enumerate(levelled)]
    heapq.heapify(out)
    return out


def _place_one_by_one(slots: list[float], n: int, mean: float) -> list[float]:
    for _ in range(n):
        heapq.heapreplace(slots, slots[0] + mean)
    return slots


def _simulate_seconds(inputs: EtaInputs) -> float | None:
    """Seconds from ``inputs.now`` until the last simulated call ends."""
    pending = max(0, int(inputs.pending))
    in_progress = max(0, int(inputs.in_progress))
    extra = inputs.expected_extra_attempts
    extra_calls = int(math.floor(extra + 0.5)) if extra and math.isfinite(extra) and extra > 0 else 0
    queued = inputs.queued_due

    if pending == 0 and not queued and in_progress == 0 and extra_calls == 0:
        return 0.0
    concurrency = int(inputs.concurrency)
    if concurrency < 1:
        return None

    mean = _mean_seconds(inputs.mean_call_seconds)
    busy = min(in_progress, concurrency)
    # Slot free times, in seconds from now. Calls beyond the limit (a limit
    # that was just lowered) also end at mean/2 and free no extra slot.
    slots = [mean / 2.0] * busy + [0.0] * (concurrency - busy)
    heapq.heapify(slots)
    last_end = mean / 2.0 if in_progress else 0.0

    slots = _place(slots, pending, mean, 0.0)
    if queued:
        now = inputs.now
        offsets = [(due - now).total_seconds() for due in sorted(queued)]
        heapreplace = heapq.heapreplace
        i, total = 0, len(offsets)
        while i < total:
            release = offsets[i]
            j = i + 1
            if j < total and offsets[j] == release:
                j = bisect_right(offsets, release, i)  # identical due times form one group
            if release < 0.0:
                release = 0.0
            count = j - i
            if count < concurrency:  # inline fast path of _place
                for _ in range(count):
                    start = slots[0]
                    heapreplace(slots, (start if start > release else release) + mean)
            else:
                slots = _place(slots, count, mean, release)
            i = j
    slots = _place(slots, extra_calls, mean, 0.0)

    # A slot's free time is 0, a call's end, or a release time clamped in
    # `_place` before at least one call of that release started; so the
    # largest is the end of the last call (or of the in-progress calls).
    return max(last_end, max(slots))


def remaining_seconds(inputs: EtaInputs) -> float | None:
    """Estimated seconds until completion (0.0 when done, None if stalled)."""
    return _simulate_seconds(inputs)


def estimate_completion(inputs: EtaInputs) -> datetime | None:
    """Estimated instant the batch completes; ``now`` when nothing remains,
    ``None`` when work remains but concurrency is < 1. See module docstring."""
    seconds = _simulate_seconds(inputs)
    if seconds is None:
        return None
    if seconds == 0.0:
        return inputs.now
    return inputs.now + timedelta(seconds=seconds)
