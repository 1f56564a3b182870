"""Per-number frequency cap: at most N call starts to one number per rolling 24 h.

Rolling rather than per-calendar-day so that a cap of 2 can never turn into 4
calls within a few hours around midnight, and so that the answer does not
depend on whose midnight. The window is ``(at - 24h, at]``: a call that
started exactly 24 hours ago no longer counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from server.domain.clock import ensure_aware_utc

__all__ = ["CAP_WINDOW", "calls_in_window", "next_allowed_by_cap"]

CAP_WINDOW = timedelta(hours=24)


def calls_in_window(call_starts: Sequence[datetime], at: datetime) -> list[datetime]:
    """Starts that count against the cap at ``at``, oldest first (UTC)."""
    at = ensure_aware_utc(at, "at")
    lo = at - CAP_WINDOW
    starts = (ensure_aware_utc(s, "call start") for s in call_starts)
    return sorted(s for s in starts if lo < s <= at)


def next_allowed_by_cap(call_starts: Sequence[datetime], cap_per_24h: int, at: datetime) -> datetime | None:
    """``None`` if another call may start at ``at``, else the first instant it may.

    ``cap_per_24h == 0`` means no cap. With ``k`` counted calls and a cap of
    ``c`` (``k >= c``), ``k - c + 1`` of them must age out, so the answer is
    the start of the ``(k - c + 1)``-th oldest plus 24 h; normally ``k == c``
    and that is simply the oldest one. Starts later than ``at`` are ignored:
    they are not "in the last 24 h" of ``at``.
    """
    if cap_per_24h < 0:
        raise ValueError(f"frequency cap must not be negative, got {cap_per_24h}")
    if cap_per_24h == 0:
        return None
    counted = calls_in_window(call_starts, at)
    if len(counted) < cap_per_24h:
        return None
    must_expire = len(counted) - cap_per_24h + 1
    return counted[must_expire - 1] + CAP_WINDOW
