"""The one "can this batch run?" rule, table-driven."""

from __future__ import annotations

import dataclasses

import pytest

from server.domain.batch_readiness import (
    AUTO_PAUSE_PREFIX,
    BatchStop,
    Blocker,
    RunConditions,
    StopKind,
    run_blocker,
)

READY = RunConditions(
    agent_active=True,
    agent_architecture="pipeline",
    number_present=True,
    number_has_trunk=True,
    credits_enforced=True,
    credit_balance_micros=1,
)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, None),
        ({"agent_architecture": "realtime"}, None),
        ({"credits_enforced": False, "credit_balance_micros": 0}, None),
        ({"credits_enforced": False, "credit_balance_micros": -5}, None),
        ({"agent_active": False}, Blocker.AGENT_INACTIVE),
        ({"agent_architecture": "text"}, Blocker.AGENT_NOT_VOICE),
        ({"agent_architecture": ""}, Blocker.AGENT_NOT_VOICE),
        ({"number_present": False}, Blocker.NUMBER_REMOVED),
        ({"number_has_trunk": False}, Blocker.NUMBER_WITHOUT_TRUNK),
        ({"credit_balance_micros": 0}, Blocker.NO_CREDITS),
        ({"credit_balance_micros": -1}, Blocker.NO_CREDITS),
        # Precedence: the agent first, then the number, credits last.
        ({"agent_active": False, "agent_architecture": "text"}, Blocker.AGENT_INACTIVE),
        ({"agent_architecture": "text", "number_present": False}, Blocker.AGENT_NOT_VOICE),
        ({"number_present": False, "number_has_trunk": False}, Blocker.NUMBER_REMOVED),
        ({"number_has_trunk": False, "credit_balance_micros": 0}, Blocker.NUMBER_WITHOUT_TRUNK),
    ],
)
def test_run_blocker(changes: dict[str, object], expected: Blocker | None) -> None:
    assert run_blocker(dataclasses.replace(READY, **changes)) is expected


def test_every_blocker_has_its_own_message() -> None:
    messages = [b.message for b in Blocker]
    assert all(messages) and len(set(messages)) == len(messages)


def test_only_credits_are_a_wait() -> None:
    assert [b for b in Blocker if not b.fails_batch] == [Blocker.NO_CREDITS]


@pytest.mark.parametrize(
    ("blocker", "kind", "reason"),
    [
        (Blocker.AGENT_INACTIVE, StopKind.FAIL, "agent is not active"),
        (Blocker.NUMBER_REMOVED, StopKind.FAIL, "caller number removed"),
        (Blocker.NO_CREDITS, StopKind.PAUSE, AUTO_PAUSE_PREFIX + Blocker.NO_CREDITS.message),
    ],
)
def test_stop_for_blocker(blocker: Blocker, kind: StopKind, reason: str) -> None:
    assert BatchStop.for_blocker(blocker) == BatchStop(kind, reason)
