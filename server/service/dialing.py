"""The dialer's side of the server: StartAttempt, MarkAnswered, FinishAttempt.

Redis is advisory; conditional updates in Postgres decide. Each use case is
implemented once, set-based, for many items in one transaction (``grants``
for StartAttempt, ``outcomes`` for MarkAnswered and FinishAttempt): a dialer
under load sends the batch RPCs, and the single RPCs below are batches of
one, so both follow the same rules and the same lock order.
"""

from __future__ import annotations

from datetime import datetime

from server.domain.errors import DomainError
from server.service.context import ServiceContext
from server.service.dialing_types import (
    AnswerInput,
    Decision,
    FinishInput,
    FinishResult,
    StartInput,
    StartResult,
)
from server.service.grants import start_attempts
from server.service.outcomes import finish_attempts, mark_answered_many

__all__ = [
    "AnswerInput",
    "Decision",
    "FinishInput",
    "FinishResult",
    "StartInput",
    "StartResult",
    "finish_attempt",
    "finish_attempts",
    "mark_answered",
    "mark_answered_many",
    "start_attempt",
    "start_attempts",
]


async def start_attempt(
    ctx: ServiceContext,
    *,
    org_id: str,
    batch_id: str,
    contact_id: int,
    fencing_token: int,
    lease_id: str,
    dialer_id: str,
    provider_call_id: str,
) -> StartResult:
    item = StartInput(org_id, batch_id, contact_id, fencing_token, lease_id, dialer_id, provider_call_id)
    return (await start_attempts(ctx, [item]))[0]


async def mark_answered(ctx: ServiceContext, attempt_id: str, token: int, answer_time: datetime | None) -> None:
    error = (await mark_answered_many(ctx, [AnswerInput(attempt_id, token, answer_time)]))[0]
    if error is not None:
        raise error


async def finish_attempt(ctx: ServiceContext, inp: FinishInput) -> FinishResult:
    result = (await finish_attempts(ctx, [inp]))[0]
    if isinstance(result, DomainError):
        raise result
    return result
