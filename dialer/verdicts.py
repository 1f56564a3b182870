"""The reaper's decisions about expired leases, as pure functions.

A reaper (``dialer.reaper``) finds a lease whose holder stopped
heartbeating and must decide what became of the call it guards. The rules
(docs/design.md §5, recovery) live here, apart from the Redis, provider and
gRPC calls that gather the facts and carry the verdict out, so each rule
can be read and tested on its own:

- ``judge_unattached``: a lease with no attempt recorded on it (no call was
  ever placed under it) or with no info left at all.
- ``judge_attached``: a slot-holding lease whose attempt was granted; the
  provider's word on the call decides, and a lease is never released while
  its call may be live.
- ``judge_ended``: a lease whose call was over (end_call.lua) when its
  dialer died, before its outcome was recorded.

An expired reservation needs no verdict: it never held a slot, so no call
was placed under it, and the reaper always releases it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from contract.lease import LeaseRecord
from dialer.providers.base import CallResult, CallState

__all__ = [
    "Act",
    "CloseAs",
    "Judged",
    "ProviderView",
    "ReapTiming",
    "Verdict",
    "call_deadline_ms",
    "ended_needs_nothing",
    "judge_attached",
    "judge_ended",
    "judge_unattached",
]


class Act(enum.Enum):
    """What the reaper does with the lease."""

    #: Nothing this tick; look again at the next.
    KEEP = "keep"
    #: No info hash is left (past its safety TTL): remove the lease from
    #: its zsets; nothing can be closed or re-queued.
    DROP_ORPHAN = "drop_orphan"
    #: No attempt was recorded on it: release it only if still unattached,
    #: re-queue the contact and tombstone the lease for the server.
    RELEASE_UNATTACHED = "release_unattached"
    #: FinishAttempt (``CloseAs`` says with what), then release.
    CLOSE = "close"


class CloseAs(enum.Enum):
    """The outcome a CLOSE verdict reports to the server."""

    #: The provider's own result for the call (it reported ENDED).
    PROVIDER_RESULT = "provider_result"
    #: The call was never placed and never can be: CALL_OUTCOME_NOT_DIALED.
    NOT_DIALED = "not_dialed"
    #: The call's fate is unknown: CALL_OUTCOME_DIALER_LOST.
    DIALER_LOST = "dialer_lost"


@dataclass(frozen=True)
class ReapTiming:
    """The durations the rules compare against, all in milliseconds."""

    lease_ttl_ms: int
    ring_timeout_ms: int
    dial_grace_ms: int
    #: How long after an ended lease's call end an unreachable provider is
    #: waited for before its attempt is closed as DIALER_LOST.
    ended_status_grace_ms: int


@dataclass(frozen=True)
class ProviderView:
    """What the provider said about the lease's call."""

    #: None: the provider could not be asked (unreachable, no such kind).
    state: CallState | None
    #: The call's result, given with ENDED.
    result: CallResult | None = None
    #: The provider's UNKNOWN is proof that the call was never placed (the
    #: simulated carrier knows every call it was asked to place).
    authoritative: bool = False

    @property
    def ended_with_result(self) -> bool:
        return self.state is CallState.ENDED and self.result is not None

    @property
    def state_word(self) -> str:
        return self.state.value if self.state is not None else "unreachable"


@dataclass(frozen=True)
class Verdict:
    """The decision about one expired lease."""

    act: Act
    #: The word logged, and the ``result`` label of the reaped-leases metric
    #: once released ("young_claim", "ended", "dialer_lost", ...).
    reason: str
    #: With CLOSE: the outcome to report.
    close_as: CloseAs | None = None
    #: With CLOSE: the FinishAttempt detail ("" = the provider result's own).
    detail: str = ""
    #: How far past its deadline a call the provider still reports live is
    #: (0 when not overdue): kept, but worth a warning.
    overdue_ms: int = 0


@dataclass(frozen=True)
class Judged:
    """What became of one expired lease once its verdict was carried out."""

    released: bool
    reason: str

    def __str__(self) -> str:
        return f"{'released' if self.released else 'kept'}:{self.reason}"


def call_deadline_ms(record: LeaseRecord, timing: ReapTiming, default_max_call_ms: int) -> int:
    """When a call granted under the lease is over whatever happened to it:
    started + max call + ring timeout + a lease ttl."""
    max_call_ms = record.max_call_ms or default_max_call_ms
    return record.started_ms + max_call_ms + timing.ring_timeout_ms + timing.lease_ttl_ms


def judge_unattached(record: LeaseRecord, now_ms: int, timing: ReapTiming) -> Verdict | None:
    """A lease without info or without an attempt; None when it has both
    (then the provider is asked and ``judge_attached`` decides).

    A claim younger than a lease ttl is kept: its dialer may still be
    waiting for StartAttempt's answer."""
    if not record.info:
        return Verdict(Act.DROP_ORPHAN, "orphan")
    if record.attempt_id:
        return None
    if now_ms - record.claimed_ms < timing.lease_ttl_ms:
        return Verdict(Act.KEEP, "young_claim")
    return Verdict(Act.RELEASE_UNATTACHED, "unattached_claim")


def judge_attached(
    record: LeaseRecord, now_ms: int, timing: ReapTiming, view: ProviderView, *, default_max_call_ms: int
) -> Verdict:
    """A slot-holding lease with a granted attempt. ENDED -> close with the
    provider's result; RINGING / IN_PROGRESS -> keep, however long; UNKNOWN
    from an authoritative provider once the grant's dial window and a lease
    ttl have passed -> never placed (NOT_DIALED); anything else -> keep
    until the call's deadline (``call_deadline_ms``), then DIALER_LOST."""
    deadline = call_deadline_ms(record, timing, default_max_call_ms)
    if view.ended_with_result:
        return Verdict(Act.CLOSE, "ended", CloseAs.PROVIDER_RESULT)
    if view.state in (CallState.RINGING, CallState.IN_PROGRESS):
        return Verdict(Act.KEEP, view.state_word, overdue_ms=max(0, now_ms - deadline))
    if (
        view.state is CallState.UNKNOWN
        and view.authoritative
        and now_ms > record.started_ms + timing.dial_grace_ms + timing.lease_ttl_ms
    ):
        return Verdict(Act.CLOSE, "never_placed", CloseAs.NOT_DIALED,
                       detail=f"dialer {record.dialer_id} lost before the call was placed")
    if now_ms > deadline:
        return Verdict(Act.CLOSE, "dialer_lost", CloseAs.DIALER_LOST,
                       detail=f"dialer {record.dialer_id} lost; provider state {view.state_word}")
    return Verdict(Act.KEEP, f"{view.state_word}_before_deadline")


def ended_needs_nothing(record: LeaseRecord) -> bool:
    """An ended lease with nothing left to close: end_call.lua only moves
    attached leases, so this is an info hash past its safety TTL."""
    return not record.info or not record.attempt_id or not record.batch_id


def judge_ended(record: LeaseRecord, now_ms: int, timing: ReapTiming, view: ProviderView) -> Verdict:
    """An ended lease (its call is over, its dialer died before the outcome
    was recorded). No slot is involved, so it is closed at once: with the
    provider's result when it reports the call ENDED, else as DIALER_LOST
    (the dead dialer's result is gone; the attempt counts and is retried
    under the retry policy). Only an unreachable provider defers that, for
    ``ended_status_grace_ms`` after the call's end, so a carrier blip does
    not cost the real outcome."""
    if ended_needs_nothing(record):
        return Verdict(Act.DROP_ORPHAN, "ended_orphan")
    if view.ended_with_result:
        return Verdict(Act.CLOSE, "ended_by_provider", CloseAs.PROVIDER_RESULT)
    ended_ms = record.ended_ms or now_ms
    if view.state is None and now_ms <= ended_ms + timing.ended_status_grace_ms:
        return Verdict(Act.KEEP, "ended_unreachable")
    return Verdict(
        Act.CLOSE, "ended_dialer_lost", CloseAs.DIALER_LOST,
        detail=(f"dialer {record.dialer_id} lost after the call ended, before its outcome was recorded; "
                f"provider state {view.state_word}"),
    )
