"""Recovery of leases whose holder stopped heartbeating.

Runs in every dialer about once a second. Per organization a short Redis
lock (``bc:{org}:reaper-lock``, SET NX PX) lets one dialer at a time judge
that organization's expired leases (expiry < now, own leases skipped):

- no attempt attached (the claim died before StartAttempt was granted, or
  before the dialer recorded the grant) -> no call was placed under it:
  release it (conditionally: release.lua refuses if an attempt got attached
  meanwhile), put the contact back in the ready queue (ZADD NX, only if
  the batch is still active) and note the lease in the org's
  released-unattached set: if the server did grant an attempt under it, the
  server's reconciler closes that attempt as never dialed.
- attempt attached -> ask the provider (by trunk kind) for the call:
  ENDED -> FinishAttempt with the provider's result, closed_by
  "reaper:<dialer id>", then release; RINGING / IN_PROGRESS -> keep;
  UNKNOWN from a provider whose status is authoritative (the simulated
  carrier), once the grant's dial deadline and a lease ttl have passed ->
  the call was never placed and never can be (its dialer is dead and grants
  expire): FinishAttempt(NOT_DIALED), no attempt spent, contact re-queued.
  UNKNOWN otherwise, or provider unreachable -> keep until started + max
  call + ring timeout + lease ttl has passed, then FinishAttempt(DIALER_LOST)
  and release. A rejected FinishAttempt (already closed, stale token) ->
  release. A transient gRPC error -> keep, try again next tick.

A lease is never released sooner: the slot stays taken until the call it
guards is known to be over (docs/design.md §5).

Ended leases (``keys.org_ended``): a dialer gives a lease's slots back as
soon as its call is over at the provider (end_call.lua), before the server
has recorded the outcome; the lease waits in the org's ended zset, renewed
by the dialer's heartbeat, until the dialer's release. An expired one means
its dialer died in between. No slot is involved (the call is over), so it
is judged at once: the provider's result when it reports the call ENDED,
else FinishAttempt(DIALER_LOST) (the dead dialer's result is gone; the
attempt counts and is retried under the retry policy). Only an unreachable
provider defers that for ``ended_status_grace_ms`` after the call's end, so
a carrier blip does not cost the real outcome. Then it is released (the
contact re-queued if FinishAttempt says it waits for another attempt). The
contact could not be claimed meanwhile: its attempt was open in Postgres.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Container
from typing import Any

from contract.lease import LeaseRecord
from dialer.leases import LeaseClient
from dialer.logging import log_event
from dialer.metrics import DialerMetrics
from dialer.providers.base import CallState
from dialer.server_client import ServerClient, finish_request, outcome_to_proto, requeue_due_ms, trunk_from_json
from contract import keys
from batchcalls.v1 import resources_pb2

log = logging.getLogger("dialer.reaper")

#: Max call duration assumed when a lease does not say (should not happen).
DEFAULT_MAX_CALL_MS = 3600 * 1000
#: How long after an ended lease's call end an unreachable provider is
#: waited for before its attempt is closed as DIALER_LOST.
DEFAULT_ENDED_STATUS_GRACE_MS = 60_000


class Reaper:
    def __init__(
        self,
        leases: LeaseClient,
        providers: Any,
        server: ServerClient,
        *,
        dialer_id: str,
        lease_ttl_ms: int,
        ring_timeout_seconds: float,
        dial_grace_seconds: float = 1.0,
        metrics: DialerMetrics | None = None,
        own_leases: Callable[[], Container[str]] = lambda: (),
        lock_ttl_ms: int = 15_000,
        status_timeout: float = 10.0,
        concurrency: int = 16,
        ended_status_grace_ms: int = DEFAULT_ENDED_STATUS_GRACE_MS,
    ) -> None:
        self.leases = leases
        self.providers = providers
        self.server = server
        self.dialer_id = dialer_id
        self.closed_by = f"reaper:{dialer_id}"
        self.lease_ttl_ms = lease_ttl_ms
        self.ring_timeout_ms = int(ring_timeout_seconds * 1000)
        self.dial_grace_ms = int(dial_grace_seconds * 1000)
        self.metrics = metrics
        self.own_leases = own_leases
        self.lock_ttl_ms = lock_ttl_ms
        self.status_timeout = status_timeout
        self._sem = asyncio.Semaphore(concurrency)
        self.ended_status_grace_ms = int(ended_status_grace_ms)

    async def tick(self) -> int:
        """One pass over every organization that may hold leases. Returns
        the number of leases released."""
        if not await self.leases.state_present():
            return 0  # Redis lost its data; wait for the rebuild
        active = await self.leases.active_orgs()
        orgs = active | await self.leases.lease_orgs()
        released = 0
        for org_id in sorted(orgs):
            lock = keys.reaper_lock(org_id)
            token = f"{self.dialer_id}:{uuid.uuid4().hex}"
            if await self.leases.try_lock(lock, token, self.lock_ttl_ms):
                try:
                    released += await self.reap_org(org_id)
                    if org_id not in active:
                        await self.leases.forget_lease_org_if_empty(org_id)
                finally:
                    await self.leases.unlock(lock, token)
            if self.metrics is not None:
                used, limit, ended = await self.leases.org_usage(org_id)
                self.metrics.slots_in_use.labels(org_id).set(used)
                self.metrics.ended_awaiting_outcome.labels(org_id).set(ended)
                if limit is not None:
                    self.metrics.slots_limit.labels(org_id).set(limit)
        return released

    async def reap_org(self, org_id: str) -> int:
        """Judge the org's expired leases (slot-holding and ended) not held
        by this dialer. Returns how many were released."""
        records = await self.leases.list_expired(org_id)
        ended = await self.leases.list_expired_ended(org_id)
        reserved = await self.leases.list_expired_reserved(org_id)
        own = self.own_leases()
        todo = [(r, self.judge) for r in records if r.lease_id not in own]
        todo += [(r, self.judge_ended) for r in ended if r.lease_id not in own]
        todo += [(r, self.judge_reserved) for r in reserved if r.lease_id not in own]
        if not todo:
            return 0
        results = await asyncio.gather(*(self._judge_bounded(r, j) for r, j in todo), return_exceptions=True)
        released = 0
        for (record, _), result in zip(todo, results):
            if isinstance(result, BaseException):
                log_event(log, "reaper.error", logging.ERROR, org_id=org_id, lease_id=record.lease_id,
                          error=repr(result))
            elif result.startswith("released"):
                released += 1
        return released

    async def _judge_bounded(self, record: LeaseRecord, judge: Callable[[LeaseRecord], Awaitable[str]]) -> str:
        async with self._sem:
            return await judge(record)

    def _judged(self, record: LeaseRecord, result: str) -> str:
        """Count and log one verdict ("released:<why>" or "kept:<why>")."""
        released = result.startswith("released")
        if self.metrics is not None and released:
            self.metrics.reaped.labels(result.removeprefix("released:")).inc()
        log_event(log, "reaper.judged", logging.INFO if released else logging.DEBUG, org_id=record.org_id,
                  lease_id=record.lease_id, batch_id=record.batch_id, contact_id=record.contact_id,
                  attempt_id=record.attempt_id, holder=record.dialer_id, result=result)
        return result

    async def judge(self, record: LeaseRecord) -> str:
        """Decide one expired lease: "released:<why>" or "kept:<why>"."""
        return self._judged(record, await self._judge(record))

    async def _judge(self, record: LeaseRecord) -> str:
        now = self.leases.now_ms()
        org_id = record.org_id
        if not record.info:
            # The info hash outlived its safety TTL (the lease was not renewed
            # for a day): nothing can still be live under it.
            await self._drop_orphan(record)
            return "released:orphan"

        if not record.attempt_id:
            if now - record.claimed_ms < self.lease_ttl_ms:
                return "kept:young_claim"
            due = int(float(record.info.get("due_ms") or 0)) or now
            r = await self.leases.release(
                org_id, record.batch_id, record.lease_id,
                only_unattached=True, requeue_contact=record.contact_id, requeue_due_ms=due, requeue_mode="nx",
            )
            if r == -1:
                return "kept:attached_meanwhile"
            # Tell the server: an attempt it granted under this lease (the
            # grant's reply never reached the dead dialer) was never dialed.
            await self.leases.note_released_unattached(org_id, record.lease_id)
            return "released:unattached_claim"

        max_call_ms = record.max_call_ms or DEFAULT_MAX_CALL_MS
        deadline = record.started_ms + max_call_ms + self.ring_timeout_ms + self.lease_ttl_ms
        state: CallState | None = None
        result = None
        authoritative = False
        try:
            trunk = trunk_from_json(record.trunk_json)
            provider = self.providers.get(trunk.kind)
            authoritative = bool(getattr(provider, "authoritative_status", False))
            status = await asyncio.wait_for(provider.call_status(record.provider_call_id, trunk), self.status_timeout)
            state, result = status.state, status.result
        except Exception as exc:  # provider unreachable: not proof the call is over
            log_event(log, "reaper.call_status_failed", logging.WARNING, org_id=org_id, lease_id=record.lease_id,
                      provider_call_id=record.provider_call_id, error=repr(exc))

        if state is CallState.ENDED and result is not None:
            req = finish_request(
                attempt_id=record.attempt_id, fencing_token=record.fencing_token,
                outcome=outcome_to_proto(result.outcome), closed_by=self.closed_by,
                end_time=now / 1000, result=result,
            )
            why = "ended"
        elif state in (CallState.RINGING, CallState.IN_PROGRESS):
            if now > deadline:
                log_event(log, "reaper.call_overdue", logging.WARNING, org_id=org_id, lease_id=record.lease_id,
                          provider_call_id=record.provider_call_id, state=state.value,
                          overdue_seconds=(now - deadline) / 1000)
            return "kept:" + state.value
        elif (
            state is CallState.UNKNOWN
            and authoritative
            and now > record.started_ms + self.dial_grace_ms + self.lease_ttl_ms
        ):
            req = finish_request(
                attempt_id=record.attempt_id, fencing_token=record.fencing_token,
                outcome=resources_pb2.CALL_OUTCOME_NOT_DIALED, closed_by=self.closed_by,
                end_time=now / 1000,
                detail=f"dialer {record.dialer_id} lost before the call was placed",
            )
            why = "never_placed"
        elif now > deadline:
            req = finish_request(
                attempt_id=record.attempt_id, fencing_token=record.fencing_token,
                outcome=resources_pb2.CALL_OUTCOME_DIALER_LOST, closed_by=self.closed_by,
                end_time=now / 1000,
                detail=f"dialer {record.dialer_id} lost; provider state {state.value if state else 'unreachable'}",
            )
            why = "dialer_lost"
        else:
            return "kept:" + (state.value if state else "unreachable") + "_before_deadline"

        return await self._finish_and_release(record, req, why, now)

    async def _finish_and_release(self, record: LeaseRecord, req: Any, why: str, now: int,
                                  *, prefix: str = "") -> str:
        """FinishAttempt once; answered (ok or rejected) -> release, the
        contact re-queued when it waits for another attempt; unavailable ->
        keep for the next tick."""
        answer, resp = await self.server.finish_once(req)
        if answer == "retry":
            return f"kept:{prefix}finish_unavailable"
        if self.metrics is not None and answer == "ok":
            self.metrics.outcomes.labels(
                resources_pb2.CallOutcome.Name(req.outcome).removeprefix("CALL_OUTCOME_").lower()
            ).inc()
        due = requeue_due_ms(resp, now) if answer == "ok" else None
        await self.leases.release(record.org_id, record.batch_id, record.lease_id,
                                  requeue_contact=record.contact_id if due is not None else "",
                                  requeue_due_ms=due or 0)
        return f"released:{prefix}{why}" if answer == "ok" else f"released:{prefix}already_closed"

    async def judge_reserved(self, record: LeaseRecord) -> str:
        """An expired reservation (granted ahead, its dialer died before it
        took a slot): no call was ever placed under it (the dialer dials
        only after activate.lua moved it into the slot zsets), so it is
        released at once, the contact re-queued, and tombstoned so the
        server closes the attempt granted under it as never dialed."""
        due = int(float(record.info.get("due_ms") or 0)) or self.leases.now_ms()
        r = await self.leases.release(
            record.org_id, record.batch_id, record.lease_id,
            requeue_contact=record.contact_id if record.info else "", requeue_due_ms=due, requeue_mode="nx",
        )
        await self.leases.note_released_unattached(record.org_id, record.lease_id)
        return self._judged(record, "released:reservation" if r == 1 else "released:reservation_gone")

    async def judge_ended(self, record: LeaseRecord) -> str:
        """Decide one expired ended lease (its call is over, its dialer died
        before FinishAttempt was answered): "released:ended_<why>" or
        "kept:ended_<why>"."""
        return self._judged(record, await self._judge_ended(record))

    async def _judge_ended(self, record: LeaseRecord) -> str:
        now = self.leases.now_ms()
        if not record.info or not record.attempt_id or not record.batch_id:
            # Nothing to close (end_call.lua only moves attached leases, so
            # this is an info hash past its safety TTL): no slot involved.
            await self.leases.drop_ended(record.org_id, record.lease_id)
            return "released:ended_orphan"
        ended_ms = record.ended_ms or now
        state: CallState | None = None
        result = None
        try:
            trunk = trunk_from_json(record.trunk_json)
            provider = self.providers.get(trunk.kind)
            status = await asyncio.wait_for(provider.call_status(record.provider_call_id, trunk), self.status_timeout)
            state, result = status.state, status.result
        except Exception as exc:
            log_event(log, "reaper.call_status_failed", logging.WARNING, org_id=record.org_id,
                      lease_id=record.lease_id, provider_call_id=record.provider_call_id, error=repr(exc))
        if state is CallState.ENDED and result is not None:
            req = finish_request(
                attempt_id=record.attempt_id, fencing_token=record.fencing_token,
                outcome=outcome_to_proto(result.outcome), closed_by=self.closed_by,
                end_time=ended_ms / 1000, result=result,
            )
            return await self._finish_and_release(record, req, "by_provider", now, prefix="ended_")
        if state is None and now <= ended_ms + self.ended_status_grace_ms:
            return "kept:ended_unreachable"
        req = finish_request(
            attempt_id=record.attempt_id, fencing_token=record.fencing_token,
            outcome=resources_pb2.CALL_OUTCOME_DIALER_LOST, closed_by=self.closed_by,
            end_time=ended_ms / 1000,
            detail=(f"dialer {record.dialer_id} lost after the call ended, before its outcome was recorded; "
                    f"provider state {state.value if state else 'unreachable'}"),
        )
        return await self._finish_and_release(record, req, "dialer_lost", now, prefix="ended_")

    async def _drop_orphan(self, record: LeaseRecord) -> None:
        """Remove a lease without info from the org zset and from whichever
        batch zset of the org holds it (found by SCAN: a rare path)."""
        redis = self.leases.redis
        org_id = record.org_id
        await redis.zrem(keys.org_leases(org_id), record.lease_id)
        escaped = "".join("\\" + c if c in "*?[]\\" else c for c in org_id)
        pattern = keys.batch_leases(escaped, "*")
        async for key in redis.scan_iter(match=pattern, count=500):
            await redis.zrem(key, record.lease_id)
