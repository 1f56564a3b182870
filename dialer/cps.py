"""Calls-per-second pacing and carrier push-back, across all dialers (issue 13).

(Not to be confused with ``dialer.pacing.ClaimPacing``, the claim loop's
wake-ups inside one dialer: this module paces call STARTS per trunk and per
organization for all dialers together.)

Carriers cap call attempts per second per trunk (1 CPS is a common default)
and answer 503 (often with Retry-After) or 403/480 "channel limit" above
it. Every dialer asks Redis before it starts a call, so the limit holds for
all dialers together:

* :meth:`Pacer.acquire` runs ``pace.lua``: the trunk's throttle, the trunk's
  CPS bucket and the organization's CPS bucket are checked in one atomic
  step (GCRA, the generic cell-rate algorithm of redis-cell). Either a cell
  is taken from both buckets (``go``) or nothing is taken and the answer is
  how many ms to wait, so a contact waiting only for CPS keeps its place
  and no attempt is spent.
* :meth:`Pacer.pushback` runs ``pushback.lua`` when the carrier refused a
  call for load (:func:`classify_response` says which answers are that):
  the trunk pauses until Retry-After, or an adaptive back-off (1 s doubling
  to 60 s while push-backs continue), and its effective rate is halved
  (floor 0.1 CPS).
* :meth:`Pacer.success` runs ``pace_ok.lua`` when the carrier accepted a
  call: the streak ends and a lowered rate climbs back by an additive step
  (AIMD, as TCP congestion control).
* :meth:`Pacer.state` reads the trunk's state for the API, metrics and UI.

Time is always passed in (``now_ms``, the caller's clock), never Redis
TIME: tests inject a clock, and the scripts stay deterministic. The Redis
keys are :func:`contract.keys.trunk_pace` and :func:`contract.keys.org_pace`;
the algorithm, the defaults and why are in ``docs/pacing.md``.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

from contract import keys
from contract.scripts import Scripts

__all__ = [
    "DEFAULT_TRUNK_CPS",
    "PaceConfig",
    "PaceDecision",
    "Pacer",
    "PushbackKind",
    "PushbackResult",
    "TrunkPaceState",
    "classify_response",
    "parse_retry_after",
]

#: CPS of a trunk that has none configured: one call attempt per second is
#: the common default of SIP trunks and API carriers, and safe everywhere.
DEFAULT_TRUNK_CPS = 1.0


@dataclass(frozen=True)
class PaceConfig:
    """Tuning of the pacing scripts; the defaults are explained in
    docs/pacing.md. One config per dialer process; every dialer of a
    deployment should use the same (they share the Redis state)."""

    #: Cells a trunk may take at once beyond its rate. 1 = no bursts: starts
    #: are at least 1/CPS apart, which is what a carrier counting "calls in
    #: any one second" accepts.
    trunk_burst: int = 1
    #: Same for the organization bucket.
    org_burst: int = 1
    #: Multiplicative decrease of the effective rate per push-back event.
    decrease_factor: float = 0.5
    #: The effective rate never goes below this (CPS); a configured rate
    #: below it is kept as is. Low enough to be accepted by a carrier that
    #: is struggling, high enough to probe it again within seconds.
    floor_cps: float = 0.1
    #: Additive increase per accepted call, as a fraction of the configured
    #: rate: from half the rate back to full in 5 accepted calls.
    increase_fraction: float = 0.1
    #: Adaptive back-off (no Retry-After): base * 2^(streak-1), capped.
    backoff_base_ms: int = 1_000
    backoff_cap_ms: int = 60_000
    #: Retry-After is honoured up to this, so a broken header cannot stall
    #: a trunk for hours.
    max_retry_after_ms: int = 600_000
    #: A bucket key lives until its TAT + this many emission intervals.
    idle_periods: int = 3
    #: Push-back state (lowered rate, streak) is forgotten this long after
    #: the throttle ended with no call on the trunk.
    memory_ms: int = 300_000

    def __post_init__(self) -> None:
        if self.trunk_burst < 1 or self.org_burst < 1:
            raise ValueError("burst must be >= 1")
        if not 0 < self.decrease_factor < 1:
            raise ValueError("decrease_factor must be in (0, 1)")
        if self.floor_cps <= 0 or self.increase_fraction <= 0:
            raise ValueError("floor_cps and increase_fraction must be > 0")
        if not 0 < self.backoff_base_ms <= self.backoff_cap_ms:
            raise ValueError("need 0 < backoff_base_ms <= backoff_cap_ms")
        if self.idle_periods < 1 or self.memory_ms < 0 or self.max_retry_after_ms < 0:
            raise ValueError("idle_periods >= 1, memory_ms and max_retry_after_ms >= 0")


@dataclass(frozen=True)
class PaceDecision:
    """Answer of :meth:`Pacer.acquire`.

    ``go``: a call may start now (a cell was taken from the trunk's and the
    org's buckets). Otherwise nothing was taken and the caller should try
    again in ``wait_ms`` (the earliest instant it can succeed, unless another
    dialer takes that cell first) without spending the contact's attempt.
    ``limited_by`` says why: ``"throttled"`` (carrier push-back),
    ``"trunk"`` or ``"org"`` (CPS); ``""`` on go. For metrics and logs.
    ``delay_us`` (go, asked with ``ahead_ms``): the cells taken are this
    far in the future; the call starts then, not now.
    """

    go: bool
    wait_ms: int
    limited_by: str = ""
    delay_us: int = 0
    #: The trunk had push-back state when asked; without it a success
    #: (pace_ok.lua) after the call would change nothing and is not sent.
    pushback_state: bool = True


@dataclass(frozen=True)
class PushbackResult:
    """Answer of :meth:`Pacer.pushback`. ``counted``: a new congestion
    event (rate lowered, streak + 1) rather than another refusal of one
    already being handled (calls in flight when the carrier started
    refusing). ``effective_cps`` is None for a trunk without a CPS limit."""

    counted: bool
    throttled_until_ms: int
    effective_cps: float | None
    consecutive_pushbacks: int


@dataclass(frozen=True)
class TrunkPaceState:
    """A trunk's pacing state, for the API, the metrics and the UI.

    ``effective_cps`` is None while the trunk runs at its configured rate
    (use :meth:`effective` to get a number); ``throttled_until_ms`` is None
    when the trunk was never paused or has fully recovered (a past instant
    means the pause is over but push-back state is still remembered).
    """

    throttled_until_ms: int | None
    effective_cps: float | None
    consecutive_pushbacks: int
    last_pushback_ms: int | None
    backoff_ms: int | None
    #: The trunk bucket's theoretical arrival time (ms, fractional): with
    #: burst 1, the earliest instant the next call may start.
    next_start_ms: float | None

    def throttled(self, now_ms: int) -> bool:
        return self.throttled_until_ms is not None and now_ms < self.throttled_until_ms

    def effective(self, configured_cps: float) -> float:
        if self.effective_cps is None:
            return configured_cps
        return min(configured_cps, self.effective_cps)


def _arg(x: float | None) -> str:
    """A number as a script argument ("" for None); repr keeps a float exact."""
    if x is None:
        return ""
    if isinstance(x, int):
        return str(x)
    if not math.isfinite(x):
        raise ValueError(f"not a finite number: {x!r}")
    return repr(float(x))


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _num(v: Any) -> float | None:
    if v is None or v in (b"", ""):
        return None
    return float(_s(v))


class Pacer:
    """Client of the pacing scripts over one redis client.

    ``trunk_id`` is whatever identifies the caller number's trunk within the
    organization (its database id); ``trunk_cps``/``org_cps`` are the
    configured rates, passed on every call because the configuration lives
    in Postgres and Redis state may expire: None (or <= 0) means no limit.
    """

    def __init__(self, redis: Any, scripts: Scripts | None = None, config: PaceConfig | None = None,
                 batcher: Any = None) -> None:
        self.redis = redis
        self.scripts = scripts if scripts is not None else Scripts(redis)
        self.config = config or PaceConfig()
        #: The dialer's ``ScriptBatcher``: the pacing scripts ride in its
        #: pipelines with the lease scripts (one round trip, one write, for
        #: what would be a round trip of their own per call). None: each
        #: script is its own EVALSHA (tests, tools).
        self.batcher = batcher

    async def _run(self, script: Any, keys_: list[str], args: list[Any], lazy: bool = False) -> Any:
        if self.batcher is not None:
            return await self.batcher.call(script, keys_, args, lazy=lazy)
        return await script(keys=keys_, args=args)

    async def acquire(
        self,
        org_id: str,
        trunk_id: str,
        trunk_cps: float | None,
        org_cps: float | None,
        now_ms: int,
        *,
        peek: bool = False,
        ahead_ms: int = 0,
        lazy: bool = False,
    ) -> PaceDecision:
        """Take a start slot for one call on ``trunk_id``, or learn how long
        to wait. ``peek=True`` answers without taking (to decide whether to
        claim at all while a trunk is throttled). ``ahead_ms``: a slot free
        within that many ms is taken now for then (``delay_us``), so a
        caller waits for its own slot instead of asking again. ``lazy``:
        nothing waits on the answer to dial (a reservation's peek); it rides
        with the batcher's next round trip."""
        status, wait, state = await self._run(
            self.scripts.pace,
            [keys.trunk_pace(org_id, trunk_id), keys.org_pace(org_id)],
            self.pace_args(trunk_cps, org_cps, now_ms, peek=peek, ahead_ms=ahead_ms),
            lazy=lazy,
        )
        return self.decision(status, wait, state)

    def pace_args(self, trunk_cps: float | None, org_cps: float | None, now_ms: int, *,
                  peek: bool = False, ahead_ms: int = 0) -> list[Any]:
        """pace.lua's ARGV (also end_call.lua's, for the cell of the
        reservation it hands a slot to)."""
        c = self.config
        return [int(now_ms), _arg(trunk_cps), c.trunk_burst, _arg(org_cps), c.org_burst, c.idle_periods,
                c.memory_ms, "peek" if peek else "take", int(ahead_ms)]

    @staticmethod
    def decision(status: Any, wait: Any, state: Any = 1) -> PaceDecision:
        """pace.lua's answer as a PaceDecision."""
        status = _s(status)
        pushback_state = bool(int(state))
        if status == "go":
            return PaceDecision(True, 0, delay_us=int(wait), pushback_state=pushback_state)
        return PaceDecision(False, int(wait), status, pushback_state=pushback_state)

    async def pushback(
        self,
        org_id: str,
        trunk_id: str,
        now_ms: int,
        retry_after_s: float | None = None,
        *,
        trunk_cps: float | None,
        started_ms: int | None = None,
    ) -> PushbackResult:
        """The carrier refused a call of this trunk for load (see
        :func:`classify_response`). ``retry_after_s`` from
        :func:`parse_retry_after` (None: adaptive back-off).
        ``started_ms``: when the refused call was started; a call started
        before the last counted push-back is part of that event and does not
        lower the rate again. The contact should be re-queued without
        spending an attempt, and the circuit breaker should not count it."""
        c = self.config
        retry_ms: int | None = None
        if retry_after_s is not None:
            retry_ms = min(c.max_retry_after_ms, max(0, math.ceil(retry_after_s * 1000)))
        counted, until, eff, streak = await self._run(
            self.scripts.pushback,
            [keys.trunk_pace(org_id, trunk_id)],
            [
                int(now_ms),
                _arg(trunk_cps),
                _arg(retry_ms),
                _arg(started_ms),
                _arg(c.decrease_factor),
                _arg(c.floor_cps),
                c.backoff_base_ms,
                c.backoff_cap_ms,
                c.idle_periods,
                c.memory_ms,
            ],
        )
        return PushbackResult(bool(int(counted)), int(until), _num(eff), int(streak))

    async def success(
        self,
        org_id: str,
        trunk_id: str,
        now_ms: int,
        *,
        trunk_cps: float | None,
        started_ms: int | None = None,
    ) -> bool:
        """The carrier accepted a call of this trunk (any answer that is not
        a push-back: ringing, answered, busy, no answer...). Ends the
        push-back streak and raises a lowered rate by
        ``increase_fraction × trunk_cps``. Cheap and write-free when the
        trunk has no push-back state. Returns whether the state changed.
        Nothing waits on it to dial: it rides with the next round trip
        (lazy)."""
        step = (trunk_cps or 0) * self.config.increase_fraction
        changed, _eff, _streak = await self._run(
            self.scripts.pace_ok,
            [keys.trunk_pace(org_id, trunk_id)],
            [
                int(now_ms),
                _arg(trunk_cps),
                _arg(started_ms),
                _arg(step),
                self.config.idle_periods,
                self.config.memory_ms,
            ],
            lazy=True,
        )
        return bool(int(changed))

    async def throttled_until(self, org_id: str, trunk_id: str) -> int | None:
        """Epoch ms the trunk is paused until by carrier push-back (None:
        not paused), one HGET, in the batcher's next round trip."""
        key = keys.trunk_pace(org_id, trunk_id)
        if self.batcher is not None:
            (value,) = await self.batcher.commands([("HGET", key, "until")])
            if isinstance(value, Exception):
                raise value
        else:
            value = await self.redis.hget(key, "until")
        until = _num(value)
        return int(until) if until is not None else None

    async def state(self, org_id: str, trunk_id: str) -> TrunkPaceState:
        """The trunk's pacing state (one HMGET; no script)."""
        tat, rate, until, streak, last_pb, backoff = await self.redis.hmget(
            keys.trunk_pace(org_id, trunk_id), ["tat", "rate", "until", "streak", "last_pb", "backoff"]
        )
        tat_us = _num(tat)
        until_ms = _num(until)
        last = _num(last_pb)
        back = _num(backoff)
        return TrunkPaceState(
            throttled_until_ms=int(until_ms) if until_ms is not None else None,
            effective_cps=_num(rate),
            consecutive_pushbacks=int(_num(streak) or 0),
            last_pushback_ms=int(last) if last is not None else None,
            backoff_ms=int(back) if back is not None else None,
            next_start_ms=tat_us / 1000 if tat_us is not None else None,
        )


# --------------------------------------------------------------------------
# Classifying carrier answers (pure functions).


class PushbackKind(enum.StrEnum):
    """What a carrier's refusal means for pacing."""

    #: The carrier refused for load (CPS or channel limit): pause the trunk,
    #: lower its rate, re-queue the contact without spending an attempt.
    THROTTLE = "throttle"
    #: Anything else: the call's own outcome (busy, invalid number...).
    NONE = "none"


#: Reason phrases (SIP reason phrase, a Reason header's text, an HTTP
#: carrier's error message) that carriers use for a channel/CPS limit, as
#: regular expressions over the lower-cased text with runs of
#: non-alphanumerics made single spaces. Deliberately specific: a 403/480
#: counted as throttling is re-queued WITHOUT spending an attempt, so a
#: vague match ("limit exceeded" of a daily spend cap) could retry forever.
_LIMIT_REASONS = tuple(
    re.compile(p)
    for p in (
        r"\bchannels? limit",
        r"\bchannels? (exceeded|unavailable|not available)",
        r"\bno (circuit|channel)s?\b",
        r"\btoo many (concurrent |simultaneous |active |outbound )?calls\b",
        r"\btoo many (call )?(attempts|requests|channels)\b",
        r"\bcps\b",
        r"\bcalls? per second\b",
        r"\brate ?limit",
        r"\b(concurrent |simultaneous )?calls? limit",
        r"\bconcurrency limit",
        r"\bcongestion\b",
        # Q.850 causes in a Reason header: 34 no circuit/channel available,
        # 42 switching equipment congestion.
        r"\bq 850 cause (34|42)\b",
    )
)


def _normalize_reason(reason: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", reason.lower()).split())


def classify_response(status: int, reason: str | None = None) -> PushbackKind:
    """Is this SIP/HTTP final answer carrier push-back?

    503 (Service Unavailable) always is: a carrier that is overloaded or
    over its CPS. 429 (HTTP Too Many Requests, what API carriers answer for
    CPS) too. 403 and 480 are ordinary outcomes (forbidden number, callee
    unavailable) unless the reason names a channel/CPS limit ("Channel
    Limit", "Too Many Calls", "CPS limit exceeded", "Rate limit", Q.850
    cause 34/42...). Everything else is the call's own outcome.
    """
    if status in (503, 429):
        return PushbackKind.THROTTLE
    if status in (403, 480) and reason:
        text = _normalize_reason(reason)
        if any(p.search(text) for p in _LIMIT_REASONS):
            return PushbackKind.THROTTLE
    return PushbackKind.NONE


_DELTA = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:[;(].*)?$")


def parse_retry_after(value: str | None, now_ms: int | None = None) -> float | None:
    """Seconds to wait from a Retry-After header, or None if absent/invalid.

    Accepts delta-seconds (``120``; SIP's ``120;duration=3600`` and
    ``120 (comment)`` forms, fractional seconds leniently) and an HTTP-date
    (``Wed, 21 Oct 2015 07:28:00 GMT``, seconds from ``now_ms``, which is
    then required; a past date gives 0). Negative or garbage gives None, so
    the caller falls back to the adaptive back-off.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    m = _DELTA.match(value)
    if m:
        return float(m.group(1))
    if now_ms is None:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now_ms / 1000)
