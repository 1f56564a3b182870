"""check_dial: do-not-call, calling window and frequency cap combined."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.domain.calling_window import END_OF_DAY, CallingWindow, is_open, zones_for_number
from server.domain.compliance import DialCheck, check_dial
from server.domain.frequency_cap import calls_in_window

UTC = timezone.utc
TCPA = CallingWindow.parse("08:00", "21:00")
NY = ("America/New_York",)
H = timedelta(hours=1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def check(at: datetime, *, window: CallingWindow | None = TCPA, zones: tuple[str, ...] = NY,
          dnc: bool = False, starts: tuple[datetime, ...] = (), cap: int = 0) -> DialCheck:
    return check_dial(at=at, window=window, zones=zones, on_dnc=dnc,
                      recent_call_starts=starts, cap_per_24h=cap)


THU_0900_EST = utc(2026, 1, 15, 14, 0)
WED_2200_EST = utc(2026, 1, 15, 3, 0)


def test_allowed_inside_window_without_cap() -> None:
    assert check(THU_0900_EST) == DialCheck(True, None, "")


def test_do_not_call_is_suppressed_before_anything_else() -> None:
    expected = DialCheck(False, None, "on do-not-call list", suppressed=True)
    assert check(THU_0900_EST, dnc=True) == expected
    assert check(WED_2200_EST, dnc=True, starts=(WED_2200_EST,), cap=1) == expected


def test_outside_window_defers_to_next_opening() -> None:
    assert check(WED_2200_EST) == DialCheck(False, utc(2026, 1, 15, 13, 0), "outside calling window")


def test_same_instant_depends_on_callee_zone() -> None:
    # 09:00 in New York is 23:00 in Tokyo and 14:00 in London.
    tokyo = zones_for_number("+81312345678", "UTC").zones
    london = zones_for_number("+442071838750", "UTC").zones
    assert check(THU_0900_EST, zones=tokyo) == DialCheck(False, utc(2026, 1, 15, 23, 0), "outside calling window")
    assert check(THU_0900_EST, zones=london).allowed


def test_no_window_means_any_hour() -> None:
    assert check(WED_2200_EST, window=None, zones=()).allowed


def test_no_window_with_cap_defers_to_cap_even_at_night() -> None:
    result = check(WED_2200_EST, window=None, zones=(), starts=(WED_2200_EST - H,), cap=1)
    assert result == DialCheck(False, WED_2200_EST + 23 * H, "frequency cap")


def test_cap_defers_inside_window() -> None:
    starts = (utc(2026, 1, 14, 15, 0),)
    assert check(THU_0900_EST, starts=starts, cap=1) == DialCheck(False, utc(2026, 1, 15, 15, 0), "frequency cap")
    assert check(THU_0900_EST, starts=starts, cap=2).allowed


def test_cap_instant_outside_window_defers_to_next_opening_after_it() -> None:
    # Another batch (no window) called at 22:00 EST; 24 h later is outside this window.
    starts = (WED_2200_EST,)
    assert check(THU_0900_EST, starts=starts, cap=1) == DialCheck(
        False, utc(2026, 1, 16, 13, 0), "frequency cap"
    )


def test_closed_window_and_cap_defer_to_instant_satisfying_both() -> None:
    # Window opens 13:00 UTC, but yesterday's 14:00 UTC call holds the cap until 14:00 UTC.
    at = utc(2026, 1, 15, 3, 30)
    result = check(at, starts=(utc(2026, 1, 14, 14, 0),), cap=1)
    assert result == DialCheck(False, utc(2026, 1, 15, 14, 0), "outside calling window")


def test_weekday_window_and_cap_over_a_weekend() -> None:
    weekdays = CallingWindow.parse("08:00", "21:00", [1, 2, 3, 4, 5])
    friday_night = utc(2026, 1, 17, 2, 30)  # Fri 21:30 EST
    result = check(friday_night, window=weekdays, starts=(utc(2026, 1, 16, 20, 0),), cap=1)
    assert result == DialCheck(False, utc(2026, 1, 19, 13, 0), "outside calling window")


def test_dst_day_deferral_uses_new_offset() -> None:
    # Saturday 2026-03-07 22:00 EST; next 08:00 is Sunday after the spring-forward (EDT).
    assert check(utc(2026, 3, 8, 3, 0)).defer_until == utc(2026, 3, 8, 12, 0)


def test_no_opening_within_horizon() -> None:
    monday_only = CallingWindow.parse("08:00", "21:00", [1])
    result = check(THU_0900_EST, window=monday_only, zones=("Asia/Tokyo", "America/Los_Angeles"))
    assert result == DialCheck(False, None, "no calling window opening within 14 days")
    assert not result.suppressed


def test_naive_instant_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        check(datetime(2026, 1, 15, 14, 0))


# ---------------------------------------------------------------- properties

ZONE_SETS = [
    zones_for_number(n, "UTC").zones
    for n in ("+12126647665", "+14155552671", "+442071838750", "+919876543210",
              "+81312345678", "+61212345678", "+61412345678")
] + [("America/Chicago",)]  # what a toll-free number falls back to in a Chicago batch


@st.composite
def windows(draw: st.DrawFn) -> CallingWindow | None:
    if draw(st.booleans()) and draw(st.booleans()):
        return None
    start = draw(st.integers(0, 24 * 60 - 1))
    end = draw(st.integers(start + 1, 24 * 60))
    days = draw(st.frozensets(st.integers(1, 7), min_size=1))
    end_t = END_OF_DAY if end == 24 * 60 else time(end // 60, end % 60)
    return CallingWindow(time(start // 60, start % 60), end_t, days)


@settings(max_examples=300, deadline=None)
@given(
    window=windows(),
    zones=st.sampled_from(ZONE_SETS),
    at=st.datetimes(min_value=datetime(2025, 12, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)),
    dnc=st.booleans(),
    ages=st.lists(st.integers(0, 36 * 3600), max_size=5),
    cap=st.integers(0, 3),
)
def test_allowed_implies_every_rule_holds_and_deferral_is_exact(
    window: CallingWindow | None, zones: tuple[str, ...], at: datetime, dnc: bool, ages: list[int], cap: int
) -> None:
    starts = tuple(at - timedelta(seconds=a) for a in ages)

    def dial(t: datetime) -> DialCheck:
        return check_dial(at=t, window=window, zones=zones, on_dnc=dnc,
                          recent_call_starts=starts, cap_per_24h=cap)

    result = dial(at)
    if result.allowed:
        assert not dnc
        assert window is None or is_open(window, zones, at)
        assert cap == 0 or len(calls_in_window(starts, at)) < cap
        assert result == DialCheck(True, None, "")
        return
    if dnc:
        assert result.suppressed and result.defer_until is None
        return
    assert not result.suppressed
    assert result.reason in {"outside calling window", "frequency cap",
                             "no calling window opening within 14 days"}
    if result.defer_until is None:
        assert result.reason == "no calling window opening within 14 days"
        return
    # Deferral lands on an allowed instant, and not one second later than needed.
    assert result.defer_until > at
    assert dial(result.defer_until).allowed
    assert not dial(result.defer_until - timedelta(seconds=1)).allowed
