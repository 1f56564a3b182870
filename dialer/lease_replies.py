"""What the lease scripts answer, typed: claims, round starts, stop words.

``dialer.leases.LeaseClient`` turns the Lua scripts' replies
(``contract/lua``) into these; the claiming rounds, the grant-ahead and the
call steps decide on them. The str-valued enums carry the scripts' own
words, so they go to Redis and to metric labels unchanged.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Activation", "Claim", "ClaimBatch", "ClaimMiss", "ClaimStop", "OrgRound", "RequeueMode"]


class ClaimStop(enum.StrEnum):
    """Why claim.lua stopped claiming (its first reply word)."""

    #: All N contacts asked for were claimed (the batch may have more).
    OK = "ok"
    #: No org limit: the state is not built, or being rebuilt.
    ORG_UNCONFIGURED = "org_unconfigured"
    #: Redis Cluster: the org's state marker is missing or was written on
    #: another node (a failover promoted a replica that may have missed the
    #: last writes): claim nothing in this org until the server rebuilt it.
    NO_MARKER = "no_marker"
    #: No batch meta: the batch is not active.
    INACTIVE = "inactive"
    #: The org's leases (reserve mode: its reservations) reached its limit.
    ORG_FULL = "org_full"
    #: The batch's leases reached its limit.
    BATCH_FULL = "batch_full"
    #: The ready queue is empty.
    EMPTY = "empty"
    #: The next contact is not due yet.
    NOT_DUE = "not_due"


class Activation(enum.StrEnum):
    """What activate.lua (lib_activate.lua) answered for a reservation."""

    #: The lease holds both slots now: dial.
    OK = "ok"
    #: Neither reserved nor held (a reaper or a Redis loss took it): never dial.
    LOST = "lost"
    #: No org limit (state being rebuilt): do not dial.
    ORG_UNCONFIGURED = "org_unconfigured"
    #: The batch is not running (paused, cancelled, ...): do not dial.
    INACTIVE = "inactive"
    #: No org slot free now: the reservation waits.
    ORG_FULL = "org_full"
    #: No batch slot free now: the reservation waits.
    BATCH_FULL = "batch_full"
    #: end_call.lua only: no reservation was handed the freed slot.
    NOT_ASKED = ""

    @property
    def waits(self) -> bool:
        """No slot is free now, but one may come: the reservation waits."""
        return self in (Activation.ORG_FULL, Activation.BATCH_FULL)


class RequeueMode(enum.StrEnum):
    """How release.lua puts a contact back in its ready queue."""

    #: ZADD NX: an existing score wins (the server may have re-queued the
    #: contact itself, with the due time it decided).
    KEEP_EXISTING = "nx"
    #: ZADD: this due time wins (a DEFERRED grant names the time).
    SET = "set"


@dataclass(frozen=True)
class Claim:
    """A contact taken from a batch's ready queue under a fresh lease."""

    org_id: str
    batch_id: str
    contact_id: str
    fencing_token: int
    lease_id: str
    provider_call_id: str
    due_ms: int
    claimed_ms: int
    #: A reservation (claim.lua "reserve"): no slot until ``activate``.
    reserved: bool = False


@dataclass(frozen=True)
class ClaimMiss:
    """No claim: why (never ``ClaimStop.OK``); ``next_due_ms`` for NOT_DUE."""

    reason: ClaimStop
    next_due_ms: int | None = None


@dataclass(frozen=True)
class ClaimBatch:
    """What one claim.lua call gave: the claims (maybe none), why it stopped
    (``ClaimStop.OK``: all N asked for were claimed), the due time of the
    next contact for NOT_DUE, and the org's free slots left after these
    claims."""

    claims: list[Claim]
    stop: ClaimStop
    next_due_ms: int | None
    org_free: int


@dataclass(frozen=True)
class OrgRound:
    """The start of one claim round over an organization: its ring of
    running batches (rotated by one), and its free slots (None when the org
    has no limit configured: state not built)."""

    ring: list[str]
    org_free: int | None
    #: end_call only: what activating the reservation handed the freed slot
    #: answered (NOT_ASKED when none was handed it).
    activation: Activation = Activation.NOT_ASKED
    #: end_call only: the lease id of another waiting reservation (maybe
    #: another dialer's) that took the freed slot, "" if none did.
    handed_to: str = ""
    #: end_call only: pace.lua's answer (status, wait, push-back state) for
    #: the cell of the reservation activated with the slot; None when none
    #: was asked.
    pace: tuple[str, int, int] | None = None
