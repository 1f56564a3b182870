"""Per-number frequency cap over a rolling 24 h window."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.domain.frequency_cap import calls_in_window, next_allowed_by_cap

UTC = timezone.utc
AT = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)


def test_cap_zero_means_no_cap() -> None:
    assert next_allowed_by_cap([AT - H] * 50, 0, AT) is None


def test_fewer_calls_than_cap_is_allowed_now() -> None:
    assert next_allowed_by_cap([], 1, AT) is None
    assert next_allowed_by_cap([AT - 2 * H], 2, AT) is None


def test_at_cap_defers_until_oldest_leaves_window() -> None:
    starts = [AT - 1 * H, AT - 20 * H]  # deliberately not sorted
    assert next_allowed_by_cap(starts, 2, AT) == AT + 4 * H


def test_call_exactly_24h_ago_no_longer_counts() -> None:
    assert next_allowed_by_cap([AT - 24 * H], 1, AT) is None
    assert next_allowed_by_cap([AT - 24 * H + timedelta(seconds=1)], 1, AT) == AT + timedelta(seconds=1)


def test_calls_older_than_24h_and_in_the_future_are_ignored() -> None:
    starts = [AT - 30 * H, AT - 25 * H, AT + H]
    assert calls_in_window(starts, AT) == []
    assert next_allowed_by_cap(starts, 1, AT) is None


def test_call_starting_right_now_counts() -> None:
    assert next_allowed_by_cap([AT], 1, AT) == AT + 24 * H


def test_over_cap_waits_for_enough_calls_to_age_out() -> None:
    # Cap lowered to 1 after three calls: all but the newest must leave.
    starts = [AT - 3 * H, AT - 10 * H, AT - 5 * H]
    assert next_allowed_by_cap(starts, 1, AT) == AT - 3 * H + 24 * H


def test_non_utc_inputs_are_compared_as_instants() -> None:
    from zoneinfo import ZoneInfo

    tokyo = ZoneInfo("Asia/Tokyo")
    start = datetime(2026, 1, 15, 20, 0, tzinfo=tokyo)  # 11:00 UTC
    assert next_allowed_by_cap([start], 1, AT) == datetime(2026, 1, 16, 11, 0, tzinfo=UTC)


def test_rejects_negative_cap_and_naive_times() -> None:
    with pytest.raises(ValueError):
        next_allowed_by_cap([], -1, AT)
    with pytest.raises(ValueError, match="timezone-aware"):
        next_allowed_by_cap([datetime(2026, 1, 15, 11, 0)], 1, AT)


@given(
    offsets=st.lists(st.integers(0, 2 * 86400), max_size=12),
    cap=st.integers(1, 6),
)
def test_result_is_the_first_instant_under_the_cap(offsets: list[int], cap: int) -> None:
    starts = [AT - timedelta(seconds=s) for s in offsets]
    r = next_allowed_by_cap(starts, cap, AT)
    if r is None:
        assert len(calls_in_window(starts, AT)) < cap
        return
    assert AT < r <= AT + 24 * H
    assert len(calls_in_window(starts, r)) < cap
    assert len(calls_in_window(starts, r - timedelta(seconds=1))) >= cap
