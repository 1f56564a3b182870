"""Retries by outcome and the voicemail action (issue 13, items 3–4): the
pure rule of ``server.domain.retry``, table-driven."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from server.domain.call_results import contact_after_result
from server.domain.retry import (
    DELAY_MAX_SECONDS,
    AttemptVerdict,
    RetryPolicy,
    check_outcome_delays,
    judge_attempt,
)

NOW = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)
#: The server's default: the seed's 5/30 min for everything, voicemail 60 min.
SERVER = RetryPolicy((300.0, 1800.0), {"voicemail": (3600.0,)})
#: A batch with its own busy and no_answer delays.
BATCH = SERVER.for_batch({"busy": [60.0], "no_answer": [120.0, 600.0, 900.0]}, None)
DONE = SERVER.for_batch({}, "done")


def _queued(seconds: float) -> AttemptVerdict:
    return AttemptVerdict("queued", "", NOW + timedelta(seconds=seconds))


FAILED = AttemptVerdict("failed", "permanently_failed", None)

TABLE = [
    # policy, outcome, attempts made, max attempts, verdict
    (SERVER, "busy", 1, 3, _queued(300)),
    (SERVER, "busy", 2, 3, _queued(1800)),
    (SERVER, "busy", 3, 3, FAILED),
    (SERVER, "no_answer", 1, 3, _queued(300)),
    (SERVER, "timeout", 2, 3, _queued(1800)),
    (SERVER, "dialer_lost", 1, 3, _queued(300)),
    (SERVER, "voicemail", 1, 3, _queued(3600)),
    (SERVER, "voicemail", 2, 3, _queued(3600)),
    (SERVER, "voicemail", 3, 3, FAILED),
    (BATCH, "busy", 1, 5, _queued(60)),
    (BATCH, "busy", 4, 5, _queued(60)),  # past the list: the last delay
    (BATCH, "no_answer", 1, 5, _queued(120)),
    (BATCH, "no_answer", 2, 5, _queued(600)),
    (BATCH, "no_answer", 3, 5, _queued(900)),
    (BATCH, "timeout", 1, 5, _queued(300)),  # not set: the default list
    (BATCH, "voicemail", 1, 5, _queued(3600)),  # the server's voicemail default kept
    (BATCH, "no_answer", 5, 5, FAILED),  # max attempts stays the overall cap
    (DONE, "voicemail", 1, 3, AttemptVerdict("completed", "voicemail", None)),
    (DONE, "voicemail", 3, 3, AttemptVerdict("completed", "voicemail", None)),
    (DONE, "busy", 1, 3, _queued(300)),
    # Never retried, whatever the policy.
    (BATCH, "invalid_number", 1, 5, AttemptVerdict("invalid_number", "invalid_number", None)),
    (BATCH, "blocked", 1, 5, AttemptVerdict("blocked", "blocked", None)),
    (BATCH, "carrier_error", 1, 5, AttemptVerdict("carrier_error", "carrier_error", None)),
    (BATCH, "agent_error", 1, 5, AttemptVerdict("failed", "agent_error", None)),
    (BATCH, "completed", 1, 5, AttemptVerdict("completed", "", None)),
]


@pytest.mark.parametrize(("policy", "outcome", "made", "max_", "expected"), TABLE)
def test_verdict_by_outcome(policy: RetryPolicy, outcome: str, made: int, max_: int, expected: AttemptVerdict) -> None:
    assert judge_attempt(outcome, made, max_, NOW, policy) == expected


@pytest.mark.parametrize(("policy", "expected"), [
    (SERVER, _queued(3600)),
    (DONE, AttemptVerdict("completed", "voicemail", None)),
])
def test_agent_voicemail_report_follows_the_voicemail_outcome_rule(policy: RetryPolicy, expected: AttemptVerdict) -> None:
    # The call itself "completed" (the carrier saw an answer), the agent says voicemail.
    verdict = judge_attempt("completed", 1, 3, NOW, policy)
    effect = contact_after_result("voicemail", None, verdict, attempt_number=1, max_attempts=3, now=NOW, policy=policy)
    assert (effect.contact_status, effect.failure_reason, effect.next_attempt_at) == (
        expected.contact_status, expected.failure_reason, expected.next_attempt_at)
    assert effect == contact_after_result("voicemail", None, judge_attempt("voicemail", 1, 3, NOW, policy),
                                          attempt_number=1, max_attempts=3, now=NOW, policy=policy)


@pytest.mark.parametrize(("own", "problems"), [
    ({}, []),
    ({"busy": [0, DELAY_MAX_SECONDS]}, []),
    ({"voicemail": [60.0] * 10}, []),
    ({"voicemail": [60.0] * 11}, ["voicemail"]),
    ({"busy": []}, ["busy"]),
    ({"busy": [-1]}, ["busy"]),
    ({"timeout": [DELAY_MAX_SECONDS + 1]}, ["timeout"]),
    ({"invalid_number": [60]}, ["invalid_number"]),
    ({"blocked": [60]}, ["blocked"]),
    ({"dialer_lost": [60]}, ["dialer_lost"]),
])
def test_delay_bounds(own: dict[str, list[float]], problems: list[str]) -> None:
    assert [o for o, _ in check_outcome_delays(own)] == problems


def test_policy_refuses_delays_for_final_outcomes() -> None:
    with pytest.raises(ValueError):
        RetryPolicy((300.0,), {"invalid_number": (60.0,)})
    with pytest.raises(ValueError):
        RetryPolicy((300.0,), voicemail_action="sometimes")
