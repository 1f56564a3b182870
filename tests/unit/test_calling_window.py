"""Calling windows in the callee's local time: zones, DST, weekdays, multi-zone numbers."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.domain.calling_window import (
    END_OF_DAY,
    CalleeZones,
    CallingWindow,
    is_open,
    next_open,
    resolve_zones,
    validate_timezone,
    zones_for_number,
)

UTC = timezone.utc
TCPA = CallingWindow.parse("08:00", "21:00")
WEEKDAYS_ONLY = CallingWindow.parse("08:00", "21:00", [1, 2, 3, 4, 5])
NY = ("America/New_York",)

NYC = "+12126647665"
SAN_FRANCISCO = "+14155552671"
LONDON = "+442071838750"
INDIA = "+919876543210"
TOKYO = "+81312345678"
SYDNEY = "+61212345678"
AU_MOBILE = "+61412345678"
US_TOLL_FREE = "+18005551234"
AU_MOBILE_ZONES = (
    "Australia/Adelaide",
    "Australia/Brisbane",
    "Australia/Eucla",
    "Australia/Lord_Howe",
    "Australia/Perth",
    "Australia/Sydney",
    "Indian/Christmas",
    "Indian/Cocos",
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# ---------------------------------------------------------------- parsing


def test_parse_hh_mm() -> None:
    w = CallingWindow.parse("08:00", "21:00")
    assert (w.start, w.end) == (time(8), time(21))
    assert w.weekdays == frozenset(range(1, 8))


def test_parse_weekdays_and_24_00_end() -> None:
    w = CallingWindow.parse("9:30", "24:00", [6, 7])
    assert w.start == time(9, 30) and w.end == END_OF_DAY
    assert w.weekdays == frozenset({6, 7})
    assert str(w) == "09:30–24:00 days 6,7"
    assert (w.start_text, w.end_text) == ("09:30", "24:00")
    assert CallingWindow.parse(w.start_text, w.end_text, w.weekdays) == w


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("8am", "21:00", "HH:MM"),
        ("08:00", "", "HH:MM"),
        ("25:00", "26:00", "not a time of day"),
        ("08:60", "21:00", "not a time of day"),
        ("24:00", "24:00", "not a time of day"),
        ("21:00", "08:00", "overnight"),
        ("08:00", "08:00", "start before it ends"),
    ],
)
def test_parse_rejects_with_readable_message(start: str, end: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CallingWindow.parse(start, end)


@pytest.mark.parametrize("days", [[0], [8], [1, 9]])
def test_parse_rejects_bad_weekdays(days: list[int]) -> None:
    with pytest.raises(ValueError, match="ISO numbers"):
        CallingWindow.parse("08:00", "21:00", days)


def test_constructor_rejects_no_weekdays() -> None:
    with pytest.raises(ValueError, match="at least one weekday"):
        CallingWindow(time(8), time(21), frozenset())


# ---------------------------------------------------------------- zones of a number


@pytest.mark.parametrize(
    ("number", "zones"),
    [
        (NYC, ("America/New_York",)),
        ("+12125550123", ("America/New_York",)),
        (SAN_FRANCISCO, ("America/Los_Angeles",)),
        (LONDON, ("Europe/London",)),
        (INDIA, ("Asia/Calcutta",)),
        (TOKYO, ("Asia/Tokyo",)),
        (SYDNEY, ("Australia/Sydney",)),
        (AU_MOBILE, AU_MOBILE_ZONES),
    ],
)
def test_zones_for_geographic_numbers(number: str, zones: tuple[str, ...]) -> None:
    assert zones_for_number(number, "Europe/Berlin") == CalleeZones(zones, False)


def test_toll_free_number_uses_batch_zone() -> None:
    assert zones_for_number(US_TOLL_FREE, "America/Chicago") == CalleeZones(("America/Chicago",), True)


@pytest.mark.parametrize("number", ["+80012345678", "not a number", "+999"])
def test_unknown_or_unparseable_number_uses_batch_zone(number: str) -> None:
    assert zones_for_number(number, "Asia/Tokyo") == CalleeZones(("Asia/Tokyo",), True)


@pytest.mark.parametrize("tz", ["", "Mars/Olympus", "America", "../etc/passwd"])
def test_unknown_batch_timezone_is_rejected(tz: str) -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        zones_for_number(NYC, tz)
    with pytest.raises(ValueError, match="unknown time zone"):
        validate_timezone(tz)


# ---------------------------------------------------------------- is_open, single zone


def test_new_york_winter_boundaries_are_exact() -> None:
    # Thursday 2026-01-15, EST = UTC-5: open 13:00–02:00 UTC.
    assert not is_open(TCPA, NY, utc(2026, 1, 15, 12, 59, 59))
    assert is_open(TCPA, NY, utc(2026, 1, 15, 13, 0, 0))
    assert is_open(TCPA, NY, utc(2026, 1, 16, 1, 59, 59))
    assert not is_open(TCPA, NY, utc(2026, 1, 16, 2, 0, 0))


def test_same_instant_differs_by_callee_zone() -> None:
    at = utc(2026, 1, 15, 14, 0)  # 09:00 New York, 06:00 San Francisco, 23:00 Tokyo
    assert is_open(TCPA, ("America/New_York",), at)
    assert not is_open(TCPA, ("America/Los_Angeles",), at)
    assert not is_open(TCPA, ("Asia/Tokyo",), at)
    assert is_open(TCPA, ("Europe/London",), at)


def test_end_of_day_window_is_open_until_midnight() -> None:
    w = CallingWindow.parse("20:00", "24:00")
    assert is_open(w, ("UTC",), utc(2026, 1, 15, 23, 59, 59))
    assert not is_open(w, ("UTC",), utc(2026, 1, 16, 0, 0, 0))


def test_is_open_refuses_naive_instants_and_empty_zones() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        is_open(TCPA, NY, datetime(2026, 1, 15, 14, 0))
    with pytest.raises(ValueError, match="at least one time zone"):
        is_open(TCPA, (), utc(2026, 1, 15, 14, 0))
    with pytest.raises(TypeError):
        is_open(TCPA, "America/New_York", utc(2026, 1, 15, 14, 0))


# ---------------------------------------------------------------- next_open, single zone


def test_next_open_returns_at_itself_when_open() -> None:
    at = datetime(2026, 1, 15, 15, 7, 13, 250000, tzinfo=UTC)
    assert next_open(TCPA, NY, at) == at


def test_next_open_after_close_is_next_morning() -> None:
    assert next_open(TCPA, NY, utc(2026, 1, 16, 2, 0)) == utc(2026, 1, 16, 13, 0)


@pytest.mark.parametrize(
    ("zone", "at", "expected"),
    [
        ("America/Los_Angeles", utc(2026, 1, 15, 6, 0), utc(2026, 1, 15, 16, 0)),  # PST
        ("Europe/London", utc(2026, 1, 15, 5, 0), utc(2026, 1, 15, 8, 0)),  # GMT
        ("Asia/Calcutta", utc(2026, 1, 15, 0, 0), utc(2026, 1, 15, 2, 30)),  # IST +05:30
        ("Asia/Tokyo", utc(2026, 1, 14, 13, 0), utc(2026, 1, 14, 23, 0)),  # JST, previous UTC day
        ("Australia/Sydney", utc(2026, 1, 15, 12, 0), utc(2026, 1, 15, 21, 0)),  # AEDT +11
    ],
)
def test_next_open_in_several_zones(zone: str, at: datetime, expected: datetime) -> None:
    assert next_open(TCPA, (zone,), at) == expected


def test_dst_spring_forward_shifts_utc_opening() -> None:
    # 2026-03-08: New York moves from EST (-5) to EDT (-4) at 02:00 local.
    assert next_open(TCPA, NY, utc(2026, 3, 7, 2, 0)) == utc(2026, 3, 7, 13, 0)
    assert next_open(TCPA, NY, utc(2026, 3, 8, 2, 0)) == utc(2026, 3, 8, 12, 0)
    assert not is_open(TCPA, NY, utc(2026, 3, 8, 11, 59, 59))
    assert is_open(TCPA, NY, utc(2026, 3, 9, 0, 59))  # 20:59 EDT
    assert not is_open(TCPA, NY, utc(2026, 3, 9, 1, 0))  # 21:00 EDT


def test_dst_fall_back_shifts_utc_opening() -> None:
    # 2026-11-01: New York moves from EDT (-4) back to EST (-5) at 02:00 local.
    assert not is_open(TCPA, NY, utc(2026, 11, 1, 1, 0))  # Oct 31 21:00 EDT
    assert next_open(TCPA, NY, utc(2026, 11, 1, 1, 0)) == utc(2026, 11, 1, 13, 0)
    assert not is_open(TCPA, NY, utc(2026, 11, 1, 12, 30))  # 07:30 EST, would be 08:30 EDT


def test_window_starting_in_the_skipped_hour_opens_at_the_jump() -> None:
    # 02:00–02:59 does not exist in New York on 2026-03-08; the clock jumps to 03:00 EDT (07:00 UTC).
    w = CallingWindow.parse("02:30", "04:00")
    assert next_open(w, NY, utc(2026, 3, 8, 5, 0)) == utc(2026, 3, 8, 7, 0)
    assert not is_open(w, NY, utc(2026, 3, 8, 6, 59, 59))  # 01:59:59 EST
    assert is_open(w, NY, utc(2026, 3, 8, 7, 59, 59))  # 03:59:59 EDT
    assert not is_open(w, NY, utc(2026, 3, 8, 8, 0))  # 04:00 EDT


def test_window_in_the_repeated_hour_is_open_on_both_passes() -> None:
    # 01:00–01:59 happens twice in New York on 2026-11-01 (EDT, then EST).
    w = CallingWindow.parse("01:30", "03:00")
    assert next_open(w, NY, utc(2026, 11, 1, 4, 0)) == utc(2026, 11, 1, 5, 30)  # 01:30 EDT
    assert not is_open(w, NY, utc(2026, 11, 1, 6, 0))  # 01:00 EST
    assert next_open(w, NY, utc(2026, 11, 1, 6, 0)) == utc(2026, 11, 1, 6, 30)  # 01:30 EST
    assert is_open(w, NY, utc(2026, 11, 1, 7, 59, 59))  # 02:59:59 EST


def test_window_reopened_by_the_fall_back_jump_itself() -> None:
    # 00:30–01:30: closes at 01:30 EDT, reopens when the clock falls back to 01:00 EST (06:00 UTC).
    w = CallingWindow.parse("00:30", "01:30")
    assert not is_open(w, NY, utc(2026, 11, 1, 5, 31))
    assert next_open(w, NY, utc(2026, 11, 1, 5, 31)) == utc(2026, 11, 1, 6, 0)


def test_london_spring_forward() -> None:
    # 2026-03-29: GMT -> BST. 08:00 local is 08:00 UTC the day before and 07:00 UTC that day.
    assert next_open(TCPA, ("Europe/London",), utc(2026, 3, 28, 0, 0)) == utc(2026, 3, 28, 8, 0)
    assert next_open(TCPA, ("Europe/London",), utc(2026, 3, 29, 0, 0)) == utc(2026, 3, 29, 7, 0)


# ---------------------------------------------------------------- weekdays


def test_weekday_filter_skips_the_weekend() -> None:
    # Friday 2026-01-16 21:30 EST (Saturday 02:30 UTC) -> Monday 2026-01-19 08:00 EST.
    assert next_open(WEEKDAYS_ONLY, NY, utc(2026, 1, 17, 2, 30)) == utc(2026, 1, 19, 13, 0)
    assert not is_open(WEEKDAYS_ONLY, NY, utc(2026, 1, 17, 15, 0))  # Saturday 10:00 EST


def test_weekday_is_the_callees_local_weekday() -> None:
    # Monday 08:00 in Tokyo is still Sunday 23:00 in UTC.
    monday_only = CallingWindow.parse("08:00", "21:00", [1])
    assert next_open(monday_only, ("Asia/Tokyo",), utc(2026, 1, 17, 0, 0)) == utc(2026, 1, 18, 23, 0)


def test_next_open_none_beyond_horizon() -> None:
    sundays = CallingWindow.parse("08:00", "21:00", [7])
    at = utc(2026, 1, 13, 12, 0)  # Tuesday
    assert next_open(sundays, NY, at, horizon_days=3) is None
    assert next_open(sundays, NY, at, horizon_days=14) == utc(2026, 1, 18, 13, 0)


# ---------------------------------------------------------------- several zones


def test_au_mobile_must_be_open_in_every_possible_zone() -> None:
    # January: Lord Howe/Sydney +11 ... Cocos +06:30. Shared 08–21 is 01:30–10:00 UTC.
    assert next_open(TCPA, AU_MOBILE_ZONES, utc(2026, 1, 15, 0, 0)) == utc(2026, 1, 15, 1, 30)
    assert is_open(TCPA, AU_MOBILE_ZONES, utc(2026, 1, 15, 9, 59, 59))
    assert not is_open(TCPA, AU_MOBILE_ZONES, utc(2026, 1, 15, 10, 0))
    # A Sydney landline at the same instant is still open (21:00 AEDT is 10:00 UTC).
    assert is_open(TCPA, ("Australia/Sydney",), utc(2026, 1, 15, 9, 59))


def test_au_mobile_shared_window_moves_with_southern_dst() -> None:
    # July: Lord Howe +10:30 closes first, at 10:30 UTC.
    assert is_open(TCPA, AU_MOBILE_ZONES, utc(2026, 7, 15, 10, 29, 59))
    assert not is_open(TCPA, AU_MOBILE_ZONES, utc(2026, 7, 15, 10, 30))


def test_zones_whose_weekdays_never_coincide_never_open() -> None:
    # Monday 08–14 in Tokyo is always Sunday afternoon in Los Angeles.
    monday_only = CallingWindow.parse("08:00", "21:00", [1])
    zones = ("Asia/Tokyo", "America/Los_Angeles")
    assert next_open(monday_only, zones, utc(2026, 1, 15, 0, 0)) is None
    assert next_open(TCPA, zones, utc(2026, 1, 15, 6, 0)) == utc(2026, 1, 15, 23, 0)


def test_resolve_zones_keeps_zones_that_share_an_opening() -> None:
    at = utc(2026, 1, 15, 0, 0)
    assert resolve_zones(AU_MOBILE, TCPA, "Australia/Sydney", at) == CalleeZones(AU_MOBILE_ZONES, False)
    assert resolve_zones(NYC, TCPA, "Europe/London", at) == CalleeZones(NY, False)


def test_resolve_zones_falls_back_when_zones_never_overlap() -> None:
    # 08–09 on the clocks of Lord Howe (+11) and Cocos (+06:30) never coincide.
    narrow = CallingWindow.parse("08:00", "09:00")
    at = utc(2026, 1, 15, 0, 0)
    assert resolve_zones(AU_MOBILE, narrow, "Australia/Sydney", at) == CalleeZones(
        ("Australia/Sydney",), True
    )


def test_resolve_zones_toll_free_falls_back() -> None:
    assert resolve_zones(US_TOLL_FREE, TCPA, "America/Denver", utc(2026, 1, 15)) == CalleeZones(
        ("America/Denver",), True
    )


# ---------------------------------------------------------------- properties

ZONE_SETS = [
    zones_for_number(n, "UTC").zones
    for n in (NYC, SAN_FRANCISCO, LONDON, INDIA, TOKYO, SYDNEY, AU_MOBILE, US_TOLL_FREE)
] + [("Asia/Tokyo", "America/Los_Angeles"), ("America/New_York", "Europe/London")]


@st.composite
def windows(draw: st.DrawFn) -> CallingWindow:
    start = draw(st.integers(0, 24 * 60 - 1))
    end = draw(st.integers(start + 1, 24 * 60))
    days = draw(st.frozensets(st.integers(1, 7), min_size=1))
    end_t = END_OF_DAY if end == 24 * 60 else time(end // 60, end % 60)
    return CallingWindow(time(start // 60, start % 60), end_t, days)


instants = st.datetimes(
    min_value=datetime(2025, 12, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)


def _minute_grid(lo: datetime, hi: datetime, limit: int = 400) -> list[datetime]:
    """Whole minutes in (lo, hi): all of them if few, else an even sample plus both ends."""
    first = lo.replace(second=0, microsecond=0) + timedelta(minutes=1)
    count = int((hi - first).total_seconds() // 60) + 1
    if count <= 0:
        return []
    step = max(1, count // limit)
    picks = list(range(0, count, step)) + [count - 1]
    return [t for t in (first + timedelta(minutes=i) for i in picks) if lo < t < hi]


@settings(max_examples=300, deadline=None)
@given(window=windows(), zones=st.sampled_from(ZONE_SETS), at=instants)
def test_next_open_is_open_and_nothing_earlier_is(
    window: CallingWindow, zones: tuple[str, ...], at: datetime
) -> None:
    r = next_open(window, zones, at, horizon_days=14)
    if r is None:
        for t in _minute_grid(at, at + timedelta(days=14)):
            assert not is_open(window, zones, t), t
        return
    assert at <= r < at + timedelta(days=14)
    assert is_open(window, zones, r)
    if r > at:
        assert not is_open(window, zones, r - timedelta(seconds=1))
        assert not is_open(window, zones, at)
        for t in _minute_grid(at, r):
            assert not is_open(window, zones, t), t


@settings(max_examples=100, deadline=None)
@given(window=windows(), number=st.sampled_from([NYC, INDIA, AU_MOBILE, US_TOLL_FREE, TOKYO]), at=instants)
def test_resolved_zones_always_open_within_a_week(window: CallingWindow, number: str, at: datetime) -> None:
    resolved = resolve_zones(number, window, "America/Chicago", at)
    assert next_open(window, resolved.zones, at, horizon_days=7) is not None
