"""StartAttempt for many claims at once: one transaction, set-based SQL.

A dialer under load coalesces the claims that arrive while its previous
request is in flight, so one round trip, a handful of statements and one
commit serve many grants. Rules are exactly those of a single StartAttempt
(one code path: the single RPC is a batch of one).

Locks, in the one order every writer follows: batch rows shared (ordered by
id: Pause and Cancel take them exclusively and so wait for grants in
progress), contact rows (ordered by id), then the frequency-cap advisory
locks (ordered by key). Redis is advisory; these conditional updates decide.

Jurisdiction rules (issue 16) are part of the one decision,
:func:`server.domain.compliance.check_dial` (``jurisdiction=True`` for calls
on real trunks); the per-subject cap shares the frequency cap's lock and
count.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, String, and_, any_, bindparam, insert, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY

from server.adapters.db import counters
from server.adapters.db.counters import one_or_many
from server.adapters.db.schema import agents, attempts, batches, contacts, do_not_call, organizations, phone_numbers
from server.domain.batch_readiness import BatchStop, Blocker, RunConditions, run_blocker
from server.domain.batch_rules import BatchStatus
from server.domain.calling_window import CalleeZones, resolve_zones
from server.domain.compliance import check_dial
from server.domain.contact_rules import ContactStatus
from server.domain.jurisdiction import subject_cap
from server.domain.grant_rules import ClaimedContact, GrantDecision, GrantOutcome, decide_grant, screen_claim
from server.domain.ids import new_id
from server.service import events, lifecycle
from server.service.context import ServiceContext
from server.service.dialing_types import Decision, StartInput, StartResult, jurisdiction_applies, window_for

log = logging.getLogger(__name__)

_GRANT_CONTACT = (
    update(contacts)
    .where(contacts.c.id == bindparam("p_id"))
    .values(
        status=ContactStatus.DIALING.value,
        attempts=bindparam("p_attempts"),
        last_attempt_at=bindparam("p_now"),
        next_attempt_at=None,
        wait_reason="",
        current_attempt_id=bindparam("p_attempt_id"),
        updated_at=bindparam("p_now"),
        timezones=bindparam("p_timezones"),
        tz_fallback=bindparam("p_tz_fallback"),
    )
)


@dataclass
class _Refs:
    """A batch row (share-locked) with what a grant reads of it."""

    batch: Any
    agent: Any
    number: Any
    org: Any

    def blocker(self) -> Blocker | None:
        """Why the batch cannot run now (None: it can)."""
        agent, number, org = self.agent, self.number, self.org
        return run_blocker(RunConditions(
            agent_active=agent.active,
            agent_architecture=agent.architecture,
            number_present=number.deleted_at is None,
            number_has_trunk=number.trunk_kind is not None,
            credits_enforced=org.credits_enforced,
            credit_balance_micros=org.credit_balance_micros,
        ))


_REF_TABLES = {"a": agents, "n": phone_numbers, "o": organizations}
_LOCK_BATCHES = (
    select(
        batches,
        *[c.label(f"{prefix}__{c.name}") for prefix, table in _REF_TABLES.items() for c in table.c],
    )
    .join(agents, agents.c.id == batches.c.agent_id)
    .join(phone_numbers, phone_numbers.c.id == batches.c.from_number_id)
    .join(organizations, organizations.c.id == batches.c.org_id)
    .where(batches.c.id == any_(bindparam("p_ids", type_=ARRAY(String))))
    .order_by(batches.c.id)
    # Agent, caller number and organization are read, not locked: a change
    # to them fails or pauses the batch in a transaction of its own.
    .with_for_update(read=True, of=batches)
)


async def _lock_batches(conn: Any, batch_ids: Sequence[str]) -> dict[str, _Refs]:
    """The batch rows share-locked with their references: one statement."""
    refs: dict[str, _Refs] = {}
    for row in await conn.execute(_LOCK_BATCHES, {"p_ids": sorted(batch_ids)}):
        m = row._mapping
        parts: dict[str, dict[str, Any]] = {p: {} for p in _REF_TABLES}
        own: dict[str, Any] = {}
        for key, value in m.items():
            prefix, sep, name = key.partition("__")
            if sep and prefix in parts:
                parts[prefix][name] = value
            else:
                own[key] = value
        refs[own["id"]] = _Refs(SimpleNamespace(**own), *(SimpleNamespace(**parts[p]) for p in ("a", "n", "o")))
    return refs


#: The columns a grant reads of a contact (not the transcript or recording),
#: and whether its number is on its organization's do-not-call list.
_LOCK_CONTACTS = (
    select(
        contacts.c.id, contacts.c.batch_id, contacts.c.org_id, contacts.c.phone, contacts.c.name,
        contacts.c.variables, contacts.c.status, contacts.c.attempts, contacts.c.max_attempts,
        contacts.c.next_attempt_at, contacts.c.timezones, contacts.c.tz_fallback,
        do_not_call.c.phone.is_not(None).label("on_dnc"),
    )
    .select_from(contacts)
    .outerjoin(do_not_call, and_(do_not_call.c.org_id == contacts.c.org_id, do_not_call.c.phone == contacts.c.phone))
    .where(contacts.c.id == any_(bindparam("p_ids", type_=ARRAY(BigInteger))))
    .order_by(contacts.c.id)
    .with_for_update(of=contacts)
)


def _claimed(contact: dict[str, Any] | None) -> ClaimedContact | None:
    """The facts the grant decision reads of a locked contact row."""
    if contact is None:
        return None
    return ClaimedContact(
        batch_id=contact["batch_id"],
        status=contact["status"],
        attempts=contact["attempts"],
        max_attempts=contact["max_attempts"],
        next_attempt_at=contact["next_attempt_at"],
    )


#: The dialer-facing decision of each per-contact outcome.
_DECISION: dict[GrantOutcome, Decision] = {
    GrantOutcome.GRANT: Decision.GRANTED,
    GrantOutcome.STALE: Decision.STALE,
    GrantOutcome.BATCH_STOPPED: Decision.BATCH_NOT_RUNNING,
    GrantOutcome.SUPPRESS: Decision.SUPPRESSED,
    # The contact ended FAILED without a call: for the dialer the claim is stale.
    GrantOutcome.NEVER_CALLABLE: Decision.STALE,
    GrantOutcome.DEFER: Decision.DEFERRED,
}


def _refused(d: GrantDecision) -> StartResult:
    return StartResult(_DECISION[d.outcome], d.reason)


async def _recent_starts(conn: Any, pairs: set[tuple[str, str]], now: datetime) -> dict[tuple[str, str], list[datetime]]:
    """Call starts of the last 24 h per (organization, number), for the
    frequency cap. Grants only share-lock their batch rows, so two grants for
    one number at once (two batches, or two flushes) would both see "under
    the cap": an advisory lock per (organization, number), taken last and in
    key order, serializes them until this transaction commits."""
    recent: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    if not pairs:
        return recent
    await conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM unnest(CAST(:keys AS text[])) AS k"),
        {"keys": sorted(f"freq-cap:{o}:{p}" for o, p in pairs)},
    )
    rows = await conn.execute(
        select(attempts.c.org_id, attempts.c.phone, attempts.c.started_at).where(
            attempts.c.org_id.in_({o for o, _ in pairs}),
            attempts.c.phone.in_({p for _, p in pairs}),
            attempts.c.started_at > now - timedelta(hours=24),
        )
    )
    for r in rows:
        if (r.org_id, r.phone) in pairs:
            recent[(r.org_id, r.phone)].append(r.started_at)
    return recent


async def start_attempts(ctx: ServiceContext, items: Sequence[StartInput]) -> list[StartResult]:
    """One StartResult per item, in order."""
    if not items:
        return []
    now = ctx.clock.now()
    results: list[StartResult | None] = [None] * len(items)
    requeues: list[tuple[str, str, str, float]] = []
    published: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    stops: dict[tuple[str, str], BatchStop] = {}
    finalized: set[tuple[str, str]] = set()
    async with ctx.engine.begin() as conn:
        refs = await _lock_batches(conn, {i.batch_id for i in items})
        pending: list[int] = []
        for k, it in enumerate(items):
            r = refs.get(it.batch_id)
            if r is None or r.batch.org_id != it.org_id or r.batch.status != BatchStatus.RUNNING.value:
                results[k] = StartResult(Decision.BATCH_NOT_RUNNING,
                                         f"batch is {r.batch.status if r and r.batch.org_id == it.org_id else 'gone'}")
            else:
                pending.append(k)
        rows = (
            await conn.execute(_LOCK_CONTACTS, {"p_ids": sorted({items[k].contact_id for k in pending})})
        ).all() if pending else []
        state = {row.id: row._asdict() for row in rows}

        blockers = {batch_id: r.blocker() for batch_id, r in refs.items()}
        checking: list[int] = []
        for k in pending:
            it = items[k]
            blocker = blockers[it.batch_id]
            screened = screen_claim(_claimed(state.get(it.contact_id)), it.batch_id, now, blocker)
            if screened is None:
                checking.append(k)
                continue
            if blocker is not None and screened.outcome is GrantOutcome.BATCH_STOPPED:
                stops[(it.org_id, it.batch_id)] = BatchStop.for_blocker(blocker)
            results[k] = _refused(screened)

        law = {batch_id: jurisdiction_applies(r.number.trunk_kind, ctx.settings) for batch_id, r in refs.items()}
        # The per-subject cap of capped states counts the same calls as the
        # organization's frequency cap, under the same advisory lock.
        capped = {
            (items[k].org_id, state[items[k].contact_id]["phone"])
            for k in checking
            if refs[items[k].batch_id].org.frequency_cap_per_24h > 0
            or (law[items[k].batch_id] and subject_cap(state[items[k].contact_id]["phone"]) is not None)
        }
        recent = await _recent_starts(conn, capped, now)

        grants: list[dict[str, Any]] = []
        deltas = counters.Deltas()
        for k in checking:
            it = items[k]
            r = refs[it.batch_id]
            batch, org, contact = r.batch, r.org, state[it.contact_id]
            phone = contact["phone"]
            window = window_for(batch, org)
            judged = law[it.batch_id]
            zones = resolve_zones(phone, window, batch.timezone, now) if window and not judged else None
            check = check_dial(
                at=now,
                window=window,
                zones=zones.zones if zones else (),
                on_dnc=contact["on_dnc"] and contact["org_id"] == org.id,
                recent_call_starts=recent.get((org.id, phone), ()),
                cap_per_24h=org.frequency_cap_per_24h,
                e164=phone,
                batch_timezone=batch.timezone,
                jurisdiction=judged,
            )
            if check.verdict is not None:
                zones = CalleeZones(check.verdict.zones, check.verdict.zones_fallback)
            # Screened again: the same contact may be claimed twice in one flush.
            decision = decide_grant(_claimed(contact), it.batch_id, now, None, check)
            zone_values: dict[str, Any] = {}
            if zones is not None:
                zone_values = {"timezones": list(zones.zones), "tz_fallback": zones.fallback}
            key = (it.org_id, it.batch_id)
            old_status = contact["status"]
            outcome, status = decision.outcome, decision.new_status
            if status is None:  # stale: an earlier item of this flush took the contact
                results[k] = _refused(decision)
                continue
            if outcome is GrantOutcome.SUPPRESS:
                await conn.execute(
                    update(contacts)
                    .where(contacts.c.id == it.contact_id)
                    .values(status=status.value, failure_reason=decision.reason,
                            next_attempt_at=None, wait_reason="", updated_at=now)
                )
                deltas.move(batch.id, old_status, status.value)
                contact["status"] = status.value
                results[k] = StartResult(Decision.SUPPRESSED, decision.reason, finalized=True)
                finalized.add(key)
                new_status, attempts_shown = status.value, contact["attempts"]
            elif outcome is GrantOutcome.NEVER_CALLABLE:
                # Never callable inside its window: final, not dialed.
                await conn.execute(
                    update(contacts)
                    .where(contacts.c.id == it.contact_id)
                    .values(status=status.value, failure_reason=decision.reason,
                            next_attempt_at=None, wait_reason="", updated_at=now, **zone_values)
                )
                deltas.move(batch.id, old_status, status.value)
                contact["status"] = status.value
                results[k] = StartResult(_DECISION[outcome], decision.reason, finalized=True)
                finalized.add(key)
                continue
            elif outcome is GrantOutcome.DEFER:
                defer_until = decision.defer_until
                assert defer_until is not None
                await conn.execute(
                    update(contacts)
                    .where(contacts.c.id == it.contact_id)
                    .values(status=status.value, next_attempt_at=defer_until,
                            wait_reason=decision.reason, updated_at=now, **zone_values)
                )
                # QUEUED -> QUEUED (a retry or a second deferral) moves no counter.
                deltas.move(batch.id, old_status, status.value)
                contact.update(status=status.value, next_attempt_at=defer_until)
                results[k] = StartResult(Decision.DEFERRED, decision.reason, next_attempt_at=defer_until)
                requeues.append((it.org_id, it.batch_id, str(it.contact_id), defer_until.timestamp()))
                new_status, attempts_shown = status.value, contact["attempts"]
            else:
                attempt_id = new_id("att")
                number = decision.attempt_number
                grants.append(dict(
                    id=attempt_id, contact_id=it.contact_id, batch_id=batch.id, org_id=org.id, phone=phone,
                    attempt_number=number, fence_token=it.fencing_token, lease_id=it.lease_id,
                    dialer_id=it.dialer_id, provider_call_id=it.provider_call_id, started_at=now,
                    _timezones=zone_values.get("timezones", contact["timezones"]),
                    _tz_fallback=zone_values.get("tz_fallback", contact["tz_fallback"]),
                ))
                deltas.add(batch.id, "attempts_total", 1)
                deltas.granted(batch.id, now)
                deltas.move(batch.id, old_status, status.value)
                contact.update(status=status.value, attempts=number, current_attempt_id=attempt_id)
                recent[(org.id, phone)].append(now)
                results[k] = StartResult(
                    Decision.GRANTED, attempt_id=attempt_id, attempt_number=number, contact=SimpleNamespace(**contact),
                    started_at=now, dial_deadline=now + timedelta(seconds=ctx.settings.dial_grace_seconds),
                )
                new_status, attempts_shown = status.value, number
            res = results[k]
            assert res is not None
            res.agent, res.number, res.batch, res.org = r.agent, r.number, batch, r.org
            published[key].append(events.contact_event(it.contact_id, new_status, "", attempts_shown, phone, now))

        if grants:
            await conn.execute(insert(attempts), one_or_many([{c: v for c, v in g.items() if not c.startswith("_")}
                                                              for g in grants]))
            await conn.execute(_GRANT_CONTACT, one_or_many([
                dict(p_id=g["contact_id"], p_attempts=g["attempt_number"], p_now=now, p_attempt_id=g["id"],
                     p_timezones=g["_timezones"], p_tz_fallback=g["_tz_fallback"])
                for g in grants
            ]))
        await counters.apply(conn, deltas)

    for (org_id, batch_id), stop in stops.items():
        await lifecycle.system_stop(ctx, org_id, batch_id, stop)
    await events.enqueue_ready(ctx, requeues)
    await events.publish_many(ctx, published)
    for org_id, batch_id in sorted(finalized):
        await lifecycle.complete_if_done(ctx, org_id, batch_id)
    return [r for r in results if r is not None]
