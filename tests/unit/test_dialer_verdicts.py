"""dialer.verdicts: the reaper's decisions about expired leases, without Redis."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from contract.lease import LeaseRecord
from dialer.providers.base import CallResult, CallState, Outcome
from dialer.verdicts import (
    Act,
    CloseAs,
    Judged,
    ProviderView,
    ReapTiming,
    Verdict,
    call_deadline_ms,
    judge_attached,
    judge_ended,
    judge_unattached,
)

TIMING = ReapTiming(lease_ttl_ms=10_000, ring_timeout_ms=30_000, dial_grace_ms=1_000, ended_status_grace_ms=60_000)
CLAIMED = 1_700_000_000_000
MAX_CALL_MS = 600_000
DEFAULT_MAX = 3_600_000
RESULT = CallResult(outcome=Outcome.BUSY, start_time=datetime(2026, 1, 1, tzinfo=UTC),
                    end_time=datetime(2026, 1, 1, tzinfo=UTC))


def record(**info: object) -> LeaseRecord:
    base = {"batch": "B", "contact": "c1", "token": "7", "dialer": "dead", "provider_call_id": "p1",
            "claimed_ms": str(CLAIMED), "started_ms": str(CLAIMED), "due_ms": str(CLAIMED)}
    base.update({k: str(v) for k, v in info.items()})
    return LeaseRecord(org_id="o", lease_id="l", expiry_ms=CLAIMED + 10_000, info=base)


def attached(**info: object) -> LeaseRecord:
    return record(attempt_id="att", max_call_ms=MAX_CALL_MS, trunk="{}", **info)


DEADLINE = CLAIMED + MAX_CALL_MS + TIMING.ring_timeout_ms + TIMING.lease_ttl_ms


# -- leases without an attempt ------------------------------------------------------


def test_a_lease_without_info_is_an_orphan() -> None:
    empty = LeaseRecord(org_id="o", lease_id="l", expiry_ms=0)
    assert judge_unattached(empty, CLAIMED, TIMING) == Verdict(Act.DROP_ORPHAN, "orphan")


def test_a_young_unattached_claim_is_kept() -> None:
    assert judge_unattached(record(), CLAIMED + 9_999, TIMING) == Verdict(Act.KEEP, "young_claim")


def test_an_old_unattached_claim_is_released() -> None:
    verdict = judge_unattached(record(), CLAIMED + 10_000, TIMING)
    assert verdict == Verdict(Act.RELEASE_UNATTACHED, "unattached_claim")


def test_an_attached_lease_needs_the_provider() -> None:
    assert judge_unattached(attached(), CLAIMED + 10**9, TIMING) is None


# -- leases with an attempt ---------------------------------------------------------


def test_call_deadline_uses_the_default_max_call_when_the_lease_has_none() -> None:
    assert call_deadline_ms(attached(), TIMING, DEFAULT_MAX) == DEADLINE
    assert call_deadline_ms(record(attempt_id="a"), TIMING, DEFAULT_MAX) == (
        CLAIMED + DEFAULT_MAX + TIMING.ring_timeout_ms + TIMING.lease_ttl_ms)


def test_an_ended_call_is_closed_with_the_providers_result() -> None:
    view = ProviderView(CallState.ENDED, RESULT)
    verdict = judge_attached(attached(), CLAIMED + 1, TIMING, view, default_max_call_ms=DEFAULT_MAX)
    assert (verdict.act, verdict.reason, verdict.close_as) == (Act.CLOSE, "ended", CloseAs.PROVIDER_RESULT)


@pytest.mark.parametrize("state", [CallState.RINGING, CallState.IN_PROGRESS])
def test_a_live_call_is_kept_however_long_it_lasts(state: CallState) -> None:
    view = ProviderView(state)
    before = judge_attached(attached(), DEADLINE - 1, TIMING, view, default_max_call_ms=DEFAULT_MAX)
    after = judge_attached(attached(), DEADLINE + 5_000, TIMING, view, default_max_call_ms=DEFAULT_MAX)
    assert before == Verdict(Act.KEEP, state.value)
    assert after == Verdict(Act.KEEP, state.value, overdue_ms=5_000)


def test_unknown_from_an_authoritative_provider_means_never_placed() -> None:
    view = ProviderView(CallState.UNKNOWN, authoritative=True)
    window = CLAIMED + TIMING.dial_grace_ms + TIMING.lease_ttl_ms
    early = judge_attached(attached(), window, TIMING, view, default_max_call_ms=DEFAULT_MAX)
    assert early == Verdict(Act.KEEP, "unknown_before_deadline")
    late = judge_attached(attached(), window + 1, TIMING, view, default_max_call_ms=DEFAULT_MAX)
    assert (late.act, late.reason, late.close_as) == (Act.CLOSE, "never_placed", CloseAs.NOT_DIALED)
    assert "dead" in late.detail


@pytest.mark.parametrize("view, word", [
    (ProviderView(None), "unreachable"),
    (ProviderView(CallState.UNKNOWN), "unknown"),
    (ProviderView(CallState.ENDED), "ended"),  # ENDED without a result proves nothing
])
def test_an_unproven_call_is_kept_until_its_deadline_then_dialer_lost(view: ProviderView, word: str) -> None:
    kept = judge_attached(attached(), DEADLINE, TIMING, view, default_max_call_ms=DEFAULT_MAX)
    assert kept == Verdict(Act.KEEP, f"{word}_before_deadline")
    lost = judge_attached(attached(), DEADLINE + 1, TIMING, view, default_max_call_ms=DEFAULT_MAX)
    assert (lost.act, lost.reason, lost.close_as) == (Act.CLOSE, "dialer_lost", CloseAs.DIALER_LOST)
    assert lost.detail == f"dialer dead lost; provider state {word}"


# -- ended leases -------------------------------------------------------------------


ENDED_AT = CLAIMED + 50_000


def test_an_ended_lease_without_an_attempt_is_an_orphan() -> None:
    assert judge_ended(record(ended_ms=ENDED_AT), ENDED_AT, TIMING, ProviderView(None)).act is Act.DROP_ORPHAN


def test_an_ended_lease_is_closed_with_the_providers_result() -> None:
    verdict = judge_ended(attached(ended_ms=ENDED_AT), ENDED_AT, TIMING, ProviderView(CallState.ENDED, RESULT))
    assert (verdict.act, verdict.reason, verdict.close_as) == (
        Act.CLOSE, "ended_by_provider", CloseAs.PROVIDER_RESULT)


def test_an_unreachable_provider_is_waited_for_only_within_the_grace() -> None:
    lease = attached(ended_ms=ENDED_AT)
    grace_end = ENDED_AT + TIMING.ended_status_grace_ms
    assert judge_ended(lease, grace_end, TIMING, ProviderView(None)) == Verdict(Act.KEEP, "ended_unreachable")
    late = judge_ended(lease, grace_end + 1, TIMING, ProviderView(None))
    assert (late.act, late.reason, late.close_as) == (Act.CLOSE, "ended_dialer_lost", CloseAs.DIALER_LOST)
    assert late.detail.endswith("provider state unreachable")


def test_an_ended_lease_the_provider_does_not_know_is_dialer_lost_at_once() -> None:
    verdict = judge_ended(attached(ended_ms=ENDED_AT), ENDED_AT, TIMING, ProviderView(CallState.UNKNOWN))
    assert (verdict.act, verdict.close_as) == (Act.CLOSE, CloseAs.DIALER_LOST)


def test_judged_reads_as_the_log_word() -> None:
    assert str(Judged(True, "ended")) == "released:ended"
    assert str(Judged(False, "ringing")) == "kept:ringing"
