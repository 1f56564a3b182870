"""Automatic pause when carrier/blocked/agent failures dominate recent attempts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.domain.circuit_breaker import TRIP_OUTCOMES, CircuitBreaker

BREAKER = CircuitBreaker()


def outcomes(bad: int, good: int, bad_kind: str = "carrier_error") -> list[str]:
    return [bad_kind] * bad + ["no_answer"] * good


def test_push_keeps_only_the_last_window() -> None:
    b = CircuitBreaker(window=3)
    recent: list[str] = []
    for o in ["completed", "busy", "blocked", "agent_error"]:
        recent = b.push(recent, o)
    assert recent == ["busy", "blocked", "agent_error"]


def test_push_does_not_mutate_input() -> None:
    recent = ["busy"]
    assert BREAKER.push(recent, "blocked") == ["busy", "blocked"]
    assert recent == ["busy"]


def test_fewer_than_window_never_trips() -> None:
    assert BREAKER.should_trip(outcomes(19, 0)) is None


def test_exactly_threshold_does_not_trip() -> None:
    assert BREAKER.should_trip(outcomes(10, 10)) is None


def test_above_threshold_trips_with_reason() -> None:
    reason = BREAKER.should_trip(outcomes(12, 8))
    assert reason == (
        "paused automatically: 12 of the last 20 attempts failed with "
        "carrier_error, blocked or agent_error (threshold 50%)"
    )


def test_mixed_trip_outcomes_count_together() -> None:
    recent = ["carrier_error"] * 4 + ["blocked"] * 4 + ["agent_error"] * 3 + ["busy"] * 9
    assert BREAKER.should_trip(recent) is not None


def test_retryable_and_final_outcomes_other_than_trip_ones_never_trip() -> None:
    recent = ["no_answer", "busy", "timeout", "dialer_lost", "invalid_number"] * 4
    assert BREAKER.should_trip(recent) is None


def test_only_the_last_window_counts() -> None:
    old_failures = outcomes(30, 0)
    assert BREAKER.should_trip(old_failures + ["completed"] * 20) is None


def test_threshold_comparison_is_exact() -> None:
    # 0.29 * 100 is 28.999... in floating point; 29 of 100 is exactly 29% and must not trip.
    b = CircuitBreaker(window=100, threshold=0.29)
    assert b.should_trip(outcomes(29, 71)) is None
    assert b.should_trip(outcomes(30, 70)) == (
        "paused automatically: 30 of the last 100 attempts failed with "
        "carrier_error, blocked or agent_error (threshold 29%)"
    )


@pytest.mark.parametrize(("window", "threshold"), [(0, 0.5), (20, -0.1), (20, 1.5)])
def test_rejects_bad_settings(window: int, threshold: float) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(window=window, threshold=threshold)


@given(
    recent=st.lists(
        st.sampled_from(["completed", "no_answer", "busy", "blocked", "carrier_error", "agent_error"]),
        max_size=40,
    )
)
def test_trips_iff_full_window_and_share_strictly_above_threshold(recent: list[str]) -> None:
    last = recent[-20:]
    bad = sum(o in TRIP_OUTCOMES for o in last)
    expected = len(recent) >= 20 and bad * 2 > 20
    assert (BREAKER.should_trip(recent) is not None) == expected
