"""Batch state transitions. Postgres decides (row lock on the batch); Redis
follows after the commit and is repaired by the reconciler if that fails."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from server.adapters.db import counters
from server.adapters.db.schema import agents, batches, contacts, organizations, phone_numbers
from server.domain.batch_rules import (
    REFUSAL_REASON,
    Action,
    BatchStatus,
    allowed,
    refusal_message,
)
from server.domain.auth import Principal
from server.domain.batch_readiness import BatchStop, Blocker, RunConditions, StopKind, run_blocker
from server.domain.contact_rules import WAITING, WAITING_VALUES, ContactStatus, counter_column
from server.domain.errors import FailedPrecondition, NotFound
from server.service import events
from server.service.context import ServiceContext

log = logging.getLogger(__name__)


async def lock_batch(conn: AsyncConnection, org_id: str, batch_id: str) -> Any:
    row = (
        await conn.execute(
            select(batches).where(batches.c.id == batch_id, batches.c.org_id == org_id).with_for_update()
        )
    ).first()
    if row is None:
        raise NotFound(f"batches/{batch_id} not found")
    return row


def check_action(action: Action, row: Any) -> None:
    status = BatchStatus(row.status)
    if not allowed(action, status):
        raise FailedPrecondition(
            REFUSAL_REASON[action], refusal_message(action, status), {"status": status.label}
        )


async def _ready_items(conn: AsyncConnection, batch_id: str, now: datetime) -> list[tuple[str, float]]:
    rows = await conn.execute(
        select(contacts.c.id, contacts.c.next_attempt_at).where(
            contacts.c.batch_id == batch_id, contacts.c.status.in_(WAITING_VALUES)
        )
    )
    return [(str(r.id), (r.next_attempt_at or now).timestamp()) for r in rows]


async def _start_blocker(conn: AsyncConnection, row: Any) -> Blocker | None:
    """Why the batch cannot run now (None: it can), read from its agent,
    caller number and organization."""
    agent = (await conn.execute(select(agents).where(agents.c.id == row.agent_id))).first()
    number = (await conn.execute(select(phone_numbers).where(phone_numbers.c.id == row.from_number_id))).first()
    org = (await conn.execute(select(organizations).where(organizations.c.id == row.org_id))).one()
    return run_blocker(RunConditions(
        agent_active=agent is not None and agent.active,
        agent_architecture=agent.architecture if agent is not None else "",
        number_present=number is not None and number.deleted_at is None,
        number_has_trunk=number is not None and number.trunk_kind is not None,
        credits_enforced=org.credits_enforced,
        credit_balance_micros=org.credit_balance_micros,
    ))


async def try_start(ctx: ServiceContext, org_id: str, batch_id: str, *, from_statuses: tuple[str, ...],
                    waiting_ids: list[int] | None = None, queue_filled: bool = False) -> str:
    """PENDING/SCHEDULED -> RUNNING when nothing blocks it. Returns the new
    status. Safe with several replicas: the row lock decides.
    ``waiting_ids``: the batch's waiting contacts when the caller knows them
    (CreateBatch: all PENDING, none due later), instead of reading them.
    ``queue_filled``: the caller already wrote exactly those to the ready
    queue (CreateBatch, during its COPY): the activation writes the meta and
    the ring only."""
    now = ctx.clock.now()
    async with ctx.engine.begin() as conn:
        row = await lock_batch(conn, org_id, batch_id)
        if row.status not in from_statuses:
            return row.status
        blocker = await _start_blocker(conn, row)
        if blocker is not None:
            reason = blocker.message
            if blocker.fails_batch:
                await _fail_locked(conn, row, reason, now)
                new_status = BatchStatus.FAILED.value
            else:
                # Held, not failed: a top-up lets the scheduler start it.
                if row.status_reason != reason or row.status != BatchStatus.PENDING.value:
                    await conn.execute(
                        update(batches)
                        .where(batches.c.id == batch_id)
                        .values(status=BatchStatus.PENDING.value, status_reason=reason, updated_at=now)
                    )
                return BatchStatus.PENDING.value
        else:
            new_status = BatchStatus.RUNNING.value
            await conn.execute(
                update(batches)
                .where(batches.c.id == batch_id)
                .values(
                    status=new_status,
                    status_reason="",
                    started_at=func.coalesce(batches.c.started_at, now),
                    updated_at=now,
                )
            )
            if waiting_ids is None:
                ready = await _ready_items(conn, batch_id, now)
                waiting = bool(ready)
            else:
                due = now.timestamp()
                ready = [] if queue_filled else [(str(i), due) for i in waiting_ids]
                waiting = bool(waiting_ids)
            if not waiting and await counters.in_call(conn, batch_id) == 0:
                await conn.execute(
                    update(batches)
                    .where(batches.c.id == batch_id)
                    .values(status=BatchStatus.COMPLETED.value, completed_at=now)
                )
                new_status = BatchStatus.COMPLETED.value
    if new_status == BatchStatus.RUNNING.value:
        await activate_in_redis(ctx, org_id, row, ready)
    await events.publish(ctx, org_id, batch_id, events.batch_event(new_status, now))
    return new_status


async def activate_in_redis(ctx: ServiceContext, org_id: str, row: Any, ready: list[tuple[str, float]]) -> None:
    try:
        await ctx.redis_state.activate_batch(
            org_id,
            row.id,
            concurrency_limit=row.concurrency_limit,
            max_call_seconds=row.max_call_seconds,
            ready=ready,
        )
    except Exception as exc:  # the reconciler repairs Redis from Postgres
        log.warning("redis activation of %s failed (%s); reconciler will repair", row.id, exc)


async def deactivate_in_redis(ctx: ServiceContext, org_id: str, batch_id: str, discard_queue: bool) -> None:
    try:
        await ctx.redis_state.deactivate_batch(org_id, batch_id, discard_queue=discard_queue)
    except Exception as exc:
        log.warning("redis deactivation of %s failed (%s); reconciler will repair", batch_id, exc)


async def _wait_out_grants(ctx: ServiceContext, batch_id: str) -> None:
    """A grant issued just before the status change may still turn into a
    call within the dial grace; wait it out so that once pause or cancel
    returns, no call starts (dialers abandon grants older than the grace).
    Called after the status change committed: grants share-lock the batch
    row, so none can be issued after it."""
    async with ctx.engine.connect() as conn:
        last_grant_at = await counters.last_grant(conn, batch_id)
    if last_grant_at is None:
        return
    remaining = (last_grant_at.timestamp() + ctx.settings.dial_grace_seconds) - ctx.clock.now().timestamp()
    if remaining > 0:
        await asyncio.sleep(min(remaining, ctx.settings.dial_grace_seconds))


async def pause(ctx: ServiceContext, p: Principal, batch_id: str, reason: str = "") -> str:
    p.require_write()
    now = ctx.clock.now()
    async with ctx.engine.begin() as conn:
        row = await lock_batch(conn, p.org_id, batch_id)
        check_action(Action.PAUSE, row)
        await _set_paused(conn, batch_id, reason, now)
    await deactivate_in_redis(ctx, p.org_id, batch_id, discard_queue=False)
    await _wait_out_grants(ctx, batch_id)
    await events.publish(ctx, p.org_id, batch_id, events.batch_event(BatchStatus.PAUSED.value, now))
    return batch_id


async def _set_paused(conn: AsyncConnection, batch_id: str, reason: str, now: datetime) -> None:
    await conn.execute(
        update(batches)
        .where(batches.c.id == batch_id)
        .values(status=BatchStatus.PAUSED.value, status_reason=reason, updated_at=now)
    )


async def system_stop(ctx: ServiceContext, org_id: str, batch_id: str, stop: BatchStop) -> str | None:
    """The system pauses (circuit breaker, credits) or fails (a removed agent
    or number) a running batch, in a transaction of its own: attempts only
    share-lock the batch row, so they never change its status themselves.
    A paused batch can still fail. Returns the new status, or None when the
    batch was no longer running (or paused, for a failure)."""
    now = ctx.clock.now()
    fails = stop.kind is StopKind.FAIL
    async with ctx.engine.begin() as conn:
        row = await lock_batch(conn, org_id, batch_id)
        if row.status != BatchStatus.RUNNING.value and not (fails and row.status == BatchStatus.PAUSED.value):
            return None
        if fails:
            await _fail_locked(conn, row, stop.reason, now)
            status = BatchStatus.FAILED.value
        else:
            await _set_paused(conn, batch_id, stop.reason, now)
            status = BatchStatus.PAUSED.value
    await deactivate_in_redis(ctx, org_id, batch_id, discard_queue=fails)
    await events.publish(ctx, org_id, batch_id, events.batch_event(status, now))
    return status


async def complete_if_done(ctx: ServiceContext, org_id: str, batch_id: str) -> bool:
    """RUNNING -> COMPLETED once every contact is final. Run after each
    transaction that finalizes a contact: the last one to commit sees the
    summed counters at zero."""
    now = ctx.clock.now()
    async with ctx.engine.begin() as conn:
        res = await conn.execute(
            update(batches)
            .where(
                batches.c.id == batch_id,
                batches.c.status == BatchStatus.RUNNING.value,
                counters.processing_is_zero(),
            )
            .values(status=BatchStatus.COMPLETED.value, completed_at=now, updated_at=now)
            .returning(batches.c.id)
        )
        done = res.first() is not None
    if done:
        await deactivate_in_redis(ctx, org_id, batch_id, discard_queue=True)
        await events.publish(ctx, org_id, batch_id, events.batch_event(BatchStatus.COMPLETED.value, now))
    return done


async def resume(ctx: ServiceContext, p: Principal, batch_id: str) -> str:
    p.require_write()
    now = ctx.clock.now()
    async with ctx.engine.begin() as conn:
        row = await lock_batch(conn, p.org_id, batch_id)
        check_action(Action.RESUME, row)
        blocker = await _start_blocker(conn, row)
        if blocker is not None:
            if blocker.fails_batch:
                await _fail_locked(conn, row, blocker.message, now)
                status = BatchStatus.FAILED.value
            else:
                raise FailedPrecondition(
                    "INSUFFICIENT_CREDITS", f"cannot resume: {blocker.message}", {"status": "PAUSED"}
                )
        else:
            status = BatchStatus.RUNNING.value
            if await counters.processing(conn, batch_id) == 0:
                status = BatchStatus.COMPLETED.value
            await conn.execute(
                update(batches)
                .where(batches.c.id == batch_id)
                .values(
                    status=status,
                    status_reason="",
                    updated_at=now,
                    completed_at=now if status == BatchStatus.COMPLETED.value else None,
                    # The operator resumed after looking: the circuit breaker
                    # judges the attempts from here on, not the ones that tripped it.
                    breaker_reset_at=now,
                )
            )
            ready = await _ready_items(conn, batch_id, now)
    if status == BatchStatus.RUNNING.value:
        await activate_in_redis(ctx, p.org_id, row, ready)
    else:
        await deactivate_in_redis(ctx, p.org_id, batch_id, discard_queue=True)
    await events.publish(ctx, p.org_id, batch_id, events.batch_event(status, now))
    return batch_id


async def _end_waiting(conn: AsyncConnection, batch_id: str, reason: str, now: datetime) -> int:
    """Waiting contacts of a stopped batch end CANCELLED (never called)."""
    counts = dict(
        (
            await conn.execute(
                select(contacts.c.status, func.count())
                .where(contacts.c.batch_id == batch_id, contacts.c.status.in_(WAITING_VALUES))
                .group_by(contacts.c.status)
            )
        ).all()
    )
    if not counts:
        return 0
    await conn.execute(
        update(contacts)
        .where(contacts.c.batch_id == batch_id, contacts.c.status.in_(WAITING_VALUES))
        .values(
            status=ContactStatus.CANCELLED.value,
            failure_reason=reason,
            next_attempt_at=None,
            wait_reason="",
            updated_at=now,
        )
    )
    moved = sum(counts.values())
    bc = counters.bc
    waiting_columns = {
        counter_column(s): bc.c[counter_column(s)] - counts.get(s.value, 0) for s in sorted(WAITING)
    }
    await counters.add(conn, batch_id, 0, **waiting_columns, n_cancelled=bc.c.n_cancelled + moved)
    return moved


async def cancel(ctx: ServiceContext, p: Principal, batch_id: str) -> str:
    p.require_write()
    now = ctx.clock.now()
    async with ctx.engine.begin() as conn:
        row = await lock_batch(conn, p.org_id, batch_id)
        check_action(Action.CANCEL, row)
        await conn.execute(
            update(batches)
            .where(batches.c.id == batch_id)
            .values(status=BatchStatus.CANCELLED.value, status_reason="cancelled by user", updated_at=now)
        )
        await _end_waiting(conn, batch_id, "batch cancelled", now)
    await deactivate_in_redis(ctx, p.org_id, batch_id, discard_queue=True)
    await _wait_out_grants(ctx, batch_id)
    await events.publish(ctx, p.org_id, batch_id, events.batch_event(BatchStatus.CANCELLED.value, now))
    return batch_id


async def _fail_locked(conn: AsyncConnection, row: Any, reason: str, now: datetime) -> None:
    await conn.execute(
        update(batches)
        .where(batches.c.id == row.id)
        .values(status=BatchStatus.FAILED.value, status_reason=reason, updated_at=now, completed_at=now)
    )
    await _end_waiting(conn, row.id, f"batch failed: {reason}", now)


async def fail_batches_using(ctx: ServiceContext, org_id: str, condition: Any, blocker: Blocker) -> list[str]:
    """Running and paused batches that depend on a changed or removed
    resource (``condition`` selects them) fail with ``blocker``'s reason."""
    reason = blocker.message
    now = ctx.clock.now()
    failed: list[str] = []
    async with ctx.engine.begin() as conn:
        ids = (
            await conn.execute(
                select(batches.c.id).where(
                    batches.c.org_id == org_id,
                    condition,
                    batches.c.status.in_((BatchStatus.RUNNING.value, BatchStatus.PAUSED.value)),
                )
            )
        ).scalars().all()
        for batch_id in ids:
            row = await lock_batch(conn, org_id, batch_id)
            if row.status in (BatchStatus.RUNNING.value, BatchStatus.PAUSED.value):
                await _fail_locked(conn, row, reason, now)
                failed.append(batch_id)
    for batch_id in failed:
        await deactivate_in_redis(ctx, org_id, batch_id, discard_queue=True)
        await events.publish(ctx, org_id, batch_id, events.batch_event(BatchStatus.FAILED.value, now))
    return failed


async def delete_batch(ctx: ServiceContext, p: Principal, batch_id: str) -> None:
    """Deletes the batch and its contacts; its attempts (the call records
    billing and the frequency cap read) stay (no foreign key since
    migration 0008). Refused while a call of it is live: a contact DIALING
    or CONNECTED, or a lease of the batch in Redis (claimed, in a call, or
    ended with its outcome not yet recorded)."""
    p.require_write()
    leased = await ctx.redis_state.leased_contacts(p.org_id, batch_id)
    async with ctx.engine.begin() as conn:
        row = await lock_batch(conn, p.org_id, batch_id)
        check_action(Action.DELETE, row)
        in_call = (
            await conn.execute(
                select(func.count()).select_from(contacts).where(
                    contacts.c.batch_id == batch_id,
                    contacts.c.status.in_((ContactStatus.DIALING.value, ContactStatus.CONNECTED.value)),
                )
            )
        ).scalar_one()
        if in_call or leased:
            raise FailedPrecondition(
                "BATCH_HAS_LIVE_CALLS",
                f"batches/{batch_id} has live calls ({in_call} contacts dialing or connected, "
                f"{len(leased)} under a dialer's lease): cancel it and delete it when they have ended",
                {"live_contacts": str(max(in_call, len(leased)))},
            )
        await conn.execute(delete(contacts).where(contacts.c.batch_id == batch_id))
        await conn.execute(delete(batches).where(batches.c.id == batch_id))
    await deactivate_in_redis(ctx, p.org_id, batch_id, discard_queue=True)


async def reschedule(ctx: ServiceContext, p: Principal, batch_id: str, when: datetime, tz: str) -> str:
    p.require_write()
    now = ctx.clock.now()
    async with ctx.engine.begin() as conn:
        row = await lock_batch(conn, p.org_id, batch_id)
        check_action(Action.RESCHEDULE, row)
        await conn.execute(
            update(batches)
            .where(batches.c.id == batch_id)
            .values(
                status=BatchStatus.SCHEDULED.value,
                scheduled_at=when,
                timezone=tz,
                status_reason="",
                updated_at=now,
            )
        )
    await events.publish(ctx, p.org_id, batch_id, events.batch_event(BatchStatus.SCHEDULED.value, now))
    return batch_id
