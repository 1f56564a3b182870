"""ReportCallResult: the agent runtime's result for one call.

The result is stored on its attempt. Its effect on the contact is decided by
:func:`server.domain.call_results.contact_after_result`, in one of two
places: FinishAttempt applies it when the report came first (the call is
still open; ``service.outcomes``), and this module applies it at once when
the call already closed (a late report). opt_out adds the number to the
organization's do-not-call list here in both cases, with the batch as its
reason, so no grant of any batch dials it again (the grant-time check).

Locks, in the order every writer follows: the batch row shared, the contact
row, then the attempt row; a report and a FinishAttempt of one call
therefore serialize, and whichever commits second sees the other.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from server.adapters.db import counters
from server.adapters.db.schema import attempts, batches, contacts
from server.domain.auth import Principal, Role
from server.domain.batch_rules import BatchStatus
from server.domain.call_results import (
    CallReport,
    Disposition,
    check_report,
    contact_after_result,
    same_effect,
)
from server.domain.contact_rules import FINAL, WAITING, ContactStatus
from server.domain.errors import FailedPrecondition, NotFound
from server.domain.retry import AttemptVerdict
from server.service import events, lifecycle
from server.service.context import ServiceContext
from server.service.organizations import insert_dnc

log = logging.getLogger(__name__)

PROVIDER_CALL_ID_MAX = 128
ATTEMPT_ID_MAX = 40
#: A late report may put a contact back in the queue only while its batch
#: can still call (a completed or stopped batch is not reopened).
_REQUEUE_BATCH_STATUSES = frozenset({BatchStatus.RUNNING.value, BatchStatus.PAUSED.value})
_FINAL_VALUES = frozenset(s.value for s in FINAL)
_WAITING_VALUES = frozenset(s.value for s in WAITING)


@dataclass
class ReportOutcome:
    attempt: Any  # the attempt row after the report
    contact: Any  # the contact row after the report
    duplicate: bool


def _result_values(r: CallReport, now: Any) -> dict[str, Any]:
    return dict(
        disposition=r.disposition,
        answered_by=r.answered_by,
        callback_at=r.callback_at,
        summary=r.summary,
        result_transcript=r.transcript,
        result_recording_uri=r.recording_uri,
        extracted_fields=[f.as_json() for f in r.fields],
        result_at=now,
    )


def _same_report(att: Any, values: dict[str, Any]) -> bool:
    return all(getattr(att, k) == v for k, v in values.items() if k != "result_at")


async def _find_attempt(ctx: ServiceContext, org_id: str, provider_call_id: str, attempt_id: str) -> Any:
    """The attempt of the organization, by id or provider call id (the
    latest one if a provider reused an id). NOT_FOUND across organizations."""
    q = select(attempts.c.id, attempts.c.batch_id, attempts.c.contact_id).where(
        attempts.c.org_id == org_id,
        # Attempts of a deleted batch stay as call records (billing, the
        # frequency cap) but take no more reports.
        select(contacts.c.id).where(contacts.c.id == attempts.c.contact_id).exists(),
    )
    if attempt_id:
        q = q.where(attempts.c.id == attempt_id)
    else:
        q = q.where(attempts.c.provider_call_id == provider_call_id)
    async with ctx.engine.connect() as conn:
        row = (await conn.execute(q.order_by(attempts.c.started_at.desc()).limit(1))).first()
    if row is None:
        which = f"attempt {attempt_id}" if attempt_id else f"provider call id {provider_call_id!r}"
        raise NotFound(f"no call with {which} in this organization")
    return row


#: The principal of reports the dialer makes for the simulated trunk's
#: built-in agent (internal listener, service credential).
SIMULATED_AGENT_KEY = "service:simulated-agent"


async def report_as_service(
    ctx: ServiceContext, provider_call_id: str, attempt_id: str, report: CallReport
) -> ReportOutcome:
    """A report from our own dialer (the simulated agent): the organization
    is the attempt's, and then it is exactly a reporter key's report."""
    q = select(attempts.c.org_id)
    q = q.where(attempts.c.id == attempt_id) if attempt_id else q.where(attempts.c.provider_call_id == provider_call_id)
    org_id = None
    if bool(attempt_id) != bool(provider_call_id) and len(attempt_id) <= ATTEMPT_ID_MAX \
            and len(provider_call_id) <= PROVIDER_CALL_ID_MAX:
        async with ctx.engine.connect() as conn:
            org_id = (await conn.execute(q.order_by(attempts.c.started_at.desc()).limit(1))).scalar()
    principal = Principal(org_id=org_id or "", role=Role.REPORTER, key_id=SIMULATED_AGENT_KEY)
    return await report_call_result(ctx, principal, provider_call_id, attempt_id, report)


async def report_call_result(
    ctx: ServiceContext, p: Principal, provider_call_id: str, attempt_id: str, report: CallReport
) -> ReportOutcome:
    p.require_reporter()
    now = ctx.clock.now()
    v = check_report(report, now)
    if bool(provider_call_id) == bool(attempt_id):
        v.add("call", "exactly one of provider_call_id or attempt_id")
    if len(provider_call_id) > PROVIDER_CALL_ID_MAX:
        v.add("provider_call_id", f"at most {PROVIDER_CALL_ID_MAX} characters")
    if len(attempt_id) > ATTEMPT_ID_MAX:
        v.add("attempt_id", f"at most {ATTEMPT_ID_MAX} characters")
    v.raise_if_any()
    found = await _find_attempt(ctx, p.org_id, provider_call_id, attempt_id)
    values = _result_values(report, now)

    requeue: list[tuple[str, str, str, float]] = []
    published: list[dict[str, Any]] = []
    finalized = False
    async with ctx.engine.begin() as conn:
        batch = (
            await conn.execute(select(batches.c.id, batches.c.status, batches.c.retry_delays,
                                      batches.c.voicemail_action).where(batches.c.id == found.batch_id)
                               .with_for_update(read=True))
        ).one()
        contact = (
            await conn.execute(select(contacts).where(contacts.c.id == found.contact_id).with_for_update())
        ).one()
        att = (await conn.execute(select(attempts).where(attempts.c.id == found.id).with_for_update())).one()

        if att.disposition:
            if _same_report(att, values):
                return ReportOutcome(att, contact, duplicate=True)
            if not same_effect(att.disposition, att.callback_at, report.disposition, report.callback_at):
                raise FailedPrecondition(
                    "RESULT_ALREADY_REPORTED",
                    f"this call was already reported as {att.disposition}; a later report may only "
                    "replace its details (same disposition and callback_time)",
                    {"disposition": att.disposition},
                )
            # Same effect: the details (transcript, summary, fields, …) are replaced.
            att = (
                await conn.execute(update(attempts).where(attempts.c.id == att.id).values(**values).returning(attempts))
            ).one()
            return ReportOutcome(att, contact, duplicate=False)

        att = (
            await conn.execute(update(attempts).where(attempts.c.id == att.id).values(**values).returning(attempts))
        ).one()
        contact_values: dict[str, Any] = {"result_attempt_id": att.id, "updated_at": now}
        if report.disposition == Disposition.OPT_OUT.value:
            await insert_dnc(conn, att.org_id, [att.phone], f"opt-out reported by the agent on batches/{att.batch_id}")

        late = att.ended_at is not None
        # A late result changes the contact only when this call is still its
        # latest (no newer call started since) and it is not cancelled.
        if (late and contact.current_attempt_id is None and contact.attempts == att.attempt_number
                and contact.status != ContactStatus.CANCELLED.value):
            before = AttemptVerdict(contact.status, contact.failure_reason, contact.next_attempt_at)
            effect = contact_after_result(
                report.disposition, report.callback_at, before, attempt_number=att.attempt_number,
                max_attempts=contact.max_attempts, now=now,
                policy=ctx.retry_policy.for_batch(batch.retry_delays, batch.voicemail_action),
            )
            reopens = effect.contact_status in _WAITING_VALUES and contact.status in _FINAL_VALUES
            if effect.waits and batch.status not in _REQUEUE_BATCH_STATUSES:
                effect = None  # recorded only: a stopped or completed batch is not reopened
            if effect is not None and (effect.contact_status, effect.next_attempt_at, effect.failure_reason) != (
                contact.status, contact.next_attempt_at, contact.failure_reason
            ):
                contact_values.update(
                    status=effect.contact_status, failure_reason=effect.failure_reason,
                    next_attempt_at=effect.next_attempt_at, max_attempts=effect.max_attempts,
                    wait_reason=effect.wait_reason if effect.waits else "",
                )
                deltas = counters.Deltas()
                deltas.move(batch.id, contact.status, effect.contact_status)
                if reopens:
                    deltas.bump(batch.id, "attempt_histogram", str(att.attempt_number), -1)
                elif contact.status in _WAITING_VALUES and effect.contact_status in _FINAL_VALUES:
                    deltas.bump(batch.id, "attempt_histogram", str(att.attempt_number))
                    finalized = True
                await counters.apply(conn, deltas)
                if effect.waits and effect.next_attempt_at is not None and batch.status == BatchStatus.RUNNING.value:
                    requeue.append((att.org_id, batch.id, str(contact.id), effect.next_attempt_at.timestamp()))
                published.append(events.contact_event(
                    contact.id, effect.contact_status, att.outcome, contact.attempts, contact.phone, now))
        contact = (
            await conn.execute(
                update(contacts).where(contacts.c.id == contact.id).values(**contact_values).returning(contacts)
            )
        ).one()

    log.info("call result reported batch=%s attempt=%s disposition=%s late=%s status=%s",
             att.batch_id, att.id, report.disposition, late, contact.status)
    if published:
        await events.publish(ctx, att.org_id, att.batch_id, *published)
    await events.enqueue_ready(ctx, requeue)
    if finalized:
        await lifecycle.complete_if_done(ctx, att.org_id, att.batch_id)
    return ReportOutcome(att, contact, duplicate=False)

