"""The single "may we dial this contact now?" decision.

Combines the rules the design makes invariant (section 5, invariant 8):
do-not-call, calling window in the callee's zones, per-number frequency cap;
and, with ``jurisdiction=True`` (issue 16), the jurisdiction rules of
:func:`server.domain.jurisdiction.evaluate` (federal, state and country
calling hours, Sunday and holiday bans, on the callee's local date, in every
zone, intersected with the window) and the per-subject cap of capped states
(:func:`server.domain.jurisdiction.subject_cap`, the stricter of it and the
organization's cap counts the same calls).
When the answer is "not now", it also says *when*: the earliest instant at
which **all** rules allow the call, so the dialer can re-queue the contact
once instead of bouncing between a closed window and a cap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from server.domain.calling_window import CallingWindow, is_open, next_open_until
from server.domain.clock import ensure_aware_utc
from server.domain.frequency_cap import next_allowed_by_cap
from server.domain.jurisdiction import Verdict, evaluate, subject_cap

__all__ = [
    "DialCheck",
    "check_dial",
    "REASON_OUTSIDE_WINDOW",
    "REASON_FREQUENCY_CAP",
    "REASON_SUBJECT_CAP",
    "REASON_DNC",
    "DEFAULT_HORIZON_DAYS",
    "no_opening_reason",
]

REASON_OUTSIDE_WINDOW = "outside calling window"
REASON_FREQUENCY_CAP = "frequency cap"
REASON_SUBJECT_CAP = "per-subject cap (state law: 3 calls per 24 h)"
REASON_DNC = "on do-not-call list"
DEFAULT_HORIZON_DAYS = 14


def no_opening_reason(horizon_days: int = DEFAULT_HORIZON_DAYS) -> str:
    """Reason used when the window never opens (e.g. weekdays exclude every day in range)."""
    return f"no calling window opening within {horizon_days} days"


@dataclass(frozen=True)
class DialCheck:
    """Outcome of :func:`check_dial`.

    ``allowed`` — dial now. Otherwise ``suppressed`` (DNC: never dial, end the
    contact SUPPRESSED), or ``defer_until`` (re-queue for that instant), or
    neither (no opening within the horizon: the caller decides, e.g. fail the
    contact or check again later). ``reason`` names the rule that blocked the
    call *now*.
    """

    allowed: bool
    defer_until: datetime | None
    reason: str
    suppressed: bool = False
    #: The jurisdiction verdict at ``at`` (``jurisdiction=True`` only): its
    #: zones are the ones enforced; the explain API shows the same verdict.
    verdict: Verdict | None = None


_ALLOWED = DialCheck(True, None, "")


def check_dial(
    *,
    at: datetime,
    window: CallingWindow | None,
    zones: Sequence[str],
    on_dnc: bool,
    recent_call_starts: Sequence[datetime],
    cap_per_24h: int,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    e164: str = "",
    batch_timezone: str = "UTC",
    jurisdiction: bool = False,
) -> DialCheck:
    """Decide whether a call to one contact may start at ``at``.

    Order: DNC first (no deferral can fix it), then the window, then the cap.
    ``window=None`` means the batch has no calling window; ``zones`` are then
    ignored. The search for an opening is bounded by ``at + horizon_days``.

    ``jurisdiction=True``: the window test is :func:`evaluate` of ``e164``
    (jurisdiction rules and ``window`` in the number's zones, ``zones`` is
    ignored; ``batch_timezone`` stands in for an unknown zone) — evaluated
    once when the contact may be called or the window alone defers it —
    and the cap is the stricter of ``cap_per_24h`` and the number's
    per-subject cap. ``recent_call_starts`` must then be given whenever
    either cap applies.
    """
    at = ensure_aware_utc(at, "at")
    if on_dnc:
        return DialCheck(False, None, REASON_DNC, suppressed=True)

    cap, cap_reason = cap_per_24h, REASON_FREQUENCY_CAP
    verdict: Verdict | None = None
    if jurisdiction:
        subject = subject_cap(e164)
        if subject is not None and (cap == 0 or subject < cap):
            cap, cap_reason = subject, REASON_SUBJECT_CAP
        verdict = evaluate(e164, at, window, batch_timezone, horizon_days=horizon_days)
        open_now = verdict.allowed
    else:
        open_now = window is None or is_open(window, zones, at)

    if not open_now:
        reason = REASON_OUTSIDE_WINDOW
    elif next_allowed_by_cap(recent_call_starts, cap, at) is not None:
        reason = cap_reason
    else:
        return _ALLOWED if verdict is None else DialCheck(True, None, "", verdict=verdict)

    until = at + timedelta(days=horizon_days)
    if verdict is not None:
        first = verdict

        def opened(t: datetime) -> datetime | None:
            v = first if t == at else evaluate(
                e164, t, window, batch_timezone, horizon_days=max(0, (until - t).days + 1)
            )
            return v.next_allowed if v.next_allowed is not None and v.next_allowed < until else None
    elif window is not None:
        def opened(t: datetime) -> datetime | None:
            return next_open_until(window, zones, t, until)
    else:
        def opened(t: datetime) -> datetime | None:
            return t

    when = _earliest_allowed(at, opened, recent_call_starts, cap)
    if when is None:
        return DialCheck(False, None, no_opening_reason(horizon_days), verdict=verdict)
    return DialCheck(False, when, reason, verdict=verdict)


def _earliest_allowed(
    at: datetime,
    opened: Callable[[datetime], datetime | None],
    starts: Sequence[datetime],
    cap: int,
) -> datetime | None:
    """First instant ``>= at`` where both window and cap allow a call.

    ``opened(t)`` is the window's first opening ``>= t`` (``None``: none
    before the horizon); without a window the cap alone decides and always
    clears within 24 h of the newest counted call.

    Alternates the two rules until neither moves the instant. It terminates:
    every cap step moves past one more recorded call's 24 h mark, and there are
    finitely many calls.
    """
    t = at
    while True:
        o = opened(t)
        if o is None:
            return None
        t = o
        cap_at = next_allowed_by_cap(starts, cap, t)
        if cap_at is None:
            return t
        t = cap_at
