"""Retry policy: the seed's table (immediate, +5 min, +30 min, then permanently_failed)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.domain.retry import (
    ALL_OUTCOMES,
    NON_RETRYABLE_OUTCOMES,
    RETRYABLE_OUTCOMES,
    AttemptVerdict,
    RetryPolicy,
    judge_attempt,
)

NOW = datetime(2026, 3, 10, 14, 0, 0, tzinfo=timezone.utc)
DEFAULT = RetryPolicy()


def test_default_delays_are_five_and_thirty_minutes() -> None:
    assert DEFAULT.delay_before(2) == 300.0
    assert DEFAULT.delay_before(3) == 1800.0


def test_later_attempts_reuse_the_last_delay() -> None:
    assert DEFAULT.delay_before(4) == 1800.0
    assert DEFAULT.delay_before(10) == 1800.0


def test_attempt_one_has_no_delay() -> None:
    with pytest.raises(ValueError):
        DEFAULT.delay_before(1)


@pytest.mark.parametrize("delays", [(), (-1.0,), (10.0, -5.0)])
def test_policy_rejects_empty_or_negative_delays(delays: tuple[float, ...]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(delays)


def test_custom_delays() -> None:
    policy = RetryPolicy((1.0, 2.0, 3.0))
    assert [policy.delay_before(n) for n in range(2, 7)] == [1.0, 2.0, 3.0, 3.0, 3.0]
    v = judge_attempt("busy", 3, 5, NOW, policy)
    assert v == AttemptVerdict("queued", "", NOW + timedelta(seconds=3))


def test_first_no_answer_is_retried_after_five_minutes() -> None:
    v = judge_attempt("no_answer", 1, 3, NOW, DEFAULT)
    assert v == AttemptVerdict("queued", "", datetime(2026, 3, 10, 14, 5, tzinfo=timezone.utc))
    assert not v.is_final


def test_second_busy_is_retried_after_thirty_minutes() -> None:
    v = judge_attempt("busy", 2, 3, NOW, DEFAULT)
    assert v == AttemptVerdict("queued", "", datetime(2026, 3, 10, 14, 30, tzinfo=timezone.utc))


def test_third_timeout_is_permanently_failed() -> None:
    v = judge_attempt("timeout", 3, 3, NOW, DEFAULT)
    assert v == AttemptVerdict("failed", "permanently_failed", None)
    assert v.is_final


def test_fourth_attempt_of_five_reuses_thirty_minutes() -> None:
    v = judge_attempt("no_answer", 4, 5, NOW, DEFAULT)
    assert v.next_attempt_at == NOW + timedelta(minutes=30)


def test_dialer_lost_is_retried_like_no_answer() -> None:
    v = judge_attempt("dialer_lost", 1, 3, NOW, DEFAULT)
    assert v.contact_status == "queued"
    assert v.next_attempt_at == NOW + timedelta(minutes=5)


def test_max_attempts_one_never_retries() -> None:
    for outcome in RETRYABLE_OUTCOMES:
        assert judge_attempt(outcome, 1, 1, NOW, DEFAULT) == AttemptVerdict(
            "failed", "permanently_failed", None
        )


def test_more_attempts_than_allowed_is_final_not_an_error() -> None:
    assert judge_attempt("busy", 4, 3, NOW, DEFAULT).contact_status == "failed"


@pytest.mark.parametrize(
    ("outcome", "status", "reason"),
    [
        ("invalid_number", "invalid_number", "invalid_number"),
        ("blocked", "blocked", "blocked"),
        ("carrier_error", "carrier_error", "carrier_error"),
        ("agent_error", "failed", "agent_error"),
    ],
)
def test_non_retryable_outcomes_are_final_immediately(outcome: str, status: str, reason: str) -> None:
    v = judge_attempt(outcome, 1, 3, NOW, DEFAULT)
    assert v == AttemptVerdict(status, reason, None)


def test_completed_is_success() -> None:
    assert judge_attempt("completed", 2, 3, NOW, DEFAULT) == AttemptVerdict("completed", "", None)


@pytest.mark.parametrize("outcome", ["", "NO_ANSWER", "VOICEMAIL", "cancelled"])
def test_unknown_outcome_raises(outcome: str) -> None:
    with pytest.raises(ValueError, match="unknown call outcome"):
        judge_attempt(outcome, 1, 3, NOW, DEFAULT)


@pytest.mark.parametrize(("made", "max_"), [(0, 3), (1, 0)])
def test_bad_counts_raise(made: int, max_: int) -> None:
    with pytest.raises(ValueError):
        judge_attempt("busy", made, max_, NOW, DEFAULT)


def test_naive_now_raises() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        judge_attempt("busy", 1, 3, datetime(2026, 3, 10, 14, 0), DEFAULT)


def test_non_utc_now_is_accepted_and_returned_in_utc() -> None:
    from zoneinfo import ZoneInfo

    local = datetime(2026, 3, 10, 10, 0, tzinfo=ZoneInfo("America/New_York"))  # 14:00 UTC
    v = judge_attempt("busy", 1, 3, local, DEFAULT)
    assert v.next_attempt_at == NOW + timedelta(minutes=5)
    assert v.next_attempt_at is not None and v.next_attempt_at.utcoffset() == timedelta(0)


@given(
    outcome=st.sampled_from(sorted(ALL_OUTCOMES)),
    made=st.integers(1, 10),
    max_attempts=st.integers(1, 10),
    delays=st.lists(st.floats(0, 86400, allow_nan=False), min_size=1, max_size=4),
)
def test_queued_exactly_when_retryable_with_attempts_left(
    outcome: str, made: int, max_attempts: int, delays: list[float]
) -> None:
    policy = RetryPolicy(tuple(delays))
    v = judge_attempt(outcome, made, max_attempts, NOW, policy)
    should_queue = outcome in RETRYABLE_OUTCOMES and made < max_attempts
    assert (v.contact_status == "queued") == should_queue
    assert (v.next_attempt_at is not None) == should_queue
    if v.next_attempt_at is not None:
        assert v.next_attempt_at == NOW + timedelta(seconds=policy.delay_before(made + 1))
        assert v.failure_reason == ""
    if outcome in NON_RETRYABLE_OUTCOMES:
        assert v.failure_reason == outcome
