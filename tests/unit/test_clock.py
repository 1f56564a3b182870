"""The injectable clock: real UTC time, or a fake that moves only when told."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from server.domain.clock import Clock, FakeClock, SystemClock

START = datetime(2026, 3, 8, 6, 59, 30, tzinfo=timezone.utc)


def test_system_clock_is_aware_utc() -> None:
    now = SystemClock().now()
    assert now.utcoffset() == timedelta(0)
    assert isinstance(SystemClock(), Clock)


def test_fake_clock_advances_and_sets() -> None:
    clock = FakeClock(START)
    assert isinstance(clock, Clock)
    assert clock.now() == START
    assert clock.advance(300) == START + timedelta(minutes=5)
    assert clock.now() == START + timedelta(minutes=5)
    clock.set(datetime(2026, 11, 1, 1, 30, tzinfo=ZoneInfo("America/New_York")))
    assert clock.now() == datetime(2026, 11, 1, 5, 30, tzinfo=timezone.utc)
    assert clock.now().tzinfo == timezone.utc


def test_fake_clock_refuses_naive_times_and_going_backwards() -> None:
    with pytest.raises(ValueError):
        FakeClock(datetime(2026, 1, 1))
    clock = FakeClock(START)
    with pytest.raises(ValueError):
        clock.set(datetime(2026, 1, 1))
    with pytest.raises(ValueError):
        clock.advance(-1)
