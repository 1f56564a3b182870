"""One call's life, as named steps: ``CallSteps``.

Each claim is handled in a task of its own (``spawn``), which runs:

1. ``start_attempt``: StartAttempt(org, batch, contact, token, lease id,
   dialer id, provider call id) with the service token; t0 = monotonic()
   before sending. Not GRANTED -> release the lease at once
   (BATCH_NOT_RUNNING: the contact goes back to the ready queue if the
   batch is still active, i.e. paused; DEFERRED: back at
   next_attempt_time; STALE / SUPPRESSED: dropped). A gRPC error ->
   release with the contact re-queued and a tombstone for the lease (if the
   server granted before failing, its reconciler closes that attempt as
   never dialed), and claiming backs off for a moment (the server is
   probably restarting).
2. ``attach``: attach.lua records attempt id, trunk, max call ms on the
   lease, only if the lease is still held. If it is not, or monotonic() -
   t0 > dial_grace (the server's grant window), or the dialer is stopping:
   FinishAttempt(NOT_DIALED) and release; no call.
3. ``activate`` (reservations only, ``dialer.grant_ahead``): wait for a
   slot, then check the dial grace once more.
3b. ``pace`` (calls per second, ``dialer.cps_gate``): the call's start is
   taken from its trunk's and organization's CPS buckets in Redis right
   before it is placed; the long waits (a throttled trunk, a queue of
   calls) happen before step 1, holding only the claim, so no attempt is
   open while a contact waits for CPS. A start not available within the
   dial grace: NOT_DIALED (nothing spent). After the carrier's answer, a
   push-back (503, Retry-After, channel limit) pauses the trunk and the
   attempt is finished as NOT_DIALED too: never counted as a call.
4. ``place_call``: the provider places the call (a task); ``on_answer``
   sends MarkAnswered.
5. ``end_call``: once the call is over at the provider (place_call
   returned, or a settle path learned it is over, ``dialer.settle``),
   end_call.lua gives the lease's org and batch slots back AT ONCE and
   parks the lease, slot-free, in the org's ended zset; the freed slot goes
   to the first waiting reservation, else to an express claim round.
6. ``finish``: FinishAttempt with the result (retried until the server
   answers), then release the lease (out of the ended zset, the contact
   re-queued if it waits for another attempt).

Why the slots may be freed before FinishAttempt is answered
(docs/design.md §5): invariant 3 counts calls live at the provider, and
this one is over, so a slot idling through the FinishAttempt round trip
would only cost throughput. Invariant 2 still holds: until FinishAttempt
the contact is DIALING/CONNECTED with its attempt open in Postgres and in
no ready queue (only the release after FinishAttempt re-queues it), so
StartAttempt's fenced update refuses any other claim of it. If this dialer
dies in between, a reaper finds the expired entry of the ended zset and
closes the attempt with the provider's result (else DIALER_LOST). A call
that is not known to be over (a hang-up at a hard stop the provider did not
confirm, a provider error with the call's state unknown) keeps its slots
until the release; so do grants that are never dialed.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import grpc
from batchcalls.v1 import dialer_service_pb2, resources_pb2
from redis.exceptions import RedisError

from contract.trunk import TrunkSettings
from dialer.agent_results import SimulatedAgentReports, agent_from_proto
from dialer.cps import PaceDecision, Pacer
from dialer.cps_gate import CpsGate, PaceKey, Ticket
from dialer.grant_ahead import HAND_OFF_SCAN, GrantAhead
from dialer.lease_book import LeaseBook
from dialer.lease_replies import Activation, Claim, RequeueMode
from dialer.leases import LeaseClient
from dialer.logging import log_event
from dialer.metrics import DialerMetrics
from dialer.pacing import ClaimPacing
from dialer.providers.base import CallRequest, CallResult, TelephonyProvider
from dialer.reaper import DEFAULT_MAX_CALL_MS
from dialer.server_client import (
    FinishAnswer,
    ServerClient,
    finish_request,
    outcome_name,
    outcome_to_proto,
    requeue_due_ms,
    trunk_from_proto,
    trunk_to_json,
)
from dialer.settings import DialerSettings
from dialer.watched import WatchedBatches
from dialer.settle import Settled, settle_after_error, settle_cancelled

__all__ = ["Call", "CallSteps"]

log = logging.getLogger("dialer.worker")

D = dialer_service_pb2
GRANTED = D.START_ATTEMPT_DECISION_GRANTED
#: The CPS wait after a grant ends this long before the dial grace does.
DIAL_MARGIN_SECONDS = 0.02
#: Cached TrunkSettings are dropped past this many distinct trunks.
TRUNK_CACHE_SIZE = 256


@dataclass
class Call:
    """One granted claim on its way through the steps: what they share."""

    claim: Claim
    #: Log fields of every event about this call.
    fields: dict[str, Any]
    #: monotonic() when StartAttempt was sent: the dial grace runs from here.
    t0: float
    grant: dialer_service_pb2.StartAttemptResponse
    trunk: TrunkSettings
    #: The trunk as json, as the lease records it for a reaper.
    trunk_json: str
    max_call_s: int
    #: Epoch ms of the grant as recorded on the lease (attach.lua).
    started_ms: int
    answered: list[datetime] = field(default_factory=list)
    #: MarkAnswered tasks, awaited before the outcome is sent.
    side_tasks: list[asyncio.Task] = field(default_factory=list)
    #: What the call is paced by and its place at the gate (dialer.cps_gate).
    pace_key: PaceKey | None = None
    ticket: Ticket | None = None

    @property
    def attempt_id(self) -> str:
        return self.grant.attempt_id


class CallSteps:
    """Runs each claim through the steps of a call's life."""

    def __init__(
        self,
        settings: DialerSettings,
        leases: LeaseClient,
        server: ServerClient,
        providers: Any,
        metrics: DialerMetrics,
        pacing: ClaimPacing,
        book: LeaseBook,
        grant_ahead: GrantAhead,
        *,
        clock: Callable[[], float],
        monotonic: Callable[[], float],
        gate: CpsGate | None = None,
        watched: WatchedBatches | None = None,
    ) -> None:
        self.settings = settings
        #: Batches someone watches: their outcomes skip the linger.
        self.watched = watched
        #: Calls-per-second pacing (None: unpaced, for tests of other steps).
        self.gate = gate
        self.leases = leases
        self.server = server
        self.providers = providers
        self.metrics = metrics
        self.pacing = pacing
        self.book = book
        self.grant_ahead = grant_ahead
        self.clock = clock
        self.monotonic = monotonic
        self.dialer_id = settings.dialer_id
        #: OutboundTrunk (serialized) -> (TrunkSettings, its json), so the
        #: conversions are not redone for every call of a batch.
        self._trunks: dict[bytes, tuple[TrunkSettings, str]] = {}
        #: (metric, label value) -> labelled child, so the per-call metrics
        #: skip prometheus_client's label validation and lock each time.
        self._metric_children: dict[tuple[int, str], Any] = {}
        #: lease id -> (pace key, dial deadline) of a reservation waiting
        #: for its slot: end_call.lua takes its CPS cell with the slot.
        self._waiting_pace: dict[str, tuple[PaceKey, float]] = {}
        #: lease id -> (pace.lua's answer, the instant asked, monotonic then)
        #: got that way.
        self._paced_with_slot: dict[str, tuple[PaceDecision, int, float]] = {}
        #: The simulated trunk's built-in agent reports each completed call
        #: through ResultsService, as a real agent would (dialer.agent_results).
        report = getattr(server, "report_call_result", None)
        self.agent_reports = (SimulatedAgentReports(report)
                              if getattr(settings, "simulated_agent_reports", False) and report is not None else None)

    def spawn(self, claim: Claim) -> None:
        """Hold the claim's lease and start its handler."""
        self.book.hold(claim)
        task = asyncio.create_task(self.handle(claim, self.monotonic()), name=f"claim-{claim.lease_id}")
        self.book.claim_tasks[claim.lease_id] = task

    async def handle(self, claim: Claim, claim_mono: float) -> None:
        """Run the claim; a crash leaves its lease to expire, for a reaper."""
        try:
            await self.run(claim, claim_mono)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log_event(log, "claim.crashed", logging.ERROR, org_id=claim.org_id, batch_id=claim.batch_id,
                      contact_id=claim.contact_id, lease_id=claim.lease_id, error=repr(exc), exc_info=True)
            # Leave the lease to expire: the reaper judges it (released
            # if no attempt is attached, else by the provider's word).
            self.book.forget(claim.lease_id)
        finally:
            self.book.claim_tasks.pop(claim.lease_id, None)
            if claim.reserved:
                self.grant_ahead.end_reservation(claim)
            self.pacing.claim_ended()

    async def run(self, claim: Claim, claim_mono: float) -> None:
        """The steps, in order; each returns falsy when the call's life
        ended there (released or finished)."""
        ticket = Ticket(None, None)
        if self.gate is not None:
            got = await self.gate.before_grant(claim.org_id, claim.batch_id, lazy=claim.reserved)
            if got is None:  # stopping: the contact goes back, keeping its place
                await self.book.release(claim, requeue_due_ms=claim.due_ms)
                return
            ticket = got
        try:
            await self._run(claim, claim_mono, ticket)
        finally:
            ticket.release()

    async def _run(self, claim: Claim, claim_mono: float, ticket: Ticket) -> None:
        call = await self.start_attempt(claim)
        if call is None or not await self.attach(call):
            return
        key = call.pace_key = self.pace_key(call)
        call.ticket = ticket
        if self.gate is not None:
            self.gate.learn(claim.batch_id, key)
        provider = await self.find_provider(call)
        if provider is None:
            return
        request = self.call_request(call)
        if claim.reserved:
            if self.gate is not None:
                self._waiting_pace[claim.lease_id] = (key, self.dial_deadline(call))
            try:
                if not await self.activate(call):
                    return
            finally:
                self._waiting_pace.pop(claim.lease_id, None)
                taken = self._paced_with_slot.pop(claim.lease_id, None)
            claim_mono = self.monotonic()  # claim-to-dial: from the slot taken
        else:
            taken = None
        if not await self.pace(call, key, ticket, taken):
            return
        ticket.release()  # the next claim of this trunk may go to StartAttempt
        settled = await self.place_call(call, provider, request, claim_mono)
        pushback = None
        if self.gate is not None and self.gate.is_pushback(settled.result):
            # Recorded before the slot is freed: the next call on it must
            # see the lowered rate.
            pushback = await self.gate.after_call(key, ticket, settled.result)
        if settled.over:
            await self.end_call(claim)
        if self.gate is not None and pushback is None:
            # An accepted call: the slot is already free (end_call), the
            # pacer hears of it after.
            await self.gate.after_call(key, ticket, settled.result)
        if call.side_tasks:
            await asyncio.gather(*call.side_tasks, return_exceptions=True)
        if pushback is not None:
            # Carrier push-back: the call never happened for the callee. The
            # attempt is undone (NOT_DIALED: no attempt spent, the contact
            # re-queued) and the circuit breaker never sees it.
            result = settled.result
            detail = f"carrier push-back: {result.sip_code} {result.reason}".strip() if result else "carrier push-back"
            log_event(log, "call.pushed_back", logging.INFO, detail=detail, **call.fields)
            await self.finish(claim, call.attempt_id, resources_pb2.CALL_OUTCOME_NOT_DIALED, None, detail)
            return
        log_event(log, "call.ended", logging.INFO, outcome=outcome_name(settled.outcome),
                  duration_seconds=settled.result.duration_seconds if settled.result else 0.0, **call.fields)
        await self.finish(claim, call.attempt_id, settled.outcome, settled.result, settled.detail)
        if self.agent_reports is not None and call.trunk.kind == "simulated":
            self.agent_reports.after_call(call.attempt_id, settled.outcome, settled.result)  # in the background

    # -- 3b. calls per second ----------------------------------------------------------

    def pace_key(self, call: Call) -> PaceKey:
        """The call's trunk (its caller number: stable, unique in the org)
        and rates, as the grant gave them."""
        return PaceKey(call.claim.org_id, call.grant.from_phone_number, call.trunk.calls_per_second,
                       call.grant.organization_calls_per_second)

    def dial_deadline(self, call: Call) -> float:
        """Monotonic instant the call must be placed by (the dial grace)."""
        return call.t0 + self.settings.dial_grace_seconds - DIAL_MARGIN_SECONDS

    async def pace(self, call: Call, key: PaceKey, ticket: Ticket,
                   taken: tuple[PaceDecision, int, float] | None = None) -> bool:
        """Take the call's start from the CPS buckets, within the dial
        grace; else finish it as NOT_DIALED (nothing spent). ``taken``: the
        cell end_call.lua asked for with the call's slot."""
        if self.gate is None:
            return True
        why = await self.gate.before_dial(key, ticket, self.dial_deadline(call), taken)
        if why is not None:
            await self._not_dialed(call, why)
            return False
        return True

    # -- 1. StartAttempt ---------------------------------------------------------------

    async def start_attempt(self, claim: Claim) -> Call | None:
        """StartAttempt for the claim. GRANTED -> the Call; else the lease is
        released (re-queued as the decision says) and None."""
        fields = dict(org_id=claim.org_id, batch_id=claim.batch_id, contact_id=claim.contact_id,
                      lease_id=claim.lease_id, fencing_token=claim.fencing_token)
        t0 = self.monotonic()
        try:
            resp = await self.server.start_attempt(
                organization_id=claim.org_id,
                batch_id=claim.batch_id,
                contact_id=claim.contact_id,
                fencing_token=claim.fencing_token,
                lease_id=claim.lease_id,
                dialer_id=self.dialer_id,
                provider_call_id=claim.provider_call_id,
                ahead=claim.reserved,
            )
        except grpc.aio.AioRpcError as exc:
            self.metrics.start_decisions.labels("rpc_error").inc()
            backoff = self.pacing.start_failed()
            log_event(log, "start_attempt.error", logging.WARNING, code=exc.code().name, error=exc.details(),
                      pause_seconds=backoff, **fields)
            await self.book.release(claim, requeue_due_ms=claim.due_ms)
            # The server may have granted the attempt before the error (a
            # restart): no call will be placed under this lease, say so.
            try:
                await self.leases.note_released_unattached(claim.org_id, claim.lease_id)
            except (RedisError, OSError) as exc2:
                log_event(log, "lease.tombstone_failed", logging.WARNING, lease_id=claim.lease_id, error=repr(exc2))
            return None
        self.pacing.start_answered()
        if claim.reserved:
            self.grant_ahead.note_grant_latency(self.monotonic() - t0)
        decision = resp.decision
        self._metric_child(self.metrics.start_decisions,
                           D.StartAttemptDecision.Name(decision).removeprefix("START_ATTEMPT_DECISION_").lower()).inc()
        if decision != GRANTED:
            log_event(log, "start_attempt.declined", logging.DEBUG, decision=D.StartAttemptDecision.Name(decision),
                      reason=resp.reason, **fields)
            if decision == D.START_ATTEMPT_DECISION_BATCH_NOT_RUNNING:
                await self.book.release(claim, requeue_due_ms=claim.due_ms)
            elif decision == D.START_ATTEMPT_DECISION_DEFERRED and resp.HasField("next_attempt_time"):
                due = resp.next_attempt_time.ToMilliseconds()
                await self.book.release(claim, requeue_due_ms=due, requeue_mode=RequeueMode.SET)
            else:
                await self.book.release(claim)
            return None
        trunk, trunk_json = self._trunk(resp.outbound_trunk)
        return Call(claim=claim, fields=fields, t0=t0, grant=resp, trunk=trunk, trunk_json=trunk_json,
                    max_call_s=resp.max_call_duration_seconds or DEFAULT_MAX_CALL_MS // 1000,
                    started_ms=self.leases.now_ms())

    # -- 2. attach ---------------------------------------------------------------------

    async def attach(self, call: Call) -> bool:
        """Record the grant on the lease (attach.lua). False when the call
        must not be placed (lease lost, grant too late, stopping): then it
        is finished as NOT_DIALED."""
        claim = call.claim
        try:
            attached = await self.leases.attach(
                claim.org_id, claim.lease_id, attempt_id=call.attempt_id, started_ms=call.started_ms,
                max_call_ms=call.max_call_s * 1000, trunk_json=call.trunk_json, lazy=claim.reserved,
            )
        except (RedisError, OSError) as exc:
            log_event(log, "lease.attach_failed", logging.WARNING, error=repr(exc), **call.fields)
            attached = False
        elapsed = self.monotonic() - call.t0
        call.fields.update(attempt_id=call.attempt_id, provider_call_id=claim.provider_call_id)
        not_dialed = None
        if self.pacing.stopping.is_set():
            not_dialed = "dialer stopping"
        elif not attached:
            not_dialed = "lease lost before dialing"
        elif elapsed > self.settings.dial_grace_seconds:
            not_dialed = f"grant arrived after {elapsed:.3f}s (> dial grace {self.settings.dial_grace_seconds}s)"
        if not_dialed is not None:
            await self._not_dialed(call, not_dialed)
            return False
        return True

    async def find_provider(self, call: Call) -> TelephonyProvider | None:
        """The telephony provider of the call's trunk kind; None (the
        attempt finished as CARRIER_ERROR) when there is none."""
        try:
            return self.providers.get(call.trunk.kind)
        except Exception as exc:
            detail = f"no telephony provider for trunk kind {call.trunk.kind!r}: {exc}"
            log_event(log, "call.no_provider", logging.ERROR, error=detail, **call.fields)
            await self.finish(call.claim, call.attempt_id, resources_pb2.CALL_OUTCOME_CARRIER_ERROR, None, detail)
            return None

    def call_request(self, call: Call) -> CallRequest:
        claim, resp = call.claim, call.grant
        # A SIP trunk brings the batch agent in when the callee answers; the
        # simulated trunk has its built-in simulated agent.
        agent = (agent_from_proto(resp.agent_sip_connection)
                 if call.trunk.kind == "sip" and resp.HasField("agent_sip_connection") else None)
        return CallRequest(
            provider_call_id=claim.provider_call_id,
            to_number=resp.phone_number,
            from_number=resp.from_phone_number,
            trunk=call.trunk,
            ring_timeout_seconds=self.settings.ring_timeout_seconds,
            max_call_duration_seconds=float(call.max_call_s),
            organization_id=claim.org_id,
            batch_id=claim.batch_id,
            contact_id=claim.contact_id,
            agent_id=resp.agent_id,
            attempt_number=resp.attempt_number,
            variables=dict(resp.variables),
            recording_enabled=resp.recording_enabled,
            transcript_enabled=resp.transcript_enabled,
            agent=agent,
            attempt_id=resp.attempt_id,
        )

    # -- 3. activate (reservations) ------------------------------------------------------

    async def activate(self, call: Call) -> bool:
        """A reservation waits for its slot (``GrantAhead.activate``) and is
        dialed only within the dial grace; else finished as NOT_DIALED."""
        why = await self.grant_ahead.activate(call.claim, call.t0)
        if why is None and self.monotonic() - call.t0 > self.settings.dial_grace_seconds:
            why = "activated after the dial grace"
        if why is not None:
            await self._not_dialed(call, why)
            return False
        return True

    async def _not_dialed(self, call: Call, reason: str) -> None:
        log_event(log, "call.not_dialed", logging.INFO, reason=reason, **call.fields)
        await self.finish(call.claim, call.attempt_id, resources_pb2.CALL_OUTCOME_NOT_DIALED, None, reason)

    # -- 4. the call -----------------------------------------------------------------

    async def on_answer(self, call: Call, answer_time: datetime) -> None:
        """The provider's answer callback: MarkAnswered, once, in the background."""
        if call.answered:
            return
        call.answered.append(answer_time)
        call.side_tasks.append(asyncio.create_task(
            self.server.mark_answered(call.attempt_id, call.claim.fencing_token, answer_time)))
        if self.gate is not None and call.pace_key is not None and call.ticket is not None:
            # The carrier took the call: a lowered rate may climb back now,
            # not only when this (maybe long) call ends.
            call.side_tasks.append(asyncio.create_task(self.gate.accepted(call.pace_key, call.ticket)))

    async def place_call(
        self, call: Call, provider: TelephonyProvider, request: CallRequest, claim_mono: float
    ) -> Settled:
        """Place the call and wait for it to be over; its outcome."""
        claim = call.claim
        call_task = asyncio.create_task(provider.place_call(request, functools.partial(self.on_answer, call)),
                                        name=f"call-{claim.lease_id}")
        self.book.call_tasks[claim.lease_id] = call_task
        gauge = self._metric_child(self.metrics.live_calls, claim.org_id)
        gauge.inc()
        self.metrics.claim_to_dial.observe(max(0.0, self.monotonic() - claim_mono))
        log_event(log, "call.placed", logging.INFO, to=call.grant.phone_number,
                  attempt_number=call.grant.attempt_number, **call.fields)
        try:
            await asyncio.wait({call_task})
        finally:
            gauge.dec()
            self.book.call_tasks.pop(claim.lease_id, None)
        if call_task.cancelled():
            return await settle_cancelled(provider, request, call.answered, self.clock)
        exc = call_task.exception()
        if exc is not None:
            log_event(log, "call.provider_error", logging.WARNING, error=repr(exc), **call.fields)
            deadline_ms = (call.started_ms + int(request.max_call_duration_seconds * 1000)
                           + int(self.settings.ring_timeout_seconds * 1000) + self.settings.lease_ttl_ms)
            return await settle_after_error(provider, request, exc, deadline_ms=deadline_ms,
                                            now_ms=self.leases.now_ms,
                                            hard_stopped=lambda: self.book.hard_stop_at is not None)
        result = call_task.result()
        return Settled(outcome_to_proto(result.outcome), result, "", True)

    # -- 5. end of the call ----------------------------------------------------------

    async def end_call(self, claim: Claim) -> None:
        """The call is over at the provider: give its slots back now
        (end_call.lua), before FinishAttempt. A failure leaves the slots to
        the release."""
        grant_ahead = self.grant_ahead
        first = grant_ahead.first_waiter(claim.org_id)
        then_activate = (first[1].lease_id, first[1].batch_id) if first is not None else None
        # The first waiter's CPS cell, taken with the slot in the same
        # script: it dials without a pace.lua round trip of its own.
        waiting = self._waiting_pace.get(first[1].lease_id) if first is not None else None
        then_pace = self.gate.take_args(*waiting) if waiting is not None and self.gate is not None else None
        asked_mono = self.monotonic()
        try:
            start = await self.leases.end_call(claim.org_id, claim.batch_id, claim.lease_id,
                                               then_activate=then_activate, hand_off_scan=HAND_OFF_SCAN,
                                               then_pace=then_pace)
        except (RedisError, OSError) as exc:
            log_event(log, "lease.end_call_failed", logging.WARNING, lease_id=claim.lease_id, error=repr(exc))
            return
        if (start is not None and start.pace is not None and then_activate is not None and then_pace is not None
                and then_activate[0] in self._waiting_pace):
            self._paced_with_slot[then_activate[0]] = (Pacer.decision(*start.pace), int(then_pace[1][0]), asked_mono)
        if start is None or not self.book.mark_ended(claim.lease_id):
            return
        grant_ahead.note_call_end(claim.org_id)
        # end_call.lua may have handed the freed slot straight to the
        # first reservation in line (still at the head while its wait
        # lasts): it then dials without an activate call of its own.
        handed = start.activation is Activation.OK and first is not None and not first[0].done()
        if start.handed_to:
            # The oldest waiting reservation of the org took the slot: maybe
            # another dialer's (told on its hand-off channel), maybe one of
            # ours further down the line. Top ours up in the background.
            own = grant_ahead.take_hand_off(start.handed_to)
            self._metric_child(self.metrics.slot_hand_offs, "own" if own else "line").inc()
            self.pacing.refill[claim.org_id] = start.ring
        elif grant_ahead.wake_slot_waiter(claim.org_id, activated=handed):
            # A granted reservation takes the slot at once; top the
            # reservations up in the background.
            self._metric_child(self.metrics.slot_hand_offs, "own").inc()
            self.pacing.refill[claim.org_id] = start.ring
        else:
            self._metric_child(self.metrics.slot_hand_offs, "round").inc()
            # A slot is free: refill it now, from the round start
            # end_call returned (the latest one of an org wins).
            self.pacing.hints[claim.org_id] = start
        self.pacing.wake.set()

    # -- 6. the outcome --------------------------------------------------------------

    async def finish(self, claim: Claim, attempt_id: str, outcome: int, result: CallResult | None,
                     detail: str) -> None:
        """FinishAttempt (retried until answered, or until the finish budget
        of a hard stop runs out: then the lease is left for a reaper), then
        release the lease, re-queueing the contact if it waits."""
        req = finish_request(
            attempt_id=attempt_id, fencing_token=claim.fencing_token, outcome=outcome,
            closed_by=self.dialer_id, end_time=self.clock(), result=result, detail=detail,
        )
        urgent = self.watched is not None and self.watched.is_watched(claim.org_id, claim.batch_id)
        answer, resp = await self.server.finish(req, give_up=self.book.past_finish_budget, urgent=urgent)
        if answer is FinishAnswer.GAVE_UP:
            log_event(log, "finish_attempt.gave_up", logging.ERROR, org_id=claim.org_id, lease_id=claim.lease_id,
                      attempt_id=attempt_id, detail="lease left for a reaper")
            self.book.forget(claim.lease_id)
            return
        due = None
        if answer is FinishAnswer.OK:
            self._metric_child(self.metrics.outcomes, outcome_name(outcome)).inc()
            due = requeue_due_ms(resp, self.leases.now_ms())
        await self.book.release(claim, requeue_due_ms=due)

    # -- caches ----------------------------------------------------------------------

    def _metric_child(self, metric: Any, label: str) -> Any:
        key = (id(metric), label)
        child = self._metric_children.get(key)
        if child is None:
            child = self._metric_children[key] = metric.labels(label)
        return child

    def _trunk(self, proto: Any) -> tuple[TrunkSettings, str]:
        """TrunkSettings and its json for an OutboundTrunk, cached by the
        message's bytes (a batch's calls share one trunk)."""
        key = proto.SerializeToString(deterministic=True)
        hit = self._trunks.get(key)
        if hit is None:
            trunk = trunk_from_proto(proto)
            # The lease json (Redis) leaves the password out: a reaper's
            # status query needs no SIP credentials (docs/design.md §7).
            hit = (trunk, trunk_to_json(replace(trunk, password="")))
            if len(self._trunks) >= TRUNK_CACHE_SIZE:
                self._trunks.clear()
            self._trunks[key] = hit
        return hit
