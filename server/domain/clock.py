"""One injectable source of time.

Every component (server, scheduler, reconciler, dialer) asks a ``Clock`` for
"now" instead of calling ``datetime.now()`` itself, so tests and demos can move
time forward in seconds instead of sleeping through real retry delays and
calling windows. Domain rules never call a clock at all: they take the
instant as a parameter, which keeps them pure and trivially testable.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "SystemClock", "FakeClock", "ensure_aware_utc"]


def ensure_aware_utc(dt: datetime, name: str = "datetime") -> datetime:
    """Return ``dt`` converted to UTC, refusing naive datetimes.

    A naive datetime is ambiguous across server, dialer and database
    (whose local time?), so it is a programming error, not something to
    guess about.
    """
    if dt.tzinfo is None or dt.tzinfo.utcoffset(dt) is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {dt.isoformat()}")
    return dt.astimezone(timezone.utc)


@runtime_checkable
class Clock(Protocol):
    """Anything that can tell the current instant as an aware UTC datetime."""

    def now(self) -> datetime:  # pragma: no cover - protocol
        ...


class SystemClock:
    """The real wall clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def __repr__(self) -> str:
        return "SystemClock()"


class FakeClock:
    """A clock that only moves when told to.

    Thread-safe so that one instance can be shared by a test's server,
    dialer and assertions running on different threads or event loops.
    Time never goes backwards through ``advance`` (a negative step is a bug in
    the test); ``set`` may jump anywhere, for tests that need it.
    """

    def __init__(self, start: datetime) -> None:
        self._now = ensure_aware_utc(start, "start")
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        """Move forward by ``seconds`` and return the new instant."""
        if seconds < 0:
            raise ValueError(f"cannot advance a clock by a negative amount ({seconds} s)")
        with self._lock:
            self._now = self._now + timedelta(seconds=seconds)
            return self._now

    def set(self, dt: datetime) -> None:
        """Jump to the instant ``dt`` (must be timezone-aware)."""
        new = ensure_aware_utc(dt, "dt")
        with self._lock:
            self._now = new

    def __repr__(self) -> str:
        return f"FakeClock({self.now().isoformat()})"
