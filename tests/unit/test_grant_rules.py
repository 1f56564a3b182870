"""The per-contact StartAttempt decision, table-driven."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest

from server.domain.batch_readiness import Blocker
from server.domain.compliance import REASON_DNC, REASON_OUTSIDE_WINDOW, DialCheck, no_opening_reason
from server.domain.contact_rules import ContactStatus
from server.domain.grant_rules import (
    REASON_STALE,
    ClaimedContact,
    GrantDecision,
    GrantOutcome,
    decide_grant,
    screen_claim,
)

NOW = datetime(2025, 3, 12, 15, 0, tzinfo=timezone.utc)
LATER = NOW + timedelta(hours=2)
BATCH = "bat_1"
WAITING_CONTACT = ClaimedContact(batch_id=BATCH, status="pending", attempts=0, max_attempts=3, next_attempt_at=None)

ALLOWED = DialCheck(True, None, "")
DNC = DialCheck(False, None, REASON_DNC, suppressed=True)
CLOSED = DialCheck(False, LATER, REASON_OUTSIDE_WINDOW)
NEVER = DialCheck(False, None, no_opening_reason())


def contact(**changes: object) -> ClaimedContact:
    return dataclasses.replace(WAITING_CONTACT, **changes)


@pytest.mark.parametrize(
    ("claimed", "blocker", "check", "expected"),
    [
        # Granted as the next attempt, from either waiting status.
        (contact(), None, ALLOWED, GrantDecision(GrantOutcome.GRANT, attempt_number=1)),
        (contact(status="queued", attempts=2, next_attempt_at=NOW), None, ALLOWED,
         GrantDecision(GrantOutcome.GRANT, attempt_number=3)),
        # Stale claims: gone, another batch, not waiting, out of attempts, not due.
        (None, None, ALLOWED, GrantDecision(GrantOutcome.STALE, REASON_STALE)),
        (contact(batch_id="bat_2"), None, ALLOWED, GrantDecision(GrantOutcome.STALE, REASON_STALE)),
        (contact(status="dialing"), None, ALLOWED, GrantDecision(GrantOutcome.STALE, REASON_STALE)),
        (contact(status="completed"), None, ALLOWED, GrantDecision(GrantOutcome.STALE, REASON_STALE)),
        (contact(attempts=3), None, ALLOWED, GrantDecision(GrantOutcome.STALE, REASON_STALE)),
        (contact(status="queued", next_attempt_at=LATER), None, ALLOWED,
         GrantDecision(GrantOutcome.STALE, REASON_STALE)),
        # A stale claim stays stale even when the batch is blocked too.
        (contact(status="dialing"), Blocker.AGENT_INACTIVE, ALLOWED, GrantDecision(GrantOutcome.STALE, REASON_STALE)),
        # The batch cannot run: nothing is dialed, whatever compliance says.
        (contact(), Blocker.NO_CREDITS, ALLOWED,
         GrantDecision(GrantOutcome.BATCH_STOPPED, Blocker.NO_CREDITS.message, blocker=Blocker.NO_CREDITS)),
        (contact(), Blocker.NUMBER_REMOVED, DNC,
         GrantDecision(GrantOutcome.BATCH_STOPPED, Blocker.NUMBER_REMOVED.message, blocker=Blocker.NUMBER_REMOVED)),
        # Compliance.
        (contact(), None, DNC, GrantDecision(GrantOutcome.SUPPRESS, REASON_DNC)),
        (contact(), None, NEVER, GrantDecision(GrantOutcome.NEVER_CALLABLE, no_opening_reason())),
        (contact(), None, CLOSED, GrantDecision(GrantOutcome.DEFER, REASON_OUTSIDE_WINDOW, defer_until=LATER)),
    ],
)
def test_decide_grant(
    claimed: ClaimedContact | None, blocker: Blocker | None, check: DialCheck, expected: GrantDecision
) -> None:
    assert decide_grant(claimed, BATCH, NOW, blocker, check) == expected


@pytest.mark.parametrize(
    ("claimed", "blocker", "expected"),
    [
        (contact(), None, None),
        (contact(attempts=3), None, GrantOutcome.STALE),
        (contact(), Blocker.AGENT_NOT_VOICE, GrantOutcome.BATCH_STOPPED),
    ],
)
def test_screen_claim_decides_what_needs_no_dial_check(
    claimed: ClaimedContact, blocker: Blocker | None, expected: GrantOutcome | None
) -> None:
    screened = screen_claim(claimed, BATCH, NOW, blocker)
    assert (screened.outcome if screened else None) is expected


@pytest.mark.parametrize(
    ("outcome", "status"),
    [
        (GrantOutcome.GRANT, ContactStatus.DIALING),
        (GrantOutcome.STALE, None),
        (GrantOutcome.BATCH_STOPPED, None),
        (GrantOutcome.SUPPRESS, ContactStatus.SUPPRESSED),
        (GrantOutcome.NEVER_CALLABLE, ContactStatus.FAILED),
        (GrantOutcome.DEFER, ContactStatus.QUEUED),
    ],
)
def test_each_outcome_leaves_one_contact_status(outcome: GrantOutcome, status: ContactStatus | None) -> None:
    assert GrantDecision(outcome).new_status is status
