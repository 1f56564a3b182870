"""The carrier's call registry: plays each call's plan on event-loop timers.

Everything here runs on one event loop and never blocks, so no locks: a call
is placed, answered and ended by loop callbacks, and the live counters per
organization, batch and number change at exactly those instants. That makes
the counters (and their maxima) the ground truth the concurrency invariants
of docs/design.md §5 are checked against.

Timing follows docs/design.md §6: the plan from :mod:`simcarrier.model` is in
simulated seconds, and every simulated second lasts ``time_scale`` real
seconds here; reported talk (``duration_seconds``) stays in simulated
seconds, because that is what billing and analytics see.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict, deque
from typing import Any

from simcarrier.calls import RECORDING_URI, STATE_RANK, Call, fake_transcript
from simcarrier.model import SimulationProfile, plan_call
from simcarrier.record import RecordFile

log = logging.getLogger("simcarrier")

#: Ring timeout and maximum call duration (simulated seconds) of a POST that gives none.
DEFAULT_RING_TIMEOUT_SECONDS = 30.0
DEFAULT_MAX_CALL_DURATION_SECONDS = 600.0


class Carrier:
    """Call registry, timers and live-call counters."""

    def __init__(self, time_scale: float = 1.0, seed: int | str = 0, record_file: str | None = None, *,
                 cps_limit: float | None = None, pushback_retry_after: float | None = 2.0) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        self.time_scale = time_scale
        self.seed = seed
        self.record_file = RecordFile(record_file)
        #: Carrier push-back (docs/pacing.md): calls per second accepted per
        #: caller ("from") number in any sliding second, None = no limit; a
        #: call over it is refused with 503 and this Retry-After (seconds;
        #: None = no header). ``set_pushback`` refuses every call for a while.
        self.cps_limit = cps_limit if cps_limit and cps_limit > 0 else None
        self.pushback_retry_after = pushback_retry_after
        self._reset_state()

    def _reset_state(self) -> None:
        self.calls: dict[str, Call] = {}
        self.calls_to_number: dict[str, int] = defaultdict(int)
        self.live_calls = 0
        self.live_by_org: dict[str, int] = defaultdict(int)
        self.live_by_batch: dict[str, int] = defaultdict(int)
        self.live_by_number: dict[str, int] = defaultdict(int)
        self.max_live_calls = 0
        self.max_live_by_org: dict[str, int] = {}
        self.max_live_by_batch: dict[str, int] = {}
        self.max_live_by_number: dict[str, int] = {}
        self.duplicate_posts = 0
        # DELETE of an unknown call id: a POST racing behind it must not ring.
        self.cancelled_before_placed: set[str] = set()
        #: Wall-clock starts of accepted calls in the last second, per caller number.
        self._recent_starts: dict[str, deque[float]] = defaultdict(deque)
        #: A push-back period: (until wall time, status, reason, Retry-After or None).
        self.pushback_period: tuple[float, int, str, float | None] | None = None
        self.refused_total = 0

    def close(self) -> None:
        self.record_file.close()

    # -- carrier push-back ------------------------------------------------------

    def set_pushback(self, seconds: float, *, status: int = 503, reason: str = "Service Unavailable",
                     retry_after: float | None = 2.0) -> float:
        """Refuse every new call for ``seconds`` (real) with ``status`` and
        ``retry_after``; returns the end of the period (epoch seconds)."""
        until = time.time() + max(0.0, seconds)
        self.pushback_period = (until, status, reason, retry_after)
        return until

    def refusal(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        """The refusal of a new call (push-back period, or over the CPS
        limit of its caller number), recorded; None when it is accepted.
        A known call id (a retried POST) is never refused."""
        if payload.get("call_id") in self.calls:
            return None
        now = time.time()
        caller = str(payload.get("from", ""))
        refused: tuple[int, str, float | None] | None = None
        period = self.pushback_period
        if period is not None and now < period[0]:
            refused = period[1:]
        elif self.cps_limit is not None:
            starts = self._recent_starts[caller]
            while starts and starts[0] <= now - 1.0:
                starts.popleft()
            if len(starts) + 1 > self.cps_limit:
                refused = (503, "CPS limit exceeded", self.pushback_retry_after)
        if refused is None:
            return None
        status, reason, retry_after = refused
        self.refused_total += 1
        record = {
            "call_id": str(payload.get("call_id")), "org_id": str(payload.get("org_id", "")),
            "batch_id": str(payload.get("batch_id", "")), "contact_id": str(payload.get("contact_id", "")),
            "agent_id": str(payload.get("agent_id", "")), "to": str(payload.get("to", "")), "from": caller,
            "attempt": int(number_or(payload.get("attempt"), 1)), "start": now, "answer": None, "end": now,
            "state": "refused", "outcome": "refused", "detail": reason, "sip_code": status,
            "duration_seconds": 0.0, "behaviour": "refused", "hung_up_by_caller": False, "duplicate_posts": 0,
            "refused": True, "retry_after": retry_after,
        }
        self.record_file.append(record)
        return record

    # -- placing and ending calls ----------------------------------------------

    def place(self, payload: dict[str, Any]) -> tuple[Call | None, bool]:
        """Places a call, or returns the existing one for a known call id.

        Returns ``(call, True)`` for a new call and ``(call, False)`` for a
        known id (POST is idempotent on ``call_id``, so a dialer may retry it).
        Returns ``(None, False)`` when the caller hung up this call id before
        the POST arrived (a CANCEL overtaking its INVITE): nothing is placed.
        """
        call_id = payload["call_id"]
        if call_id in self.cancelled_before_placed:
            return None, False
        existing = self.calls.get(call_id)
        if existing is not None:
            existing.duplicate_posts += 1
            self.duplicate_posts += 1
            log.warning("duplicate POST for call %s (state %s)", call_id, existing.state)
            self.record_file.append(existing.record())
            return existing, False

        loop = asyncio.get_running_loop()
        to = str(payload.get("to", ""))
        self.calls_to_number[to] += 1
        ring_timeout = number_or(payload.get("ring_timeout_seconds"), DEFAULT_RING_TIMEOUT_SECONDS)
        max_duration = number_or(payload.get("max_call_duration_seconds"), DEFAULT_MAX_CALL_DURATION_SECONDS)
        plan = plan_call(
            call_id=call_id,
            to_number=to,
            profile=SimulationProfile.from_mapping(payload.get("simulation")),
            ring_timeout=ring_timeout,
            max_call_duration=max_duration,
            nth_call_to_number=self.calls_to_number[to],
            seed=self.seed,
        )
        variables = payload.get("variables") or {}
        call = Call(
            call_id=call_id,
            org_id=str(payload.get("org_id", "")),
            batch_id=str(payload.get("batch_id", "")),
            contact_id=str(payload.get("contact_id", "")),
            agent_id=str(payload.get("agent_id", "")),
            to=to,
            from_=str(payload.get("from", "")),
            attempt=int(number_or(payload.get("attempt"), 1)),
            ring_timeout=ring_timeout,
            max_duration=max_duration,
            plan=plan,
            start=time.time(),
            start_mono=loop.time(),
            recording=bool(payload.get("recording_enabled")),
            transcript_enabled=bool(payload.get("transcript_enabled")),
            variables={str(k): str(v) for k, v in variables.items()} if isinstance(variables, dict) else {},
        )
        self.calls[call_id] = call
        if self.cps_limit is not None:
            self._recent_starts[call.from_].append(call.start)
        self._count_live(call, +1)
        scale = self.time_scale
        if plan.answer_after is not None:
            call.timers.append(loop.call_at(call.start_mono + plan.answer_after * scale, self._answer, call))
        call.timers.append(loop.call_at(call.start_mono + plan.end_after * scale, self._end_naturally, call))
        self.record_file.append(call.record())
        return call, True

    def _count_live(self, call: Call, delta: int) -> None:
        self.live_calls += delta
        self.live_by_org[call.org_id] += delta
        self.live_by_batch[call.batch_id] += delta
        self.live_by_number[call.to] += delta
        if delta > 0:
            self.max_live_calls = max(self.max_live_calls, self.live_calls)
            _raise_max(self.max_live_by_org, call.org_id, self.live_by_org[call.org_id])
            _raise_max(self.max_live_by_batch, call.batch_id, self.live_by_batch[call.batch_id])
            _raise_max(self.max_live_by_number, call.to, self.live_by_number[call.to])
        else:
            # Drop zero entries so long runs with many numbers stay small.
            for table, key in ((self.live_by_org, call.org_id), (self.live_by_batch, call.batch_id), (self.live_by_number, call.to)):
                if table[key] <= 0:
                    del table[key]

    def _answer(self, call: Call) -> None:
        if call.state != "ringing":
            return
        call.state = "in_progress"
        call.answer = time.time()
        call.answer_mono = asyncio.get_running_loop().time()
        call.notify()

    def _end_naturally(self, call: Call) -> None:
        plan = call.plan
        self._finish(call, plan.outcome, plan.detail, plan.sip_code, plan.talk_seconds)

    def _finish(self, call: Call, outcome: str, detail: str, sip_code: int, talk: float) -> None:
        if call.state == "ended":
            return
        for handle in call.timers:
            handle.cancel()
        call.timers.clear()
        if call.answer is None and call.plan.answer_after is not None and outcome in ("completed", "agent_error", "voicemail"):
            # The answer timer fires before the end timer, so this is a guard:
            # a talk is never reported without an answer instant.
            self._answer(call)
        call.state = "ended"
        call.end = time.time()
        call.outcome = outcome
        call.detail = detail
        call.sip_code = sip_code
        call.duration_seconds = round(talk, 3) if call.answer is not None else 0.0
        if call.answer is not None:
            if call.recording:
                call.recording_uri = RECORDING_URI.format(call_id=call.call_id)
            if call.transcript_enabled:
                call.transcript = fake_transcript(call)
        self._count_live(call, -1)
        self.record_file.append(call.record())
        call.notify()

    def hang_up(self, call: Call) -> None:
        """The caller hangs up (CANCEL before answer, BYE after)."""
        if call.state == "ended":
            return
        call.hung_up_by_caller = True
        if call.answer_mono is None:
            self._finish(call, "no_answer", "cancelled by caller", 487, 0.0)
        else:
            talk = (asyncio.get_running_loop().time() - call.answer_mono) / self.time_scale
            outcome = "voicemail" if call.plan.outcome == "voicemail" else "completed"
            self._finish(call, outcome, "hung up by caller", 200, min(talk, call.max_duration))

    def forget_before_placed(self, call_id: str) -> None:
        """A hang-up for a call id never placed: a POST of that id arriving later places nothing."""
        self.cancelled_before_placed.add(call_id)

    async def wait(self, call: Call, after: str, timeout: float) -> None:
        """Returns when the call's state is past ``after`` or at the timeout (real seconds)."""
        if STATE_RANK[call.state] > STATE_RANK.get(after, 0):
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        call.waiters.append(fut)
        handle = loop.call_later(timeout, _resolve, fut)
        try:
            await fut
        finally:
            handle.cancel()
            if fut in call.waiters:
                call.waiters.remove(fut)

    def reset(self) -> None:
        """Ends live calls (carrier_error), forgets everything, truncates the record."""
        for call in list(self.calls.values()):
            if call.state != "ended":
                self._finish(call, "carrier_error", "carrier reset", 503, 0.0)
        self._reset_state()
        self.record_file.truncate()

    # -- reading -------------------------------------------------------------

    def list_calls(self, filters: dict[str, str]) -> list[dict[str, Any]]:
        """Records of every call received, filtered by ``batch_id``, ``org_id`` and ``contact_id``."""
        out = []
        for call in self.calls.values():
            if "batch_id" in filters and call.batch_id != filters["batch_id"]:
                continue
            if "org_id" in filters and call.org_id != filters["org_id"]:
                continue
            if "contact_id" in filters and call.contact_id != filters["contact_id"]:
                continue
            out.append(call.record())
        return out

    def stats(self) -> dict[str, Any]:
        """Live and maximum live calls per org, batch and number, and totals."""
        return {
            "live_calls": self.live_calls,
            "max_live_calls": self.max_live_calls,
            "live_by_org": dict(self.live_by_org),
            "live_by_batch": dict(self.live_by_batch),
            "max_live_calls_by_org": dict(self.max_live_by_org),
            "max_live_by_batch": dict(self.max_live_by_batch),
            "max_live_by_number": dict(self.max_live_by_number),
            "max_live_any_number": max(self.max_live_by_number.values(), default=0),
            "total_calls": len(self.calls),
            "refused_total": self.refused_total,
            "duplicate_posts": self.duplicate_posts,
            "time_scale": self.time_scale,
        }


def number_or(value: Any, default: float) -> float:
    """``value`` as a float, or ``default`` when it is missing or not a number."""
    try:
        return float(value) if value is not None else default
    except (TypeError, ValueError):
        return default


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _raise_max(table: dict[str, int], key: str, value: int) -> None:
    if value > table.get(key, 0):
        table[key] = value
