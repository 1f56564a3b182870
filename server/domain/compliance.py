"""The single "may we dial this contact now?" decision.

Combines the three rules the design makes invariant (section 5, invariant 8):
do-not-call, calling window in the callee's zones, per-number frequency cap.
When the answer is "not now", it also says *when*: the earliest instant at
which **all** rules allow the call, so the dialer can re-queue the contact
once instead of bouncing between a closed window and a cap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from server.domain.calling_window import CallingWindow, is_open, next_open_until
from server.domain.clock import ensure_aware_utc
from server.domain.frequency_cap import next_allowed_by_cap

__all__ = [
    "DialCheck",
    "check_dial",
    "REASON_OUTSIDE_WINDOW",
    "REASON_FREQUENCY_CAP",
    "REASON_DNC",
    "DEFAULT_HORIZON_DAYS",
    "no_opening_reason",
]

REASON_OUTSIDE_WINDOW = "outside calling window"
REASON_FREQUENCY_CAP = "frequency cap"
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
) -> DialCheck:
    """Decide whether a call to one contact may start at ``at``.

    Order: DNC first (no deferral can fix it), then the window, then the cap.
    ``window=None`` means the batch has no calling window; ``zones`` are then
    ignored. The search for an opening is bounded by ``at + horizon_days``.
    """
    at = ensure_aware_utc(at, "at")
    if on_dnc:
        return DialCheck(False, None, REASON_DNC, suppressed=True)

    if window is not None and not is_open(window, zones, at):
        reason = REASON_OUTSIDE_WINDOW
    elif next_allowed_by_cap(recent_call_starts, cap_per_24h, at) is not None:
        reason = REASON_FREQUENCY_CAP
    else:
        return _ALLOWED

    until = at + timedelta(days=horizon_days)
    when = _earliest_allowed(at, until, window, zones, recent_call_starts, cap_per_24h)
    if when is None:
        return DialCheck(False, None, no_opening_reason(horizon_days))
    return DialCheck(False, when, reason)


def _earliest_allowed(
    at: datetime,
    until: datetime,
    window: CallingWindow | None,
    zones: Sequence[str],
    starts: Sequence[datetime],
    cap: int,
) -> datetime | None:
    """First instant ``>= at`` where both window and cap allow a call.

    ``until`` bounds the search for a window opening; without a window the cap
    alone decides and always clears within 24 h of the newest counted call.

    Alternates the two rules until neither moves the instant. It terminates:
    every cap step moves past one more recorded call's 24 h mark, and there are
    finitely many calls.
    """
    t = at
    while True:
        if window is not None:
            opened = next_open_until(window, zones, t, until)
            if opened is None:
                return None
            t = opened
        cap_at = next_allowed_by_cap(starts, cap, t)
        if cap_at is None:
            return t
        t = cap_at
