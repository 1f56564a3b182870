"""Can this batch run? One answer for every place that asks.

Creating a batch (``service.batches``), starting or resuming it
(``service.lifecycle``), granting each call of a running batch
(``service.grants``) and reacting to a changed agent or removed caller number
(``service.catalog``) all ask the same question of the same facts, so they
share this function and its wording: the reason an operator reads does not
depend on which code path noticed the problem.

A blocker is either a system error (the agent or the caller number can no
longer place calls: the batch fails, docs/design.md §4) or a wait (no credits:
a pending batch is held, a running one is paused, and a top-up lets it go on).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

#: Agent architectures that place voice calls (TEXT agents cannot).
VOICE_ARCHITECTURES = frozenset({"pipeline", "realtime"})

#: Prefix of every reason the system writes when it pauses a running batch,
#: so operators tell an automatic pause from their own.
AUTO_PAUSE_PREFIX = "paused automatically: "


class Blocker(str, enum.Enum):
    """Why a batch cannot run now, in the order they are checked."""

    AGENT_INACTIVE = "agent_inactive"
    AGENT_NOT_VOICE = "agent_not_voice"
    NUMBER_REMOVED = "number_removed"
    NUMBER_WITHOUT_TRUNK = "number_without_trunk"
    NO_CREDITS = "no_credits"

    @property
    def message(self) -> str:
        """The one wording of this blocker (a batch's status reason)."""
        return _MESSAGES[self]

    @property
    def fails_batch(self) -> bool:
        """True for a system error (the batch fails); False for a wait."""
        return self is not Blocker.NO_CREDITS


_MESSAGES: dict[Blocker, str] = {
    Blocker.AGENT_INACTIVE: "agent is not active",
    Blocker.AGENT_NOT_VOICE: "TEXT agents cannot place calls",
    Blocker.NUMBER_REMOVED: "caller number removed",
    Blocker.NUMBER_WITHOUT_TRUNK: "caller number has no outbound trunk",
    Blocker.NO_CREDITS: "the organization ran out of credits; an owner can top up",
}


@dataclass(frozen=True)
class RunConditions:
    """The facts about a batch's agent, caller number and organization that
    decide whether it may run."""

    agent_active: bool
    agent_architecture: str
    #: The caller number is registered and not removed.
    number_present: bool
    number_has_trunk: bool
    credits_enforced: bool
    credit_balance_micros: int


def agent_blocker(active: bool, architecture: str) -> Blocker | None:
    """Whether the agent stops its batches (None: it can place calls)."""
    if not active:
        return Blocker.AGENT_INACTIVE
    if architecture not in VOICE_ARCHITECTURES:
        return Blocker.AGENT_NOT_VOICE
    return None


def number_blocker(present: bool, has_trunk: bool) -> Blocker | None:
    """Whether the caller number stops its batches (None: it can call out)."""
    if not present:
        return Blocker.NUMBER_REMOVED
    if not has_trunk:
        return Blocker.NUMBER_WITHOUT_TRUNK
    return None


def run_blocker(c: RunConditions) -> Blocker | None:
    """The first reason the batch cannot run now, or None when it can.

    System errors come before credits: a top-up must not seem to promise a
    batch that would fail anyway."""
    blocker = agent_blocker(c.agent_active, c.agent_architecture) or number_blocker(
        c.number_present, c.number_has_trunk
    )
    if blocker is not None:
        return blocker
    if c.credits_enforced and c.credit_balance_micros <= 0:
        return Blocker.NO_CREDITS
    return None


class StopKind(str, enum.Enum):
    """How the system stops a running batch."""

    FAIL = "fail"
    PAUSE = "pause"


@dataclass(frozen=True)
class BatchStop:
    """A stop the system applies to a running batch, with its status reason."""

    kind: StopKind
    reason: str

    @classmethod
    def fail(cls, reason: str) -> "BatchStop":
        return cls(StopKind.FAIL, reason)

    @classmethod
    def pause(cls, reason: str) -> "BatchStop":
        return cls(StopKind.PAUSE, reason)

    @classmethod
    def for_blocker(cls, blocker: Blocker) -> "BatchStop":
        """A system error fails the batch; a wait (credits) pauses it."""
        if blocker.fails_batch:
            return cls.fail(blocker.message)
        return cls.pause(AUTO_PAUSE_PREFIX + blocker.message)
