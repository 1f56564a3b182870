"""The dialer's side of the server: StartAttempt, MarkAnswered, FinishAttempt.

Redis is advisory; these conditional updates in Postgres decide. The batch
row is locked first in every transaction that moves a contact of the batch
(the same order everywhere, so no deadlock), which also makes a concurrent
PauseBatch or CancelBatch wait for a grant in progress.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, text, update

from server.adapters.db import counters
from server.adapters.db.schema import agents, attempts, batches, contacts, organizations, phone_numbers
from server.domain.batch_rules import BatchStatus
from server.domain.contact_rules import ContactStatus, FINAL
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
    stop: dict[str, str] = {}
    async with ctx.engine.begin() as conn:
        # Share lock: grants of one batch run side by side, while Pause and
        # Cancel (exclusive) wait for them and then block new ones.
        batch = (
            await conn.execute(
                select(batches)
                .where(batches.c.id == batch_id, batches.c.org_id == org_id)
                .with_for_update(read=True)
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
        agent, number, org = await _references(conn, batch, org_id)

        # System errors fail the batch (DESIGN §4); no credit pauses it.
        if not agent.active or agent.architecture not in ("pipeline", "realtime"):
            stop["fail"] = "agent deactivated" if not agent.active else "agent can no longer place calls (TEXT)"
        elif number.deleted_at is not None or number.trunk_kind is None:
            stop["fail"] = "caller number removed"
        elif org.credits_enforced and org.credit_balance_micros <= 0:
            stop["pause"] = "paused automatically: the organization ran out of credits; an owner can top up and resume"
        if stop:
            result = StartResult(Decision.BATCH_NOT_RUNNING, stop.get("fail") or stop["pause"])
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
    if stop:
        await lifecycle.system_stop(ctx, org_id, batch_id, **stop)
    if requeue is not None:
        try:
            await ctx.redis_state.enqueue(org_id, batch_id, requeue[0], requeue[1])
        except Exception as exc:
            log.warning("re-enqueue failed (%s); reconciler will repair", exc)
    await events.publish(ctx, org_id, batch_id, *published)
    if result.finalized:
        await lifecycle.complete_if_done(ctx, org_id, batch_id)
    return result


async def _references(conn: Any, batch: Any, org_id: str) -> tuple[Any, Any, Any]:
    """The batch's agent, caller number and organization, read unlocked: a
    change to them fails or pauses the batch in a transaction of its own."""
    agent = (await conn.execute(select(agents).where(agents.c.id == batch.agent_id))).one()
    number = (await conn.execute(select(phone_numbers).where(phone_numbers.c.id == batch.from_number_id))).one()
    org = (await conn.execute(select(organizations).where(organizations.c.id == org_id))).one()
    return agent, number, org


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
        # Grants only share-lock their batch row: two grants (of one batch or
        # two) for the same number at once would both see "under the cap".
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
        await counters.add(conn, batch.id, counters.shard_of(contact.id), **counters.move(contact.status, "suppressed"))
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
            await counters.add(conn, batch.id, counters.shard_of(contact.id), **counters.move(contact.status, "failed"))
            return StartResult(Decision.STALE, check.reason, finalized=True), None
        await conn.execute(
            update(contacts)
            .where(contacts.c.id == contact.id)
            .values(status=ContactStatus.QUEUED.value, next_attempt_at=check.defer_until,
                    wait_reason=check.reason, updated_at=now, **zone_values)
        )
        # QUEUED -> QUEUED (a retry or a second deferral) moves no counter.
        await counters.add(conn, batch.id, counters.shard_of(contact.id), **counters.move(contact.status, "queued"))
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
    bc = counters.bc
    await counters.add(
        conn, batch.id, counters.shard_of(contact.id),
        attempts_total=bc.c.attempts_total + 1,
        last_grant_at=func.greatest(bc.c.last_grant_at, now),
        **counters.move(contact.status, ContactStatus.DIALING.value),
    )
    deadline = now + timedelta(seconds=ctx.settings.dial_grace_seconds)
    return (
        StartResult(Decision.GRANTED, attempt_id=attempt_id, attempt_number=number, contact=contact,
                    started_at=now, dial_deadline=deadline),
        None,
    )


async def _lock_attempt(conn: Any, attempt_id: str, token: int) -> tuple[Any, Any, Any]:
    """Share-locks the batch row (status changes wait for us), then locks the
    attempt and its contact. Same order as StartAttempt: batch, contact."""
    att = (await conn.execute(select(attempts).where(attempts.c.id == attempt_id))).first()
    if att is None:
        raise NotFound(f"attempt {attempt_id} not found")
    batch = (
        await conn.execute(select(batches).where(batches.c.id == att.batch_id).with_for_update(read=True))
    ).first()
    if batch is None:
        raise NotFound(f"attempt {attempt_id} not found")
    contact = (await conn.execute(select(contacts).where(contacts.c.id == att.contact_id).with_for_update())).one()
    att = (await conn.execute(select(attempts).where(attempts.c.id == attempt_id).with_for_update())).first()
    if att is None:
        raise NotFound(f"attempt {attempt_id} not found")
    if att.fence_token != token:
        raise FailedPrecondition("STALE_FENCING_TOKEN", "fencing token does not own this attempt")
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
            await counters.add(conn, batch.id, counters.shard_of(contact.id), **counters.move("dialing", "connected"))
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


CREDITS_PAUSE = "paused automatically: the organization ran out of credits; an owner can top up and resume"


async def _recent_outcomes(conn: Any, batch: Any, window: int) -> list[str]:
    """Outcomes of the batch's latest closed attempts (newest first), since
    the breaker was last reset by a resume."""
    q = select(attempts.c.outcome).where(attempts.c.batch_id == batch.id, attempts.c.closed_seq.is_not(None))
    if batch.breaker_reset_at is not None:
        q = q.where(attempts.c.ended_at > batch.breaker_reset_at)
    rows = await conn.execute(q.order_by(attempts.c.closed_seq.desc()).limit(window))
    return [r.outcome for r in rows]


async def finish_attempt(ctx: ServiceContext, inp: FinishInput) -> FinishResult:
    from server.domain.circuit_breaker import TRIP_OUTCOMES, CircuitBreaker

    now = ctx.clock.now()
    requeue: tuple[str, float] | None = None
    stop: dict[str, str] = {}
    finalized = False
    published: list[dict[str, Any]] = []
    bc = counters.bc
    async with ctx.engine.begin() as conn:
        att, batch, contact = await _lock_attempt(conn, inp.attempt_id, inp.token)
        if att.ended_at is not None:
            # A retried FinishAttempt: already recorded, answer the same.
            return FinishResult(contact.status, contact.next_attempt_at, batch.status)
        shard = counters.shard_of(contact.id)
        in_call = contact.current_attempt_id == att.id and contact.status in ("dialing", "connected")
        stopped = batch.status in (BatchStatus.CANCELLED.value, BatchStatus.FAILED.value)
        if inp.outcome == "not_dialed":
            # The grant was never used: undo it, no attempt spent.
            new_status = ContactStatus.PENDING.value if contact.attempts <= 1 else ContactStatus.QUEUED.value
            await conn.execute(delete(attempts).where(attempts.c.id == att.id))
            values: dict[str, Any] = dict(attempts=contact.attempts - 1, current_attempt_id=None, updated_at=now)
            if stopped:
                new_status = ContactStatus.CANCELLED.value
                values["failure_reason"] = f"batch {batch.status}"
                finalized = True
            values["status"] = new_status
            await conn.execute(update(contacts).where(contacts.c.id == contact.id).values(**values))
            await counters.add(conn, batch.id, shard, attempts_total=bc.c.attempts_total - 1,
                               **counters.move(contact.status, new_status))
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
            if new_status == ContactStatus.QUEUED.value and stopped:
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
                    closed_seq=func.nextval("attempt_close_seq"),
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
            counter_values: dict[str, Any] = dict(
                outcomes_by_attempt=counters.bump_json("outcomes_by_attempt", f"{att.attempt_number}:{inp.outcome}"),
            )
            if cost:
                counter_values["cost_micros"] = bc.c.cost_micros + cost
            if in_call:
                counter_values.update(counters.move(contact.status, new_status))
                if new_status in {s.value for s in FINAL}:
                    finalized = True
                    counter_values["attempt_histogram"] = counters.bump_json("attempt_histogram", str(att.attempt_number))
            if connected:
                counter_values.update(
                    connected_calls=bc.c.connected_calls + 1,
                    total_duration_seconds=bc.c.total_duration_seconds + duration,
                )
            await counters.add(conn, batch.id, shard, **counter_values)
            org = (await conn.execute(select(organizations).where(organizations.c.id == att.org_id))).one()
            balance = org.credit_balance_micros
            if cost:
                # An atomic decrement, no lock held on the organization row
                # beyond this statement: the balance may go below zero by the
                # calls already in flight, never more.
                balance = (
                    await conn.execute(
                        update(organizations)
                        .where(organizations.c.id == org.id)
                        .values(credit_balance_micros=organizations.c.credit_balance_micros - cost)
                        .returning(organizations.c.credit_balance_micros)
                    )
                ).scalar_one()
            if batch.status == BatchStatus.RUNNING.value:
                # Only a tripping outcome can newly trip the breaker.
                if inp.outcome in TRIP_OUTCOMES:
                    breaker = CircuitBreaker(window=org.circuit_breaker_window, threshold=org.circuit_breaker_threshold)
                    trip = breaker.should_trip(await _recent_outcomes(conn, batch, breaker.window))
                    if trip:
                        stop["pause"] = trip
                if not stop and org.credits_enforced and balance <= 0:
                    stop["pause"] = CREDITS_PAUSE
            if new_status == ContactStatus.QUEUED.value and in_call and next_at is not None:
                requeue = (str(contact.id), next_at.timestamp())
            published.append(
                events.contact_event(contact.id, new_status if in_call else contact.status, inp.outcome,
                                     att.attempt_number, contact.phone, now)
            )
            result = FinishResult(new_status, next_at, batch.status)
            log.info(
                "attempt closed batch=%s contact=%s phone=%s attempt=%d outcome=%s status=%s",
                batch.id, contact.id, mask_phone(contact.phone), att.attempt_number, inp.outcome, new_status,
            )
    # Watchers first: the outcome is committed, Redis bookkeeping can follow.
    await events.publish(ctx, att.org_id, att.batch_id, *published)
    if requeue is not None:
        try:
            await ctx.redis_state.enqueue(att.org_id, att.batch_id, requeue[0], requeue[1])
        except Exception as exc:
            log.warning("re-enqueue failed (%s); reconciler will repair", exc)
    if finalized and await lifecycle.complete_if_done(ctx, att.org_id, att.batch_id):
        result.batch_status = BatchStatus.COMPLETED.value
    elif stop:
        status = await lifecycle.system_stop(ctx, att.org_id, att.batch_id, **stop)
        if status:
            result.batch_status = status
    return result
