"""Automatic pause when a batch keeps failing for reasons retries cannot fix.

A burst of ``carrier_error`` / ``blocked`` / ``agent_error`` means the trunk is
down, the caller number is being blocked as spam, or the agent is broken.
Carrying on would burn the whole contact list (those outcomes are final, not
retried) and the caller number's reputation, so the batch is paused and the
operator is told why. ``no_answer`` and ``busy`` are normal life for a
campaign and never count.

The breaker is a pure function over the last ``window`` outcomes; where that
list lives (Redis, a Postgres column) is the caller's business.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from server.domain.batch_readiness import AUTO_PAUSE_PREFIX

__all__ = ["TRIP_OUTCOMES", "CircuitBreaker"]

TRIP_OUTCOMES = frozenset({"carrier_error", "blocked", "agent_error"})
# Order used in the operator-facing sentence.
_TRIP_OUTCOMES_TEXT = "carrier_error, blocked or agent_error"


@dataclass(frozen=True)
class CircuitBreaker:
    """Trip when more than ``threshold`` of the last ``window`` outcomes are trip outcomes.

    Strictly more: exactly 50% with the default threshold does not trip. Fewer
    than ``window`` outcomes never trip, so three unlucky first calls do not
    pause a fresh batch.
    """

    window: int = 20
    threshold: float = 0.5

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ValueError(f"circuit breaker window must be at least 1, got {self.window}")
        if not 0 <= self.threshold <= 1:
            raise ValueError(f"circuit breaker threshold must be between 0 and 1, got {self.threshold}")

    def push(self, recent: Sequence[str], outcome: str) -> list[str]:
        """``recent`` plus ``outcome``, keeping only the newest ``window`` entries."""
        return [*recent, outcome][-self.window :]

    def should_trip(self, recent: Sequence[str]) -> str | None:
        """A reason sentence for the operator when the batch must pause, else ``None``."""
        if len(recent) < self.window:
            return None
        last = list(recent)[-self.window :]
        bad = sum(1 for o in last if o in TRIP_OUTCOMES)
        # Exact arithmetic: 0.29 * 100 is 28.999… in floats and would trip at 29%.
        if Fraction(bad, self.window) <= Fraction(repr(float(self.threshold))):
            return None
        return (
            f"{AUTO_PAUSE_PREFIX}{bad} of the last {self.window} attempts failed with "
            f"{_TRIP_OUTCOMES_TEXT} (threshold {self.threshold * 100:g}%)"
        )
