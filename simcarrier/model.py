"""Pure outcome and duration model of the simulated carrier and voice agent.

No I/O and no clock: :func:`plan_call` turns a call request into a
:class:`CallPlan` (what will happen and after how many *simulated* seconds),
and the carrier (``simcarrier.carrier``) plays the plan on real timers,
multiplying every simulated second by its time scale. Keeping the model pure
lets unit tests check the mix, the overrides and the clipping without
sleeping.

Deterministic per-number overrides
----------------------------------
Demos and tests need to force an outcome without touching the random mix, so
the carrier looks at the **last four digits of the called number**:

======  ===========================  =========================================
suffix  behaviour                    what the carrier does
======  ===========================  =========================================
0001    ``busy``                     486 Busy Here after 1–3 s
0002    ``no_answer``                rings until the ring timeout, 480
0003    ``timeout``                  no final response until ring timeout + 2–5 s, 408
0004    ``invalid_number``           404 Not Found after 0.5–2 s
0005    ``blocked``                  603 Decline after 1–3 s
0006    ``carrier_error``            503 Service Unavailable after 1–3 s
0007    ``agent_error``              answered, then the agent fails after 1–3 s
0008    ``completed_short``          answered after ~1 s, 5–10 s of talk
0009    ``no_answer_then_completed`` 1st call to the number: ``no_answer``;
                                     every later call: ``completed`` (short)
0010    ``completed_long``           answered, talks for the maximum duration
======  ===========================  =========================================

Every other number gets the random mix of the caller number's simulation
profile (or :data:`DEFAULT_WEIGHTS`), drawn from a generator seeded with
``(seed, call_id)``: the same call ids give the same outcomes, whatever the
order and timing in which calls arrive. :func:`number_with_outcome` builds
valid US numbers (in ``phonenumbers``' eyes, so they pass CSV validation)
that end in a given override suffix.

Simulation profile
------------------
Sent with each call (from ``TrunkSettings.simulation``), all keys optional:

- one weight per outcome word (``completed``, ``no_answer``, ``busy``,
  ``timeout``, ``invalid_number``, ``blocked``, ``carrier_error``,
  ``agent_error``, ``voicemail``: answered by a machine, reported with
  ``answered_by: "machine"``); missing words weigh 0; all zero (or none given) means the
  default mix;
- ``mean_call_seconds`` — mean talk time of an answered call (default 180);
- ``ring_seconds`` — mean time before answer (default 6; 0 = answer at once);
- ``talk_sigma`` — spread of the lognormal talk time (default 0.5; 0 makes
  every call last exactly ``mean_call_seconds``, handy for benchmarks).

Talk time is lognormal with the given mean, clipped to
``[min(5, mean), max_call_duration]``; ring time is uniform in
``[0.5, 1.5] × ring_seconds`` and never reaches the ring timeout.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

OUTCOMES: tuple[str, ...] = (
    "completed",
    "no_answer",
    "busy",
    "timeout",
    "invalid_number",
    "blocked",
    "carrier_error",
    "agent_error",
    "voicemail",
)

DEFAULT_WEIGHTS: dict[str, float] = {
    "completed": 0.70,
    "no_answer": 0.15,
    "busy": 0.08,
    "timeout": 0.02,
    "carrier_error": 0.02,
    "blocked": 0.01,
    "invalid_number": 0.01,
    "agent_error": 0.01,
}

DEFAULT_MEAN_CALL_SECONDS = 180.0
DEFAULT_RING_SECONDS = 6.0
DEFAULT_TALK_SIGMA = 0.5
MIN_TALK_SECONDS = 5.0

#: Last four digits of the called number -> forced behaviour (see module doc).
OVERRIDES: dict[str, str] = {
    "0001": "busy",
    "0002": "no_answer",
    "0003": "timeout",
    "0004": "invalid_number",
    "0005": "blocked",
    "0006": "carrier_error",
    "0007": "agent_error",
    "0008": "completed_short",
    "0009": "no_answer_then_completed",
    "0010": "completed_long",
}

#: Behaviour name -> suffix, plus the plain outcome word "completed" (short call)
#: and "random" (a suffix outside the overrides: the random mix applies).
SUFFIX_FOR: dict[str, str] = {behaviour: suffix for suffix, behaviour in OVERRIDES.items()}
SUFFIX_FOR["completed"] = "0008"
SUFFIX_FOR["random"] = "4321"

# SIP final response codes, so the dialer can store something realistic.
SIP_CODES: dict[str, int] = {
    "completed": 200,
    "no_answer": 480,
    "busy": 486,
    "timeout": 408,
    "invalid_number": 404,
    "blocked": 603,
    "carrier_error": 503,
    "agent_error": 200,
    "voicemail": 200,
}

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")

# Area codes and central-office codes used by number_with_outcome. N11 and 555
# exchanges are skipped so that the numbers look like ordinary subscriber lines.
_AREA_CODES: tuple[int, ...] = (415, 212, 312, 617, 206, 303, 404, 512, 602, 702, 213, 305)
_EXCHANGES: tuple[int, ...] = tuple(
    e for e in range(200, 1000) if e % 100 != 11 and e != 555
)


@dataclass(frozen=True)
class SimulationProfile:
    """Per caller number knobs; see the module docstring."""

    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    mean_call_seconds: float = DEFAULT_MEAN_CALL_SECONDS
    ring_seconds: float = DEFAULT_RING_SECONDS
    talk_sigma: float = DEFAULT_TALK_SIGMA

    @classmethod
    def from_mapping(cls, raw: Mapping[str, object] | None) -> "SimulationProfile":
        """Builds a profile from the loose dict a trunk carries.

        Unknown keys are ignored and bad values fall back to defaults: the
        profile comes from operator configuration, and a typo there should
        not make every call fail.
        """
        raw = raw or {}
        weights = {}
        for word in OUTCOMES:
            w = _as_float(raw.get(word), 0.0)
            if w > 0 and math.isfinite(w):
                weights[word] = w
        if not weights:
            weights = dict(DEFAULT_WEIGHTS)
        mean = _as_float(raw.get("mean_call_seconds"), DEFAULT_MEAN_CALL_SECONDS)
        if not (mean > 0 and math.isfinite(mean)):
            mean = DEFAULT_MEAN_CALL_SECONDS
        ring = _as_float(raw.get("ring_seconds"), DEFAULT_RING_SECONDS)
        if not (ring >= 0 and math.isfinite(ring)):
            ring = DEFAULT_RING_SECONDS
        sigma = _as_float(raw.get("talk_sigma"), DEFAULT_TALK_SIGMA)
        if not (sigma >= 0 and math.isfinite(sigma)):
            sigma = DEFAULT_TALK_SIGMA
        return cls(weights=weights, mean_call_seconds=mean, ring_seconds=ring, talk_sigma=sigma)


@dataclass(frozen=True)
class CallPlan:
    """What a call will do, in simulated seconds from its start.

    ``answer_after`` is None for calls that are never answered. ``end_after``
    is when the call ends on its own (the caller may hang up earlier).
    """

    outcome: str
    end_after: float
    answer_after: float | None = None
    sip_code: int = 0
    detail: str = ""
    behaviour: str = "random"  # the override name, or "random"

    @property
    def talk_seconds(self) -> float:
        if self.answer_after is None:
            return 0.0
        return self.end_after - self.answer_after


def _as_float(value: object, default: float) -> float:
    if value is None:
        return default
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default


def override_for(to_number: str) -> str | None:
    """The forced behaviour for a called number, or None for the random mix."""
    digits = "".join(ch for ch in to_number if ch.isdigit())
    return OVERRIDES.get(digits[-4:]) if len(digits) >= 4 else None


def number_with_outcome(outcome: str, index: int) -> str:
    """A valid US number (E.164) whose last four digits force ``outcome``.

    ``outcome`` is a behaviour of :data:`OVERRIDES` (``busy``,
    ``completed_long``, …), the plain word ``completed`` (a short completed
    call) or ``random`` (the random mix). Distinct indexes give distinct
    numbers, up to ``len(_AREA_CODES) * len(_EXCHANGES)`` (over 9,000).
    """
    try:
        suffix = SUFFIX_FOR[outcome]
    except KeyError:
        raise ValueError(f"no override produces {outcome!r}; choose one of {sorted(SUFFIX_FOR)}") from None
    capacity = len(_AREA_CODES) * len(_EXCHANGES)
    if not 0 <= index < capacity:
        raise ValueError(f"index must be in [0, {capacity})")
    area = _AREA_CODES[index // len(_EXCHANGES)]
    exchange = _EXCHANGES[index % len(_EXCHANGES)]
    return f"+1{area}{exchange}{suffix}"


def rng_for(call_id: str, seed: int | str = 0) -> random.Random:
    """A generator that depends only on (seed, call_id), so runs reproduce."""
    return random.Random(f"{seed}:{call_id}")


def choose_outcome(weights: Mapping[str, float], rng: random.Random) -> str:
    """Weighted choice over OUTCOMES (fixed order, so seeded runs reproduce)."""
    words = [w for w in OUTCOMES if weights.get(w, 0.0) > 0]
    if not words:
        words, values = list(DEFAULT_WEIGHTS), list(DEFAULT_WEIGHTS.values())
    else:
        values = [weights[w] for w in words]
    return rng.choices(words, weights=values, k=1)[0]


def talk_seconds(mean: float, sigma: float, max_seconds: float, rng: random.Random) -> float:
    """Lognormal talk time with the given mean, clipped to [min(5, mean), max].

    Lognormal rather than exponential: real conversations have a typical
    length and a long tail, and a bounded spread keeps benchmark tails sane.
    """
    if sigma <= 0:
        value = mean
    else:
        mu = math.log(mean) - sigma * sigma / 2.0  # E[X] = exp(mu + sigma²/2) = mean
        value = rng.lognormvariate(mu, sigma)
    low = min(MIN_TALK_SECONDS, mean)
    high = max(max_seconds, low) if max_seconds > 0 else math.inf
    return min(max(value, low), high)


def ring_time(profile: SimulationProfile, ring_timeout: float, rng: random.Random) -> float:
    """Seconds of ringing before an answer; always before the ring timeout."""
    if profile.ring_seconds <= 0:
        return 0.0
    ring = profile.ring_seconds * rng.uniform(0.5, 1.5)
    if ring_timeout > 0:
        ring = min(ring, ring_timeout * 0.9)
    return ring


def plan_call(
    *,
    call_id: str,
    to_number: str,
    profile: SimulationProfile,
    ring_timeout: float,
    max_call_duration: float,
    nth_call_to_number: int = 1,
    seed: int | str = 0,
) -> CallPlan:
    """Decides outcome and timing of one call.

    ``nth_call_to_number`` is 1 for the first call the carrier ever received
    for ``to_number``; only the stateful ``0009`` override uses it.
    """
    rng = rng_for(call_id, seed)
    ring_timeout = ring_timeout if ring_timeout > 0 else 30.0
    max_call_duration = max_call_duration if max_call_duration > 0 else 3600.0

    if not _E164.match(to_number):
        return CallPlan("invalid_number", rng.uniform(0.5, 2.0), None, 404, "not an E.164 number", "invalid")

    behaviour = override_for(to_number)
    if behaviour == "no_answer_then_completed":
        outcome = "no_answer" if nth_call_to_number <= 1 else "completed_short"
    elif behaviour is not None:
        outcome = behaviour
    else:
        outcome = choose_outcome(profile.weights, rng)
    behaviour = behaviour or "random"

    if outcome == "completed_short":
        answer = min(1.0, ring_timeout * 0.9)
        talk = min(rng.uniform(5.0, 10.0), max_call_duration)
        return CallPlan("completed", answer + talk, answer, 200, "", behaviour)
    if outcome == "completed_long":
        answer = min(1.0, ring_timeout * 0.9)
        return CallPlan("completed", answer + max_call_duration, answer, 200, "reached max call duration", behaviour)
    if outcome == "completed":
        answer = ring_time(profile, ring_timeout, rng)
        talk = talk_seconds(profile.mean_call_seconds, profile.talk_sigma, max_call_duration, rng)
        detail = "reached max call duration" if talk >= max_call_duration else ""
        return CallPlan("completed", answer + talk, answer, 200, detail, behaviour)
    if outcome == "voicemail":
        # Answering machine: answered after the ring, a greeting and the
        # beep (or the agent's message), then the call ends; reported as
        # answered by a machine.
        answer = ring_time(profile, ring_timeout, rng)
        talk = min(rng.uniform(3.0, 8.0), max_call_duration)
        return CallPlan("voicemail", answer + talk, answer, 200, "answered by a machine", behaviour)
    if outcome == "agent_error":
        answer = ring_time(profile, ring_timeout, rng)
        talk = min(rng.uniform(1.0, 3.0), max_call_duration)
        return CallPlan("agent_error", answer + talk, answer, 200, "voice agent failed after answer", behaviour)
    if outcome == "no_answer":
        return CallPlan("no_answer", ring_timeout, None, 480, "no answer before ring timeout", behaviour)
    if outcome == "timeout":
        return CallPlan("timeout", ring_timeout + rng.uniform(2.0, 5.0), None, 408, "no final response from the carrier", behaviour)
    if outcome == "invalid_number":
        return CallPlan("invalid_number", rng.uniform(0.5, 2.0), None, 404, "number not in service", behaviour)
    fast_fail = {
        "busy": "callee busy",
        "blocked": "call declined by the callee's network",
        "carrier_error": "carrier unavailable",
    }
    return CallPlan(outcome, rng.uniform(1.0, 3.0), None, SIP_CODES[outcome], fast_fail[outcome], behaviour)
