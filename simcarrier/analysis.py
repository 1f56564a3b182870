"""Checks over the simulated carrier's call record (pure, no I/O but loading).

The carrier's record is the ground truth from the callee's side, so the
concurrency and "one call per contact" invariants (docs/design.md §5, 2 and 3) are
measured here rather than from what the dialer believes it did.

A call is live on the half-open interval ``[start, end)``: a call that ends
at the same instant another starts frees its slot first. A call without an
``end`` (still live, or the carrier died) is live until the end of time.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class RecordCheck:
    """What a record says about concurrency and per-contact behaviour."""

    total_calls: int = 0
    max_concurrent: int = 0
    max_concurrent_by_org: dict[str, int] = field(default_factory=dict)
    max_concurrent_by_batch: dict[str, int] = field(default_factory=dict)
    calls_per_contact: dict[str, int] = field(default_factory=dict)
    # Contacts with two calls live at once, with one overlapping pair each.
    overlapping_contacts: dict[str, tuple[str, str]] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)
    unfinished_calls: int = 0

    @property
    def has_overlap(self) -> bool:
        return bool(self.overlapping_contacts)

    def violations(
        self,
        org_limits: Mapping[str, int] | None = None,
        batch_limits: Mapping[str, int] | None = None,
        max_attempts: int | None = None,
    ) -> list[str]:
        """Human-readable breaches of the given limits (empty when all hold)."""
        out: list[str] = []
        for org, limit in (org_limits or {}).items():
            seen = self.max_concurrent_by_org.get(org, 0)
            if seen > limit:
                out.append(f"org {org}: {seen} live calls > limit {limit}")
        for batch, limit in (batch_limits or {}).items():
            seen = self.max_concurrent_by_batch.get(batch, 0)
            if seen > limit:
                out.append(f"batch {batch}: {seen} live calls > limit {limit}")
        if max_attempts is not None:
            for contact, n in self.calls_per_contact.items():
                if n > max_attempts:
                    out.append(f"contact {contact}: {n} calls > max_attempts {max_attempts}")
        for contact, (a, b) in self.overlapping_contacts.items():
            out.append(f"contact {contact}: calls {a} and {b} overlap")
        return out


def _interval(call: Mapping[str, object]) -> tuple[float, float]:
    start = float(call["start"])  # type: ignore[arg-type]
    end_raw = call.get("end")
    end = float(end_raw) if end_raw is not None else math.inf  # type: ignore[arg-type]
    return start, end


def max_overlap(intervals: Iterable[tuple[float, float]]) -> int:
    """Maximum number of half-open intervals live at one instant.

    Sweep over events sorted by time, ends before starts at equal times.
    """
    events: list[tuple[float, int]] = []
    for start, end in intervals:
        events.append((start, 1))
        events.append((end, -1))
    events.sort(key=lambda e: (e[0], e[1]))  # -1 (end) sorts before +1 (start)
    live = best = 0
    for _, delta in events:
        live += delta
        best = max(best, live)
    return best


def check_record(calls: list[dict]) -> RecordCheck:
    """Computes a :class:`RecordCheck` from carrier call records.

    Each record needs ``start`` and may carry ``end`` (None while live),
    ``org_id``, ``batch_id``, ``contact_id``, ``call_id`` and ``outcome``.
    """
    result = RecordCheck(total_calls=len(calls))
    by_org: dict[str, list[tuple[float, float]]] = defaultdict(list)
    by_batch: dict[str, list[tuple[float, float]]] = defaultdict(list)
    by_contact: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    everything: list[tuple[float, float]] = []
    outcomes: dict[str, int] = defaultdict(int)

    for call in calls:
        interval = _interval(call)
        everything.append(interval)
        if interval[1] == math.inf:
            result.unfinished_calls += 1
        by_org[str(call.get("org_id", ""))].append(interval)
        by_batch[str(call.get("batch_id", ""))].append(interval)
        contact = call.get("contact_id")
        if contact:
            by_contact[str(contact)].append((interval[0], interval[1], str(call.get("call_id", ""))))
        outcomes[str(call.get("outcome") or "live")] += 1

    result.max_concurrent = max_overlap(everything)
    result.max_concurrent_by_org = {k: max_overlap(v) for k, v in by_org.items()}
    result.max_concurrent_by_batch = {k: max_overlap(v) for k, v in by_batch.items()}
    result.calls_per_contact = {k: len(v) for k, v in by_contact.items()}
    result.outcomes = dict(outcomes)
    for contact, spans in by_contact.items():
        spans.sort()
        latest_end, latest_id = -math.inf, ""
        for start, end, call_id in spans:
            if start < latest_end:
                result.overlapping_contacts[contact] = (latest_id, call_id)
                break
            if end > latest_end:
                latest_end, latest_id = end, call_id
    return result


def load_record(path: str | Path) -> list[dict]:
    """Reads the carrier's JSONL record file, one entry per call.

    The carrier appends a line when a call is placed, when it ends and when
    a duplicate POST arrives; the last line of each call id wins, so a file
    cut short by a crash still lists every call it received.
    """
    calls: dict[str, dict] = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line after kill -9
            calls[entry["call_id"]] = entry
    return list(calls.values())
