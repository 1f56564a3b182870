"""The dialer's side of the server: StartAttempt, MarkAnswered, FinishAttempt.

Redis is advisory; these conditional updates in Postgres decide. The batch
row is locked first in every transaction that moves a contact of the batch
(the same order everywhere, so no deadlock), which also makes a concurrent
PauseBatch or CancelBatch wait for a grant in progress.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, text, update

from server.adapters.db.schema import agents, attempts, batches, contacts, organizations, phone_numbers
from server.domain.batch_rules import BatchStatus
from server.domain.contact_rules import ContactStatus, FINAL, counter_column
from server.domain.cost import call_cost_micros
from server.domain.errors import FailedPrecondition, NotFound
from server.domain.ids import new_id
from server.domain.phone import mask_phone
from server.domain.retry import judge_attempt
from server.service import events, lifecycle
from server.service.context import ServiceContext

log = logging.getLogger(__name__)
WAITING = (ContactStatus.PENDING.value, ContactStatus.QUEUED.value)
RETRYABLE_CANCELLED_REASON = "batch cancelled"


class Decision(str, enum.Enum):
    GRANTED = "granted"
    STALE = "stale"
    BATCH_NOT_RUNNING = "batch_not_running"
    DEFERRED = "deferred"
    SUPPRESSED = "suppressed"


@dataclass
class StartResult:
    decision: Decision
    reason: str = ""
    attempt_id: str = ""
    attempt_number: int = 0
    contact: Any = None
    batch: Any = None
    agent: Any = None
    number: Any = None
    next_attempt_at: datetime | None = None
    started_at: datetime | None = None
    dial_deadline: datetime | None = None
    #: The contact reached a final state without a call (suppressed, or no
    #: calling window opening): the batch may now be complete.
    finalized: bool = False


def _move(from_status: str, to_status: str) -> dict[str, Any]:
    if from_status == to_status:
        return {}
    a, b = counter_column(from_status), counter_column(to_status)
    return {a: getattr(batches.c, a) - 1, b: getattr(batches.c, b) + 1}


def _window_for(batch: Any, org: Any) -> Any:
    from server.domain.calling_window import CallingWindow

    if batch.window_mode == "none":
        return None
    if batch.window_mode == "custom" and batch.window_start:
        return CallingWindow.parse(batch.window_start, batch.window_end, batch.window_weekdays or ())
    if org.window_start:
        return CallingWindow.parse(org.window_start, org.window_end, org.window_weekdays or ())
    return None


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
    now = ctx.clock.now()
    requeue: tuple[str, float] | None = None
    published: list[dict[str, Any]] = []
    async with ctx.engine.begin() as conn:
        batch = (
            await conn.execute(
                select(batches).where(batches.c.id == batch_id, batches.c.org_id == org_id).with_for_update()
            )
        ).first()
        if batch is None or batch.status != BatchStatus.RUNNING.value:
            return StartResult(Decision.BATCH_NOT_RUNNING, f"batch is {batch.status if batch else 'gone'}")
        contact = (
            await conn.execute(
                select(contacts).where(contacts.c.id == contact_id, contacts.c.batch_id == batch_id).with_for_update()
            )
        ).first()
        if (
            contact is None
            or contact.status not in WAITING
            or contact.attempts >= contact.max_attempts
            or (contact.next_attempt_at is not None and contact.next_attempt_at > now)
        ):
            return StartResult(Decision.STALE, "contact not claimable")
        agent = (await conn.execute(select(agents).where(agents.c.id == batch.agent_id))).one()
        number = (await conn.execute(select(phone_numbers).where(phone_numbers.c.id == batch.from_number_id))).one()
        org = (
            await conn.execute(select(organizations).where(organizations.c.id == org_id))
        ).one()

        # System errors fail the batch (DESIGN §4).
        problem = None
        if not agent.active or agent.architecture not in ("pipeline", "realtime"):
            problem = "agent deactivated" if not agent.active else "agent can no longer place calls (TEXT)"
        elif number.deleted_at is not None or number.trunk_kind is None:
            problem = "caller number removed"
        if problem:
            await lifecycle._fail_locked(conn, batch, problem, now)
            published.append(events.batch_event(BatchStatus.FAILED.value, now))
            result = StartResult(Decision.BATCH_NOT_RUNNING, problem)
        elif org.credits_enforced and org.credit_balance_micros <= 0:
            reason = "paused automatically: the organization ran out of credits; an owner can top up and resume"
            await lifecycle.auto_pause(ctx, conn, batch, reason, now)
            published.append(events.batch_event(BatchStatus.PAUSED.value, now))
            result = StartResult(Decision.BATCH_NOT_RUNNING, reason)
        else:
            result, requeue = await _compliance_or_grant(
                ctx, conn, batch, contact, org, now,
                fencing_token=fencing_token, lease_id=lease_id, dialer_id=dialer_id,
                provider_call_id=provider_call_id,
            )
            result.agent, result.number, result.batch = agent, number, batch
            if result.decision in (Decision.GRANTED, Decision.DEFERRED, Decision.SUPPRESSED):
                status = {
                    Decision.GRANTED: ContactStatus.DIALING.value,
                    Decision.DEFERRED: ContactStatus.QUEUED.value,
                    Decision.SUPPRESSED: ContactStatus.SUPPRESSED.value,
                }[result.decision]
                published.append(
                    events.contact_event(contact.id, status, "", result.attempt_number or contact.attempts,
                                         contact.phone, now)
                )
    if result.decision is Decision.BATCH_NOT_RUNNING and published:
        await lifecycle.deactivate_in_redis(ctx, org_id, batch_id, discard_queue=False)
    if requeue is not None:
        try:
            await ctx.redis_state.enqueue(org_id, batch_id, requeue[0], requeue[1])
        except Exception as exc:
            log.warning("re-enqueue failed (%s); reconciler will repair", exc)
    await events.publish(ctx, org_id, batch_id, *published)
    if result.finalized:
        await _maybe_complete(ctx, org_id, batch_id)
    return result


async def _compliance_or_grant(
    ctx: ServiceContext, conn: Any, batch: Any, contact: Any, org: Any, now: datetime, **grant: Any
) -> tuple[StartResult, tuple[str, float] | None]:
    from server.domain.calling_window import resolve_zones
    from server.domain.compliance import check_dial
    from server.adapters.db.schema import do_not_call

    on_dnc = (
        await conn.execute(
            select(do_not_call.c.phone).where(do_not_call.c.org_id == org.id, do_not_call.c.phone == contact.phone)
        )
    ).first() is not None
    window = _window_for(batch, org)
    zones = resolve_zones(contact.phone, window, batch.timezone, now) if window else None
    recent: list[datetime] = []
    if org.frequency_cap_per_24h > 0:
        # Each grant locks only its own batch row: two batches (or dialers)
        # granting the same number at once would both see "under the cap".
        # Serialize grants per (organization, number) until this transaction
        # commits; taken last, after the batch and contact rows, so it cannot
        # deadlock with them.
        await conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"freq-cap:{org.id}:{contact.phone}"},
        )
        recent = list(
            (
                await conn.execute(
                    select(attempts.c.started_at).where(
                        attempts.c.org_id == org.id,
                        attempts.c.phone == contact.phone,
                        attempts.c.started_at > now - timedelta(hours=24),
                    )
                )
            ).scalars()
        )
    check = check_dial(
        at=now,
        window=window,
        zones=zones.zones if zones else (),
        on_dnc=on_dnc,
        recent_call_starts=recent,
        cap_per_24h=org.frequency_cap_per_24h,
    )
    zone_values: dict[str, Any] = {}
    if zones is not None:
        zone_values = {"timezones": list(zones.zones), "tz_fallback": zones.fallback}
    if check.suppressed:
        await conn.execute(
            update(contacts)
            .where(contacts.c.id == contact.id)
            .values(status=ContactStatus.SUPPRESSED.value, failure_reason="on do-not-call list",
                    next_attempt_at=None, wait_reason="", updated_at=now)
        )
        await conn.execute(update(batches).where(batches.c.id == batch.id).values(**_move(contact.status, "suppressed")))
        return StartResult(Decision.SUPPRESSED, "on do-not-call list", finalized=True), None
    if not check.allowed:
        if check.defer_until is None:
            # Never callable inside its window: final, not dialed.
            await conn.execute(
                update(contacts)
                .where(contacts.c.id == contact.id)
                .values(status=ContactStatus.FAILED.value, failure_reason=check.reason,
                        next_attempt_at=None, wait_reason="", updated_at=now, **zone_values)
            )
            await conn.execute(update(batches).where(batches.c.id == batch.id).values(**_move(contact.status, "failed")))
            return StartResult(Decision.STALE, check.reason, finalized=True), None
        await conn.execute(
            update(contacts)
            .where(contacts.c.id == contact.id)
            .values(status=ContactStatus.QUEUED.value, next_attempt_at=check.defer_until,
                    wait_reason=check.reason, updated_at=now, **zone_values)
        )
        moved = _move(contact.status, "queued")
        if moved:  # QUEUED -> QUEUED (a retry or a second deferral) moves no counter
            await conn.execute(update(batches).where(batches.c.id == batch.id).values(**moved))
        return (
            StartResult(Decision.DEFERRED, check.reason, next_attempt_at=check.defer_until),
            (str(contact.id), check.defer_until.timestamp()),
        )
    attempt_id = new_id("att")
    number = contact.attempts + 1
    await conn.execute(
        insert(attempts).values(
            id=attempt_id,
            contact_id=contact.id,
            batch_id=batch.id,
            org_id=org.id,
            phone=contact.phone,
            attempt_number=number,
            fence_token=grant["fencing_token"],
            lease_id=grant["lease_id"],
            dialer_id=grant["dialer_id"],
            provider_call_id=grant["provider_call_id"],
            started_at=now,
        )
    )
    await conn.execute(
        update(contacts)
        .where(contacts.c.id == contact.id)
        .values(
            status=ContactStatus.DIALING.value,
            attempts=number,
            last_attempt_at=now,
            next_attempt_at=None,
            wait_reason="",
            current_attempt_id=attempt_id,
            updated_at=now,
            **zone_values,
        )
    )
    await conn.execute(
        update(batches)
        .where(batches.c.id == batch.id)
        .values(
            attempts_total=batches.c.attempts_total + 1,
            last_grant_at=now,
            **_move(contact.status, ContactStatus.DIALING.value),
        )
    )
    deadline = now + timedelta(seconds=ctx.settings.dial_grace_seconds)
    return (
        StartResult(Decision.GRANTED, attempt_id=attempt_id, attempt_number=number, contact=contact,
                    started_at=now, dial_deadline=deadline),
        None,
    )


async def _lock_attempt(conn: Any, attempt_id: str, token: int) -> tuple[Any, Any, Any]:
    att = (await conn.execute(select(attempts).where(attempts.c.id == attempt_id))).first()
    if att is None:
        raise NotFound(f"attempt {attempt_id} not found")
    batch = (await conn.execute(select(batches).where(batches.c.id == att.batch_id).with_for_update())).first()
    if batch is None:
        raise NotFound(f"attempt {attempt_id} not found")
    att = (await conn.execute(select(attempts).where(attempts.c.id == attempt_id).with_for_update())).one()
    if att.fence_token != token:
        raise FailedPrecondition("STALE_FENCING_TOKEN", "fencing token does not own this attempt")
    contact = (await conn.execute(select(contacts).where(contacts.c.id == att.contact_id).with_for_update())).one()
    return att, batch, contact


async def mark_answered(ctx: ServiceContext, attempt_id: str, token: int, answer_time: datetime | None) -> None:
    now = ctx.clock.now()
    answered = answer_time or now
    async with ctx.engine.begin() as conn:
        att, batch, contact = await _lock_attempt(conn, attempt_id, token)
        if att.ended_at is not None or att.answered_at is not None:
            return
        await conn.execute(update(attempts).where(attempts.c.id == attempt_id).values(answered_at=answered))
        if contact.status == ContactStatus.DIALING.value and contact.current_attempt_id == attempt_id:
            await conn.execute(
                update(contacts)
                .where(contacts.c.id == contact.id)
                .values(status=ContactStatus.CONNECTED.value, call_started_at=answered, updated_at=now)
            )
            await conn.execute(
                update(batches).where(batches.c.id == batch.id).values(**_move("dialing", "connected"))
            )
    await events.publish(
        ctx, att.org_id, att.batch_id,
        events.contact_event(contact.id, "connected", "", contact.attempts, contact.phone, now),
    )


@dataclass
class FinishInput:
    attempt_id: str
    token: int
    outcome: str
    answer_time: datetime | None = None
    end_time: datetime | None = None
    duration_seconds: float = 0.0
    sip_code: int = 0
    recording_uri: str = ""
    transcript: str = ""
    closed_by: str = ""
    detail: str = ""


@dataclass
class FinishResult:
    contact_status: str
    next_attempt_at: datetime | None
    batch_status: str
    extra: dict[str, Any] = field(default_factory=dict)


def _bump(mapping: dict[str, int] | None, key: str) -> dict[str, int]:
    out = dict(mapping or {})
    out[key] = out.get(key, 0) + 1
    return out


async def finish_attempt(ctx: ServiceContext, inp: FinishInput) -> FinishResult:
    from server.domain.circuit_breaker import CircuitBreaker

    now = ctx.clock.now()
    requeue: tuple[str, float] | None = None
    stop_batch: str | None = None
    completed = False
    published: list[dict[str, Any]] = []
    async with ctx.engine.begin() as conn:
        att, batch, contact = await _lock_attempt(conn, inp.attempt_id, inp.token)
        if att.ended_at is not None:
            # A retried FinishAttempt: already recorded, answer the same.
            return FinishResult(contact.status, contact.next_attempt_at, batch.status)
        in_call = contact.current_attempt_id == att.id and contact.status in ("dialing", "connected")
        if inp.outcome == "not_dialed":
            # The grant was never used: undo it, no attempt spent.
            back = ContactStatus.PENDING.value if contact.attempts <= 1 else ContactStatus.QUEUED.value
            await conn.execute(delete(attempts).where(attempts.c.id == att.id))
            values: dict[str, Any] = dict(attempts=contact.attempts - 1, current_attempt_id=None, updated_at=now)
            new_status = back
            if batch.status in (BatchStatus.CANCELLED.value, BatchStatus.FAILED.value):
                new_status = ContactStatus.CANCELLED.value
                values["failure_reason"] = f"batch {batch.status}"
            values["status"] = new_status
            await conn.execute(update(contacts).where(contacts.c.id == contact.id).values(**values))
            await conn.execute(
                update(batches)
                .where(batches.c.id == batch.id)
                .values(attempts_total=batches.c.attempts_total - 1, **_move(contact.status, new_status))
            )
            if new_status in (ContactStatus.PENDING.value, ContactStatus.QUEUED.value):
                requeue = (str(contact.id), now.timestamp())
            published.append(events.contact_event(contact.id, new_status, "", contact.attempts - 1, contact.phone, now))
            result = FinishResult(new_status, None, batch.status)
        else:
            verdict = judge_attempt(inp.outcome, att.attempt_number, contact.max_attempts, now, ctx.retry_policy)
            connected = inp.answer_time is not None or att.answered_at is not None
            duration = max(0.0, inp.duration_seconds) if connected else 0.0
            cost = call_cost_micros(duration, ctx.prices) if connected else 0
            new_status = verdict.contact_status
            reason = verdict.failure_reason
            next_at = verdict.next_attempt_at
            if new_status == ContactStatus.QUEUED.value and batch.status in (
                BatchStatus.CANCELLED.value, BatchStatus.FAILED.value
            ):
                new_status, reason, next_at = ContactStatus.CANCELLED.value, f"batch {batch.status}", None
            end_time = inp.end_time or now
            await conn.execute(
                update(attempts)
                .where(attempts.c.id == att.id)
                .values(
                    ended_at=end_time,
                    answered_at=inp.answer_time or att.answered_at,
                    outcome=inp.outcome,
                    duration_seconds=duration,
                    sip_code=inp.sip_code,
                    recording_uri=inp.recording_uri[:2000],
                    transcript=inp.transcript[:100_000],
                    cost_micros=cost,
                    closed_by=inp.closed_by[:160],
                    detail=inp.detail[:2000],
                )
            )
            contact_values: dict[str, Any] = dict(
                last_outcome=inp.outcome,
                failure_reason=reason,
                next_attempt_at=next_at,
                cost_micros=contacts.c.cost_micros + cost,
                updated_at=now,
            )
            if in_call:
                contact_values.update(status=new_status, current_attempt_id=None)
            if connected:
                contact_values.update(
                    duration_seconds=duration,
                    call_started_at=inp.answer_time or att.answered_at,
                    call_ended_at=end_time,
                    recording_uri=inp.recording_uri[:2000],
                    transcript=inp.transcript[:100_000],
                )
            await conn.execute(update(contacts).where(contacts.c.id == contact.id).values(**contact_values))
            outcomes = _bump(batch.outcomes_by_attempt, f"{att.attempt_number}:{inp.outcome}")
            batch_values: dict[str, Any] = dict(
                outcomes_by_attempt=outcomes,
                cost_micros=batches.c.cost_micros + cost,
                updated_at=now,
            )
            if in_call:
                batch_values.update(_move(contact.status, new_status))
                if new_status in {s.value for s in FINAL}:
                    batch_values["attempt_histogram"] = _bump(batch.attempt_histogram, str(att.attempt_number))
            if connected:
                batch_values.update(
                    connected_calls=batches.c.connected_calls + 1,
                    total_duration_seconds=batches.c.total_duration_seconds + duration,
                )
            org = (await conn.execute(select(organizations).where(organizations.c.id == att.org_id))).one()
            breaker = CircuitBreaker(window=org.circuit_breaker_window, threshold=org.circuit_breaker_threshold)
            recent = breaker.push(list(batch.recent_outcomes or []), inp.outcome)
            batch_values["recent_outcomes"] = recent
            processing = (
                await conn.execute(
                    update(batches)
                    .where(batches.c.id == batch.id)
                    .values(**batch_values)
                    .returning(lifecycle.PROCESSING_SUM)
                )
            ).scalar_one()
            balance = org.credit_balance_micros
            if cost:
                # An atomic decrement, no lock held on the organization row:
                # the balance may go below zero by the calls already in flight.
                balance = (
                    await conn.execute(
                        update(organizations)
                        .where(organizations.c.id == org.id)
                        .values(credit_balance_micros=organizations.c.credit_balance_micros - cost)
                        .returning(organizations.c.credit_balance_micros)
                    )
                ).scalar_one()
            batch_status = batch.status
            if batch.status == BatchStatus.RUNNING.value:
                trip = breaker.should_trip(recent)
                if processing == 0:
                    # Every contact is final: RUNNING -> COMPLETED in this transaction.
                    await conn.execute(
                        update(batches)
                        .where(batches.c.id == batch.id)
                        .values(status=BatchStatus.COMPLETED.value, completed_at=now, updated_at=now)
                    )
                    batch_status = BatchStatus.COMPLETED.value
                    completed = True
                elif trip:
                    stop_batch = trip
                elif org.credits_enforced and balance <= 0:
                    stop_batch = "paused automatically: the organization ran out of credits; an owner can top up and resume"
                if stop_batch:
                    await lifecycle.auto_pause(ctx, conn, batch, stop_batch, now)
                    batch_status = BatchStatus.PAUSED.value
            if new_status == ContactStatus.QUEUED.value and in_call and next_at is not None:
                requeue = (str(contact.id), next_at.timestamp())
            published.append(
                events.contact_event(contact.id, new_status if in_call else contact.status, inp.outcome,
                                     att.attempt_number, contact.phone, now)
            )
            if batch_status != batch.status:
                published.append(events.batch_event(batch_status, now))
            result = FinishResult(new_status, next_at, batch_status)
            log.info(
                "attempt closed batch=%s contact=%s phone=%s attempt=%d outcome=%s status=%s",
                batch.id, contact.id, mask_phone(contact.phone), att.attempt_number, inp.outcome, new_status,
            )
    # Watchers first: the outcome is committed, Redis bookkeeping can follow.
    await events.publish(ctx, att.org_id, att.batch_id, *published)
    if stop_batch or completed:
        await lifecycle.deactivate_in_redis(ctx, att.org_id, att.batch_id, discard_queue=completed)
    if requeue is not None:
        try:
            await ctx.redis_state.enqueue(att.org_id, att.batch_id, requeue[0], requeue[1])
        except Exception as exc:
            log.warning("re-enqueue failed (%s); reconciler will repair", exc)
    return result


async def _maybe_complete(ctx: ServiceContext, org_id: str, batch_id: str) -> str | None:
    """RUNNING -> COMPLETED once every contact is final (counters, no count)."""
    now = ctx.clock.now()
    async with ctx.engine.begin() as conn:
        res = await conn.execute(
            update(batches)
            .where(
                batches.c.id == batch_id,
                batches.c.status == BatchStatus.RUNNING.value,
                lifecycle.PROCESSING_SUM == 0,
            )
            .values(status=BatchStatus.COMPLETED.value, completed_at=now, updated_at=now)
            .returning(batches.c.id)
        )
        done = res.first() is not None
    if not done:
        return None
    await lifecycle.deactivate_in_redis(ctx, org_id, batch_id, discard_queue=True)
    await events.publish(ctx, org_id, batch_id, events.batch_event(BatchStatus.COMPLETED.value, now))
    return BatchStatus.COMPLETED.value
