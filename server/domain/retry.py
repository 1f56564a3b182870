"""Retry policy: what happens to a contact after one call attempt ends.

The seed's table: attempt 1 immediately, attempt 2 five minutes later,
attempt 3 thirty minutes later, then ``permanently_failed``. A batch may
give each retryable outcome (busy, no_answer, timeout, voicemail) delays of
its own; voicemail defaults to one hour (docs/design.md §4), and a batch may
instead count a machine answer as done (``voicemail_action``). Only outcomes
that may go differently next time (nobody picked up, line busy, ring
timeout, or our own dialer died mid-call) are retried; outcomes that say the
number or the agent is wrong are final, because calling again would just
repeat the failure and annoy carriers.

The verdict says *when* the next attempt is due, not whether it may be
dialed then: calling windows, do-not-call and frequency caps are checked at
dial time by :mod:`server.domain.compliance`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from server.domain.clock import ensure_aware_utc
from server.domain.contact_rules import WAITING

__all__ = [
    "ALL_OUTCOMES",
    "DEFAULT_VOICEMAIL_DELAYS",
    "DELAYED_OUTCOMES",
    "DELAYS_MAX",
    "DELAY_MAX_SECONDS",
    "NON_RETRYABLE_OUTCOMES",
    "REASON_VOICEMAIL",
    "RETRYABLE_OUTCOMES",
    "SUCCESS_OUTCOME",
    "VOICEMAIL_DONE",
    "VOICEMAIL_OUTCOME",
    "VOICEMAIL_RETRY_LATER",
    "AttemptVerdict",
    "RetryPolicy",
    "check_outcome_delays",
    "is_retryable",
    "judge_attempt",
    "judge_retry",
]

SUCCESS_OUTCOME = "completed"
VOICEMAIL_OUTCOME = "voicemail"
RETRYABLE_OUTCOMES: frozenset[str] = frozenset({"no_answer", "busy", "timeout", "dialer_lost", VOICEMAIL_OUTCOME})
#: Outcomes a batch may give delays of their own (``dialer_lost`` is ours,
#: not the callee's: it always uses the default list).
DELAYED_OUTCOMES: tuple[str, ...] = ("busy", "no_answer", "timeout", VOICEMAIL_OUTCOME)
#: What a machine answer means (the batch's ``voicemail_action``).
VOICEMAIL_RETRY_LATER = "retry_later"
VOICEMAIL_DONE = "done"
#: The contact's reason when a voicemail ended it (DONE: a message was left).
REASON_VOICEMAIL = "voicemail"
#: Documented default for voicemail (not in the seed): one hour, every time.
DEFAULT_VOICEMAIL_DELAYS: tuple[float, ...] = (3600.0,)
#: Bounds of a batch's own delays.
DELAY_MAX_SECONDS = 7 * 24 * 3600
DELAYS_MAX = 10
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
    #: Delays of their own per outcome (``DELAYED_OUTCOMES``), as pairs
    #: ``(outcome, delays)``; an outcome not listed uses ``delays_seconds``.
    by_outcome: tuple[tuple[str, tuple[float, ...]], ...] = ()
    #: ``VOICEMAIL_RETRY_LATER`` or ``VOICEMAIL_DONE``.
    voicemail_action: str = VOICEMAIL_RETRY_LATER

    def __post_init__(self) -> None:
        if not self.delays_seconds:
            raise ValueError("retry policy needs at least one delay")
        for d in self.delays_seconds:
            if d < 0:
                raise ValueError(f"retry delays must not be negative, got {d}")
        # Accept lists from settings files but keep the dataclass hashable.
        object.__setattr__(self, "delays_seconds", tuple(float(d) for d in self.delays_seconds))
        pairs = self.by_outcome.items() if isinstance(self.by_outcome, Mapping) else self.by_outcome
        own: dict[str, tuple[float, ...]] = {}
        for outcome, delays in pairs:
            if outcome not in DELAYED_OUTCOMES:
                raise ValueError(f"no delays of its own for outcome {outcome!r}")
            delays = tuple(float(d) for d in delays)
            if not delays or any(d < 0 for d in delays):
                raise ValueError(f"{outcome}: retry delays must be a non-empty list of non-negative seconds")
            own[outcome] = delays
        object.__setattr__(self, "by_outcome", tuple(sorted(own.items())))
        if self.voicemail_action not in (VOICEMAIL_RETRY_LATER, VOICEMAIL_DONE):
            raise ValueError(f"unknown voicemail action {self.voicemail_action!r}")

    def delays_for(self, outcome: str | None) -> tuple[float, ...]:
        """The delay list used after ``outcome`` (the default list when the
        outcome has none of its own)."""
        for word, delays in self.by_outcome:
            if word == outcome:
                return delays
        return self.delays_seconds

    def delay_before(self, attempt_number: int, outcome: str | None = None) -> float:
        """Seconds to wait after attempt ``attempt_number - 1`` ended with ``outcome``."""
        if attempt_number < 2:
            raise ValueError(f"attempt 1 is never delayed; got attempt_number={attempt_number}")
        delays = self.delays_for(outcome)
        index = min(attempt_number - 2, len(delays) - 1)
        return delays[index]

    def for_batch(self, own: Mapping[str, list[float]] | None, voicemail_action: str | None) -> RetryPolicy:
        """This (the server's default) policy with a batch's own delays and
        voicemail action on top."""
        merged = dict(self.by_outcome)
        merged.update({k: tuple(v) for k, v in (own or {}).items()})
        return RetryPolicy(self.delays_seconds, tuple(merged.items()), voicemail_action or VOICEMAIL_RETRY_LATER)


def check_outcome_delays(own: Mapping[str, list[float]]) -> list[tuple[str, str]]:
    """(outcome, problem) for each bound a batch's own delays break: only
    ``DELAYED_OUTCOMES``, 1–``DELAYS_MAX`` delays each, 0 s–7 days."""
    out: list[tuple[str, str]] = []
    for outcome, delays in own.items():
        if outcome not in DELAYED_OUTCOMES:
            out.append((outcome, f"not retried by delay: choose one of {', '.join(DELAYED_OUTCOMES)}"))
            continue
        if not 1 <= len(delays) <= DELAYS_MAX:
            out.append((outcome, f"1–{DELAYS_MAX} delays"))
        if any(not (0 <= d <= DELAY_MAX_SECONDS) for d in delays):
            out.append((outcome, f"each delay 0–{DELAY_MAX_SECONDS:,} seconds (7 days)"))
    return out


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
    return judge_retry(attempts_made, max_attempts, now, policy, outcome)


def judge_retry(
    attempts_made: int, max_attempts: int, now: datetime, policy: RetryPolicy, outcome: str | None = None
) -> AttemptVerdict:
    """The verdict for a retryable result (a retryable outcome, or a call
    the agent reported as voicemail): queued after the policy's delay for
    ``outcome``, or ``permanently_failed`` when no attempt is left. A
    voicemail under ``VOICEMAIL_DONE`` is a success (the agent left a
    message): COMPLETED with reason ``voicemail``."""
    now = ensure_aware_utc(now, "now")
    if outcome == VOICEMAIL_OUTCOME and policy.voicemail_action == VOICEMAIL_DONE:
        return AttemptVerdict("completed", REASON_VOICEMAIL, None)
    if attempts_made >= max_attempts:
        return AttemptVerdict("failed", "permanently_failed", None)
    delay = policy.delay_before(attempts_made + 1, outcome)
    return AttemptVerdict("queued", "", now + timedelta(seconds=delay))
