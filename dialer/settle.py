"""What became of a call whose ``place_call`` did not return a result.

Two paths end a call without the provider's own answer: the dialer hung it
up (a hard stop cancelled ``place_call``), or ``place_call`` raised. Both
ask the provider what it knows before deciding, because the outcome is
recorded once and decides whether the contact is called again. ``over``
says whether the call is known to be over at the provider: only then may
its slots be given back before FinishAttempt (end_call.lua,
docs/design.md §5, invariant 3).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from batchcalls.v1 import resources_pb2

from dialer.providers.base import (
    CallRequest,
    CallResult,
    CallState,
    Outcome,
    TelephonyProvider,
)
from dialer.server_client import outcome_to_proto

__all__ = ["Settled", "settle_after_error", "settle_cancelled"]

#: How long the provider is asked about a call we hung up.
CANCELLED_STATUS_TIMEOUT_SECONDS = 5
#: How long each status question about a call whose place_call raised waits.
ERROR_STATUS_TIMEOUT_SECONDS = 10
#: Pause between those questions while the call may be live.
ERROR_STATUS_INTERVAL_SECONDS = 1.0


@dataclass(frozen=True)
class Settled:
    """The outcome to report for a call, and whether it is over."""

    outcome: int  # resources_pb2.CallOutcome
    result: CallResult | None
    detail: str
    #: Known to be over at the provider: its slots may be given back now.
    over: bool


async def settle_cancelled(
    provider: TelephonyProvider, request: CallRequest, answered: list[datetime], clock: Callable[[], float]
) -> Settled:
    """The call was hung up by us (hard stop). Prefer the provider's
    record; ``over`` only when the provider confirmed the call ENDED.
    ``clock``: epoch seconds, for the end time when the provider gave none."""
    try:
        status = await asyncio.wait_for(provider.call_status(request.provider_call_id, request.trunk),
                                        CANCELLED_STATUS_TIMEOUT_SECONDS)
        if status.state is CallState.ENDED and status.result is not None:
            return Settled(outcome_to_proto(status.result.outcome), status.result,
                           "hung up: dialer shutting down", True)
    except Exception:
        pass
    end = datetime.fromtimestamp(clock(), UTC)
    if answered:
        result = CallResult(
            outcome=Outcome.COMPLETED, start_time=answered[0], end_time=end, answer_time=answered[0],
            duration_seconds=max(0.0, (end - answered[0]).total_seconds()),
            detail="hung up: dialer shutting down",
        )
        return Settled(resources_pb2.CALL_OUTCOME_COMPLETED, result, result.detail, False)
    return Settled(resources_pb2.CALL_OUTCOME_DIALER_LOST, None, "cancelled before answer: dialer shutting down", False)


async def settle_after_error(
    provider: TelephonyProvider,
    request: CallRequest,
    exc: BaseException,
    *,
    deadline_ms: int,
    now_ms: Callable[[], int],
    hard_stopped: Callable[[], bool],
) -> Settled:
    """place_call raised: learn from the provider whether a call exists.
    ENDED -> its result; RINGING/IN_PROGRESS -> wait for it; UNKNOWN -> no
    call is live: DIALER_LOST (retryable, counted). ``over`` when the
    provider said ENDED or UNKNOWN, or it stayed unreachable past
    ``deadline_ms`` (started + max call + ring timeout + ttl: the reaper's
    rule); not when a hard stop cut the wait short while the call may be
    live."""
    detail = f"provider error: {exc!r}"[:500]
    while True:
        state = None
        try:
            status = await asyncio.wait_for(provider.call_status(request.provider_call_id, request.trunk),
                                            ERROR_STATUS_TIMEOUT_SECONDS)
            state = status.state
            if state is CallState.ENDED and status.result is not None:
                return Settled(outcome_to_proto(status.result.outcome), status.result, detail, True)
            if state is CallState.UNKNOWN:
                return Settled(resources_pb2.CALL_OUTCOME_DIALER_LOST, None, detail, True)
        except Exception:
            pass
        past_deadline = now_ms() > deadline_ms
        if past_deadline or hard_stopped():
            over = past_deadline and state not in (CallState.RINGING, CallState.IN_PROGRESS)
            return Settled(resources_pb2.CALL_OUTCOME_DIALER_LOST, None, detail + f"; provider state {state}", over)
        await asyncio.sleep(ERROR_STATUS_INTERVAL_SECONDS)
