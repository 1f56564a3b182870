"""MarkAnswered and FinishAttempt for many attempts at once: one
transaction, set-based SQL, per-item results (a stale fencing token or an
unknown attempt is refused on its own and never fails the others).

Locks, in the order StartAttempt takes them: batch rows shared (ordered by
id), contact rows (ordered by id), then attempt rows. The rules are exactly
those of a single call: the single RPCs are batches of one.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, String, any_, bindparam, case, delete, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY

from server.adapters.db import counters
from server.adapters.db.counters import one_or_many
from server.adapters.db.schema import attempts, batches, contacts, organizations
from server.domain.batch_readiness import BatchStop, Blocker
from server.domain.batch_rules import BatchStatus
from server.domain.call_results import contact_after_result
from server.domain.circuit_breaker import TRIP_OUTCOMES, CircuitBreaker
from server.domain.contact_rules import FINAL, WAITING, ContactStatus
from server.domain.cost import call_cost_micros
from server.domain.errors import DomainError, FailedPrecondition, NotFound
from server.domain.phone import mask_phone
from server.domain.retry import judge_attempt
from server.service import events, lifecycle
from server.service.context import ServiceContext
from server.service.dialing_types import AnswerInput, FinishInput, FinishResult

log = logging.getLogger(__name__)
FINAL_VALUES = frozenset(s.value for s in FINAL)

_CLOSE_ATTEMPT = (
    update(attempts)
    .where(attempts.c.id == bindparam("p_id"))
    .values(
        ended_at=bindparam("p_ended_at"),
        answered_at=bindparam("p_answered_at"),
        outcome=bindparam("p_outcome"),
        duration_seconds=bindparam("p_duration"),
        sip_code=bindparam("p_sip_code"),
        recording_uri=bindparam("p_recording_uri"),
        transcript=bindparam("p_transcript"),
        cost_micros=bindparam("p_cost"),
        closed_by=bindparam("p_closed_by"),
        detail=bindparam("p_detail"),
        agent_answer_delay_ms=bindparam("p_agent_delay_ms"),
        agent_sip_code=bindparam("p_agent_sip_code"),
        closed_seq=func.nextval("attempt_close_seq"),
    )
)

def _if_connected(column: str, param: str) -> Any:
    col = contacts.c[column]
    return case((bindparam("p_connected", type_=Boolean), bindparam(param, type_=col.type)), else_=col)


_CLOSE_CONTACT = (
    update(contacts)
    .where(contacts.c.id == bindparam("p_id"))
    .values(
        # Status and current attempt move only when this attempt is the
        # contact's call; the call's data only when it was answered.
        status=case((bindparam("p_in_call", type_=Boolean), bindparam("p_status")), else_=contacts.c.status),
        wait_reason=case((bindparam("p_in_call", type_=Boolean), bindparam("p_wait_reason")), else_=contacts.c.wait_reason),
        max_attempts=bindparam("p_max_attempts"),
        current_attempt_id=case((bindparam("p_in_call", type_=Boolean), None), else_=contacts.c.current_attempt_id),
        last_outcome=bindparam("p_outcome"),
        failure_reason=bindparam("p_reason"),
        next_attempt_at=bindparam("p_next_at"),
        cost_micros=contacts.c.cost_micros + bindparam("p_cost"),
        updated_at=bindparam("p_now"),
        duration_seconds=_if_connected("duration_seconds", "p_duration"),
        call_started_at=_if_connected("call_started_at", "p_call_started_at"),
        call_ended_at=_if_connected("call_ended_at", "p_call_ended_at"),
        recording_uri=_if_connected("recording_uri", "p_recording_uri"),
        transcript=_if_connected("transcript", "p_transcript"),
    )
)

_UNDO_GRANT = (
    update(contacts)
    .where(contacts.c.id == bindparam("p_id"))
    .values(
        status=bindparam("p_status"),
        attempts=bindparam("p_attempts"),
        current_attempt_id=None,
        failure_reason=bindparam("p_reason"),
        updated_at=bindparam("p_now"),
    )
)

_ANSWER_ATTEMPT = update(attempts).where(attempts.c.id == bindparam("p_id")).values(answered_at=bindparam("p_at"))
_CONNECT_CONTACT = (
    update(contacts)
    .where(contacts.c.id == bindparam("p_id"))
    .values(status=ContactStatus.CONNECTED.value, call_started_at=bindparam("p_at"), updated_at=bindparam("p_now"))
)


def _ids(name: str, type_: Any = String) -> Any:
    return any_(bindparam(name, type_=ARRAY(type_)))


_OF_ATTEMPTS = select(attempts.c.batch_id).where(attempts.c.id == _ids("p_ids"))
#: The batch rows, share-locked, each with its organization's credit and
#: breaker settings read (not locked) in the same round trip: FinishAttempt
#: publishes its events only after its commit, so every round trip before
#: it is latency a watcher sees (docs/design.md §8).
_LOCK_BATCHES = (
    select(batches.c.id, batches.c.org_id, batches.c.status, batches.c.breaker_reset_at,
           batches.c.retry_delays, batches.c.voicemail_action,
           organizations.c.credits_enforced.label("o_credits_enforced"),
           organizations.c.credit_balance_micros.label("o_credit_balance_micros"),
           organizations.c.circuit_breaker_window.label("o_circuit_breaker_window"),
           organizations.c.circuit_breaker_threshold.label("o_circuit_breaker_threshold"))
    .select_from(batches)
    .join(organizations, organizations.c.id == batches.c.org_id)
    .where(batches.c.id.in_(_OF_ATTEMPTS.scalar_subquery()))
    .order_by(batches.c.id)
    .with_for_update(read=True, of=batches)
)
_CONTACT_COLUMNS = (
    "id", "status", "attempts", "max_attempts", "phone", "current_attempt_id", "failure_reason", "next_attempt_at",
)
_ATTEMPT_COLUMNS = (
    "id", "batch_id", "contact_id", "org_id", "fence_token", "attempt_number", "answered_at", "ended_at",
    "disposition", "callback_at",
)
#: Each attempt with its contact, both locked in one statement, in contact
#: order (StartAttempt's order; the attempt row comes with its contact).
#: What closing reads of a contact: not its transcript or recording.
_LOCK_CALLS = (
    select(
        *[contacts.c[n].label(f"c__{n}") for n in _CONTACT_COLUMNS],
        *[attempts.c[n].label(f"a__{n}") for n in _ATTEMPT_COLUMNS],
    )
    .select_from(attempts)
    .join(contacts, contacts.c.id == attempts.c.contact_id)
    .where(attempts.c.id == _ids("p_ids"))
    .order_by(contacts.c.id, attempts.c.id)
    .with_for_update(of=[contacts, attempts])
)


_CHARGE = (
    update(organizations)
    .where(organizations.c.id == bindparam("p_id"))
    .values(credit_balance_micros=organizations.c.credit_balance_micros - bindparam("p_cost"))
    .returning(organizations.c.credit_balance_micros)
)
_DELETE_ATTEMPTS = delete(attempts).where(attempts.c.id == _ids("p_ids"))


class _Locked:
    """The rows one flush works on, locked, held as mutable dicts so that two
    items of one flush that touch the same contact see each other."""

    def __init__(self, with_batches: bool) -> None:
        self.with_batches = with_batches
        self.batches: dict[str, Any] = {}
        self.contacts: dict[int, dict[str, Any]] = {}
        self.attempts: dict[str, dict[str, Any]] = {}

    def check(self, attempt_id: str, token: int) -> DomainError | None:
        att = self.attempts.get(attempt_id)
        if att is None or (self.with_batches and att["batch_id"] not in self.batches):
            return NotFound(f"attempt {attempt_id} not found")
        if att["fence_token"] != token:
            return FailedPrecondition("STALE_FENCING_TOKEN", "fencing token does not own this attempt")
        return None


async def _lock(conn: Any, attempt_ids: Sequence[str], *, with_batches: bool = True) -> _Locked:
    """Locks in StartAttempt's order: batches (shared), contacts, attempts.
    MarkAnswered skips the batch rows: it only moves a contact from DIALING
    to CONNECTED, which no batch status change touches."""
    locked = _Locked(with_batches)
    params = {"p_ids": sorted(set(attempt_ids))}
    if with_batches:
        locked.batches = {r.id: r for r in await conn.execute(_LOCK_BATCHES, params)}
    for row in await conn.execute(_LOCK_CALLS, params):
        m = row._mapping
        contact = locked.contacts.setdefault(m["c__id"], {n: m[f"c__{n}"] for n in _CONTACT_COLUMNS})
        locked.attempts[m["a__id"]] = {n: m[f"a__{n}"] for n in _ATTEMPT_COLUMNS}
        assert contact["id"] == m["a__contact_id"]
    return locked


async def mark_answered_many(ctx: ServiceContext, items: Sequence[AnswerInput]) -> list[DomainError | None]:
    """The callee answered: the contact becomes CONNECTED. Nothing to do for
    an attempt already answered or closed."""
    if not items:
        return []
    now = ctx.clock.now()
    out: list[DomainError | None] = []
    published: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    async with ctx.engine.begin() as conn:
        locked = await _lock(conn, [i.attempt_id for i in items], with_batches=False)
        answers: list[dict[str, Any]] = []
        connects: list[dict[str, Any]] = []
        deltas = counters.Deltas()
        for it in items:
            error = locked.check(it.attempt_id, it.token)
            out.append(error)
            if error is not None:
                continue
            att = locked.attempts[it.attempt_id]
            if att["ended_at"] is not None or att["answered_at"] is not None:
                continue
            answered = it.answer_time or now
            att["answered_at"] = answered
            answers.append({"p_id": att["id"], "p_at": answered})
            contact = locked.contacts[att["contact_id"]]
            if contact["status"] == ContactStatus.DIALING.value and contact["current_attempt_id"] == att["id"]:
                contact["status"] = ContactStatus.CONNECTED.value
                connects.append({"p_id": contact["id"], "p_at": answered, "p_now": now})
                deltas.move(att["batch_id"], ContactStatus.DIALING.value, ContactStatus.CONNECTED.value)
            published[(att["org_id"], att["batch_id"])].append(
                events.contact_event(contact["id"], "connected", "", contact["attempts"], contact["phone"], now)
            )
        if answers:
            await conn.execute(_ANSWER_ATTEMPT, one_or_many(answers))
        if connects:
            await conn.execute(_CONNECT_CONTACT, one_or_many(connects))
        await counters.apply(conn, deltas)
    await events.publish_many(ctx, published)
    return out


class _Flush:
    """What one FinishAttempt flush writes and does after its commit."""

    def __init__(self) -> None:
        self.closes: list[dict[str, Any]] = []
        self.contact_rows: list[dict[str, Any]] = []
        self.undo_ids: list[str] = []
        self.undo_rows: list[dict[str, Any]] = []
        self.deltas = counters.Deltas()
        self.cost_by_org: dict[str, int] = defaultdict(int)
        self.trip_checks: set[str] = set()
        #: Batches with an attempt closed by this flush (credits and breaker
        #: are judged for them only).
        self.closed_in: set[str] = set()
        self.requeues: list[tuple[str, str, str, float]] = []
        self.published: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        self.finalized: set[tuple[str, str]] = set()
        self.stops: dict[tuple[str, str], BatchStop] = {}


def _not_dialed(f: _Flush, now: datetime, batch: Any, att: dict[str, Any], contact: dict[str, Any]) -> FinishResult:
    """The grant was never used: undo it, no attempt spent."""
    stopped = batch.status in (BatchStatus.CANCELLED.value, BatchStatus.FAILED.value)
    new_status = ContactStatus.PENDING.value if contact["attempts"] <= 1 else ContactStatus.QUEUED.value
    reason = contact["failure_reason"]
    if stopped:
        new_status, reason = ContactStatus.CANCELLED.value, f"batch {batch.status}"
        f.finalized.add((att["org_id"], batch.id))
    f.undo_ids.append(att["id"])
    f.undo_rows.append(dict(p_id=contact["id"], p_status=new_status, p_attempts=contact["attempts"] - 1,
                            p_reason=reason, p_now=now))
    f.deltas.add(batch.id, "attempts_total", -1)
    f.deltas.move(batch.id, contact["status"], new_status)
    if new_status in WAITING:
        f.requeues.append((att["org_id"], batch.id, str(contact["id"]), now.timestamp()))
    f.published[(att["org_id"], batch.id)].append(
        events.contact_event(contact["id"], new_status, "", contact["attempts"] - 1, contact["phone"], now)
    )
    contact.update(status=new_status, attempts=contact["attempts"] - 1, current_attempt_id=None, failure_reason=reason)
    att["ended_at"] = now  # gone: a duplicate in this flush answers the same
    return FinishResult(new_status, None, batch.status)


def _close(ctx: ServiceContext, f: _Flush, now: datetime, inp: FinishInput, batch: Any,
           att: dict[str, Any], contact: dict[str, Any]) -> FinishResult:
    in_call = contact["current_attempt_id"] == att["id"] and contact["status"] in ("dialing", "connected")
    stopped = batch.status in (BatchStatus.CANCELLED.value, BatchStatus.FAILED.value)
    policy = ctx.retry_policy.for_batch(batch.retry_delays, batch.voicemail_action)
    verdict = judge_attempt(inp.outcome, att["attempt_number"], contact["max_attempts"], now, policy)
    answered_at = inp.answer_time or att["answered_at"]
    connected = answered_at is not None
    duration = max(0.0, inp.duration_seconds) if connected else 0.0
    cost = call_cost_micros(duration, ctx.prices) if connected else 0
    # The agent's result, when it reported before the call closed.
    effect = contact_after_result(
        att["disposition"], att["callback_at"], verdict, attempt_number=att["attempt_number"],
        max_attempts=contact["max_attempts"], now=now, policy=policy,
    )
    new_status, reason, next_at = effect.contact_status, effect.failure_reason, effect.next_attempt_at
    if new_status == ContactStatus.QUEUED.value and stopped:
        new_status, reason, next_at = ContactStatus.CANCELLED.value, f"batch {batch.status}", None
    end_time = inp.end_time or now
    recording, transcript = inp.recording_uri[:2000], inp.transcript[:100_000]
    f.closes.append(dict(
        p_id=att["id"], p_ended_at=end_time, p_answered_at=answered_at, p_outcome=inp.outcome, p_duration=duration,
        p_sip_code=inp.sip_code, p_recording_uri=recording, p_transcript=transcript, p_cost=cost,
        p_closed_by=inp.closed_by[:160], p_detail=inp.detail[:2000],
        p_agent_delay_ms=max(0, min(int(inp.agent_answer_delay_ms), 86_400_000)),
        p_agent_sip_code=inp.agent_sip_code if 0 <= inp.agent_sip_code < 1000 else 0,
    ))
    shown_status = new_status if in_call else contact["status"]
    f.contact_rows.append(dict(
        p_id=contact["id"], p_in_call=in_call, p_status=new_status, p_connected=connected,
        p_wait_reason=effect.wait_reason if new_status == ContactStatus.QUEUED.value else "",
        p_max_attempts=effect.max_attempts if in_call else contact["max_attempts"],
        p_outcome=inp.outcome, p_reason=reason, p_next_at=next_at, p_cost=cost, p_now=now,
        p_duration=duration, p_call_started_at=answered_at, p_call_ended_at=end_time,
        p_recording_uri=recording, p_transcript=transcript,
    ))
    d, b, c = f.deltas, batch.id, contact["id"]
    f.closed_in.add(b)
    d.bump(b, "outcomes_by_attempt", f"{att['attempt_number']}:{inp.outcome}")
    if cost:
        d.add(b, "cost_micros", cost)
        f.cost_by_org[att["org_id"]] += cost
    key = (att["org_id"], batch.id)
    if in_call:
        d.move(b, contact["status"], new_status)
        if new_status in FINAL_VALUES:
            f.finalized.add(key)
            d.bump(b, "attempt_histogram", str(att["attempt_number"]))
    if connected:
        d.add(b, "connected_calls", 1)
        d.add(b, "total_duration_seconds", duration)
    if batch.status == BatchStatus.RUNNING.value and inp.outcome in TRIP_OUTCOMES:
        # Only a tripping outcome can newly trip the breaker.
        f.trip_checks.add(batch.id)
    if new_status == ContactStatus.QUEUED.value and in_call and next_at is not None:
        f.requeues.append((att["org_id"], batch.id, str(c), next_at.timestamp()))
    f.published[key].append(
        events.contact_event(c, shown_status, inp.outcome, att["attempt_number"], contact["phone"], now)
    )
    log.info(
        "attempt closed batch=%s contact=%s phone=%s attempt=%d outcome=%s status=%s",
        batch.id, c, mask_phone(contact["phone"]), att["attempt_number"], inp.outcome, new_status,
    )
    contact.update(status=shown_status, current_attempt_id=None if in_call else contact["current_attempt_id"],
                   next_attempt_at=next_at, max_attempts=effect.max_attempts if in_call else contact["max_attempts"])
    att.update(ended_at=end_time, answered_at=answered_at)
    return FinishResult(new_status, next_at, batch.status)


async def _recent_outcomes(conn: Any, batch: Any, window: int) -> list[str]:
    """Outcomes of the batch's latest closed attempts (newest first), since
    the breaker was last reset by a resume."""
    q = select(attempts.c.outcome).where(attempts.c.batch_id == batch.id, attempts.c.closed_seq.is_not(None))
    if batch.breaker_reset_at is not None:
        q = q.where(attempts.c.ended_at > batch.breaker_reset_at)
    rows = await conn.execute(q.order_by(attempts.c.closed_seq.desc()).limit(window))
    return [r.outcome for r in rows]


async def finish_attempts(ctx: ServiceContext, inputs: Sequence[FinishInput]) -> list[FinishResult | DomainError]:
    """Closes attempts with their outcomes; one result per input, in order.
    A FinishAttempt retried after it was recorded answers the same again."""
    if not inputs:
        return []
    now = ctx.clock.now()
    f = _Flush()
    out: list[FinishResult | DomainError] = []
    async with ctx.engine.begin() as conn:
        locked = await _lock(conn, [i.attempt_id for i in inputs])
        for inp in inputs:
            error = locked.check(inp.attempt_id, inp.token)
            if error is not None:
                out.append(error)
                continue
            att = locked.attempts[inp.attempt_id]
            batch = locked.batches[att["batch_id"]]
            contact = locked.contacts[att["contact_id"]]
            if att["ended_at"] is not None:
                out.append(FinishResult(contact["status"], contact["next_attempt_at"], batch.status))
            elif inp.outcome == "not_dialed":
                out.append(_not_dialed(f, now, batch, att, contact))
            else:
                out.append(_close(ctx, f, now, inp, batch, att, contact))

        if f.undo_ids:
            await conn.execute(_DELETE_ATTEMPTS, {"p_ids": f.undo_ids})
            await conn.execute(_UNDO_GRANT, one_or_many(f.undo_rows))
        if f.closes:
            await conn.execute(_CLOSE_ATTEMPT, one_or_many(f.closes))
            await conn.execute(_CLOSE_CONTACT, one_or_many(f.contact_rows))
        # Each organization's settings and balance came with its batches' lock.
        balance = {b.org_id: b.o_credit_balance_micros for b in locked.batches.values()}
        for org_id in sorted(f.cost_by_org):
            # An atomic decrement (the row lock lasts until the commit, a few
            # statements later): the balance may go below zero by the calls
            # already in flight, never more.
            balance[org_id] = (
                await conn.execute(_CHARGE, {"p_id": org_id, "p_cost": f.cost_by_org[org_id]})
            ).scalar_one()
        for batch in locked.batches.values():
            if batch.status != BatchStatus.RUNNING.value or batch.id not in f.closed_in:
                continue
            key = (batch.org_id, batch.id)
            if batch.id in f.trip_checks:
                breaker = CircuitBreaker(window=batch.o_circuit_breaker_window,
                                         threshold=batch.o_circuit_breaker_threshold)
                trip = breaker.should_trip(await _recent_outcomes(conn, batch, breaker.window))
                if trip:
                    f.stops[key] = BatchStop.pause(trip)
            if key not in f.stops and batch.o_credits_enforced and balance[batch.org_id] <= 0:
                f.stops[key] = BatchStop.for_blocker(Blocker.NO_CREDITS)
        # Hot rows last (the counters of the batch, the org's balance above):
        # their locks are held only until the commit that follows.
        await counters.apply(conn, f.deltas)
        if f.finalized:
            # Completion is checked after the commit (in a transaction of its
            # own) only where nobody waits any more. Sound: while a contact
            # is PENDING/QUEUED, the batch can only complete through a later
            # FinishAttempt of it (a grant commits before its call, the
            # finish after) or through a StartAttempt that finalizes it
            # (suppressed, no window), which always checks.
            waiting = await counters.waiting_totals(conn, sorted({b for _, b in f.finalized}))
            f.finalized = {(o, b) for o, b in f.finalized if waiting.get(b, 0) <= 0}

    # Watchers first: the outcomes are committed, Redis bookkeeping can follow.
    await events.publish_many(ctx, f.published)
    await events.enqueue_ready(ctx, f.requeues)
    batch_status: dict[str, str] = {}
    for org_id, batch_id in sorted(f.finalized):
        if await lifecycle.complete_if_done(ctx, org_id, batch_id):
            batch_status[batch_id] = BatchStatus.COMPLETED.value
    for (org_id, batch_id), stop in sorted(f.stops.items()):
        if batch_id in batch_status:
            continue
        status = await lifecycle.system_stop(ctx, org_id, batch_id, stop)
        if status:
            batch_status[batch_id] = status
    for inp, res in zip(inputs, out):
        if isinstance(res, FinishResult):
            att = locked.attempts[inp.attempt_id]
            res.batch_status = batch_status.get(att["batch_id"], res.batch_status)
    return out
