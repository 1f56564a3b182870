"""The per-contact StartAttempt decision: may this claim become a call?

``service.grants`` locks the rows, reads the facts and writes the result;
the decision itself lives here so it can be read and tested without a
database (docs/design.md §5). It combines, in this order:

1. the claim is still current (the contact belongs to the batch, waits, has
   attempts left and is due) — otherwise the claim is stale;
2. the batch can run (:func:`server.domain.batch_readiness.run_blocker`);
3. the compliance check (:func:`server.domain.compliance.check_dial`):
   do-not-call suppresses the contact, a window that never opens fails it,
   a closed window or the frequency cap defers it, otherwise the call is
   granted as the contact's next attempt.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from server.domain.batch_readiness import Blocker
from server.domain.compliance import DialCheck
from server.domain.contact_rules import WAITING, ContactStatus

__all__ = ["ClaimedContact", "GrantOutcome", "GrantDecision", "screen_claim", "decide_grant"]


@dataclass(frozen=True)
class ClaimedContact:
    """What the decision reads of the claimed contact's (locked) row."""

    batch_id: str
    status: str
    attempts: int
    max_attempts: int
    next_attempt_at: datetime | None


class GrantOutcome(str, enum.Enum):
    #: Dial now: the contact goes DIALING as attempt ``attempt_number``.
    GRANT = "grant"
    #: The claim no longer matches the contact (already dialed, not due,
    #: out of attempts, another batch): nothing changes.
    STALE = "stale"
    #: The batch cannot run (``blocker``): nothing changes for the contact.
    BATCH_STOPPED = "batch_stopped"
    #: On the do-not-call list: the contact ends SUPPRESSED, never dialed.
    SUPPRESS = "suppress"
    #: No calling-window opening within the horizon: the contact ends FAILED.
    NEVER_CALLABLE = "never_callable"
    #: Not now: the contact waits QUEUED until ``defer_until``.
    DEFER = "defer"


#: The contact status each outcome leaves (None: the row is not touched).
_NEW_STATUS: dict[GrantOutcome, ContactStatus | None] = {
    GrantOutcome.GRANT: ContactStatus.DIALING,
    GrantOutcome.STALE: None,
    GrantOutcome.BATCH_STOPPED: None,
    GrantOutcome.SUPPRESS: ContactStatus.SUPPRESSED,
    GrantOutcome.NEVER_CALLABLE: ContactStatus.FAILED,
    GrantOutcome.DEFER: ContactStatus.QUEUED,
}

REASON_STALE = "contact not claimable"


@dataclass(frozen=True)
class GrantDecision:
    outcome: GrantOutcome
    reason: str = ""
    blocker: Blocker | None = None
    defer_until: datetime | None = None
    #: The attempt a GRANT starts (the contact's attempts so far plus one).
    attempt_number: int = 0

    @property
    def new_status(self) -> ContactStatus | None:
        """The contact's status after this decision (None: unchanged)."""
        return _NEW_STATUS[self.outcome]


def _claimable(contact: ClaimedContact | None, batch_id: str, now: datetime) -> bool:
    return not (
        contact is None
        or contact.batch_id != batch_id
        or contact.status not in WAITING
        or contact.attempts >= contact.max_attempts
        or (contact.next_attempt_at is not None and contact.next_attempt_at > now)
    )


def screen_claim(
    contact: ClaimedContact | None, batch_id: str, now: datetime, blocker: Blocker | None
) -> GrantDecision | None:
    """The part of the decision that needs no compliance data: a STALE or
    BATCH_STOPPED decision, or None when the dial check decides.

    The service screens every claim first so that it reads call history (for
    the frequency cap) only for the claims that can still become calls."""
    if not _claimable(contact, batch_id, now):
        return GrantDecision(GrantOutcome.STALE, REASON_STALE)
    if blocker is not None:
        return GrantDecision(GrantOutcome.BATCH_STOPPED, blocker.message, blocker=blocker)
    return None


def decide_grant(
    contact: ClaimedContact | None,
    batch_id: str,
    now: datetime,
    blocker: Blocker | None,
    check: DialCheck,
) -> GrantDecision:
    """The whole decision for one claim, given the compliance check of its
    contact at ``now``."""
    screened = screen_claim(contact, batch_id, now, blocker)
    if screened is not None:
        return screened
    assert contact is not None  # a claimable contact exists
    if check.suppressed:
        return GrantDecision(GrantOutcome.SUPPRESS, check.reason)
    if not check.allowed and check.defer_until is None:
        return GrantDecision(GrantOutcome.NEVER_CALLABLE, check.reason)
    if not check.allowed:
        return GrantDecision(GrantOutcome.DEFER, check.reason, defer_until=check.defer_until)
    return GrantDecision(GrantOutcome.GRANT, attempt_number=contact.attempts + 1)
