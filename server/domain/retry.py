"""Retry policy: what happens to a contact after one call attempt ends.

The seed's table: attempt 1 immediately, attempt 2 five minutes later,
attempt 3 thirty minutes later, then ``permanently_failed``. Only outcomes
that may go differently next time (nobody picked up, line busy, ring
timeout, or our own dialer died mid-call) are retried; outcomes that say the
number or the agent is wrong are final, because calling again would just
repeat the failure and annoy carriers.

The verdict says *when* the next attempt is due, not whether it may be
dialed then: calling windows, do-not-call and frequency caps are checked at
dial time by :mod:`server.domain.compliance`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from server.domain.clock import ensure_aware_utc
from server.domain.contact_rules import WAITING

__all__ = [
    "SUCCESS_OUTCOME",
    "RETRYABLE_OUTCOMES",
    "NON_RETRYABLE_OUTCOMES",
    "ALL_OUTCOMES",
    "RetryPolicy",
    "AttemptVerdict",
    "judge_attempt",
    "judge_retry",
    "is_retryable",
]

SUCCESS_OUTCOME = "completed"
RETRYABLE_OUTCOMES: frozenset[str] = frozenset({"no_answer", "busy", "timeout", "dialer_lost"})
NON_RETRYABLE_OUTCOMES: frozenset[str] = frozenset(
    {"invalid_number", "blocked", "carrier_error", "agent_error"}
)
ALL_OUTCOMES: frozenset[str] = RETRYABLE_OUTCOMES | NON_RETRYABLE_OUTCOMES | {SUCCESS_OUTCOME}

# Final (contact_status, failure_reason) for each non-retryable outcome.
# agent_error has no contact status of its own: the contact is FAILED and the
# reason tells the operator to fix the agent, not the contact list.
_FINAL_FOR: dict[str, tuple[str, str]] = {
    "invalid_number": ("invalid_number", "invalid_number"),
    "blocked": ("blocked", "blocked"),
    "carrier_error": ("carrier_error", "carrier_error"),
    "agent_error": ("failed", "agent_error"),
}


def is_retryable(outcome: str) -> bool:
    """True when a later attempt could plausibly end differently."""
    return outcome in RETRYABLE_OUTCOMES


@dataclass(frozen=True)
class RetryPolicy:
    """Delays between attempts, as settings so tests can shrink them.

    ``delays_seconds[0]`` is waited before attempt 2, ``[1]`` before attempt 3;
    any later attempt (when a batch allows more than three) reuses the last
    delay rather than failing, so raising ``max_attempts`` never needs a new
    delay table.
    """

    delays_seconds: tuple[float, ...] = (300.0, 1800.0)

    def __post_init__(self) -> None:
        if not self.delays_seconds:
            raise ValueError("retry policy needs at least one delay")
        for d in self.delays_seconds:
            if d < 0:
                raise ValueError(f"retry delays must not be negative, got {d}")
        # Accept lists from settings files but keep the dataclass hashable.
        object.__setattr__(self, "delays_seconds", tuple(float(d) for d in self.delays_seconds))

    def delay_before(self, attempt_number: int) -> float:
        """Seconds to wait after attempt ``attempt_number - 1`` ended."""
        if attempt_number < 2:
            raise ValueError(f"attempt 1 is never delayed; got attempt_number={attempt_number}")
        index = min(attempt_number - 2, len(self.delays_seconds) - 1)
        return self.delays_seconds[index]


@dataclass(frozen=True)
class AttemptVerdict:
    """The contact's new state after an attempt.

    ``contact_status``: "completed" | "queued" | "failed" | "invalid_number" |
    "blocked" | "carrier_error". ``failure_reason``: "" | "permanently_failed" |
    "agent_error" | "invalid_number" | "blocked" | "carrier_error".
    ``next_attempt_at`` is set only when queued.
    """

    contact_status: str
    failure_reason: str
    next_attempt_at: datetime | None

    @property
    def is_final(self) -> bool:
        """The contact no longer waits for another attempt."""
        return self.contact_status not in WAITING


def judge_attempt(
    outcome: str,
    attempts_made: int,
    max_attempts: int,
    now: datetime,
    policy: RetryPolicy,
) -> AttemptVerdict:
    """Decide the contact's state after its ``attempts_made``-th attempt ended.

    ``attempts_made`` counts the attempt just finished. A contact that somehow
    already exceeded ``max_attempts`` (e.g. the limit was lowered) is treated as
    having none left rather than raising, so a late FinishAttempt can always be
    recorded.
    """
    if outcome not in ALL_OUTCOMES:
        raise ValueError(
            f"unknown call outcome {outcome!r}; expected one of {', '.join(sorted(ALL_OUTCOMES))}"
        )
    if attempts_made < 1:
        raise ValueError(f"attempts_made must be at least 1, got {attempts_made}")
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
    now = ensure_aware_utc(now, "now")

    if outcome == SUCCESS_OUTCOME:
        return AttemptVerdict("completed", "", None)
    if outcome in _FINAL_FOR:
        status, reason = _FINAL_FOR[outcome]
        return AttemptVerdict(status, reason, None)
    return judge_retry(attempts_made, max_attempts, now, policy)


def judge_retry(attempts_made: int, max_attempts: int, now: datetime, policy: RetryPolicy) -> AttemptVerdict:
    """The verdict for a retryable result (a retryable outcome, or a call
    the agent reported as voicemail): queued after the policy's delay, or
    ``permanently_failed`` when no attempt is left."""
    now = ensure_aware_utc(now, "now")
    if attempts_made >= max_attempts:
        return AttemptVerdict("failed", "permanently_failed", None)
    delay = policy.delay_before(attempts_made + 1)
    return AttemptVerdict("queued", "", now + timedelta(seconds=delay))
