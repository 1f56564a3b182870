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

The decisions themselves are pure functions in ``dialer.verdicts``; this
module gathers their facts (Redis, the provider) and carries them out
(FinishAttempt, release.lua).

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

from batchcalls.v1 import resources_pb2
from redis.asyncio.cluster import RedisCluster

from contract import keys
from contract.lease import LeaseRecord
from dialer.lease_replies import RequeueMode
from dialer.leases import LeaseClient
from dialer.logging import log_event
from dialer.metrics import DialerMetrics
from dialer.server_client import (
    FinishAnswer,
    ServerClient,
    finish_request,
    outcome_to_proto,
    requeue_due_ms,
    trunk_from_json,
)
from dialer.verdicts import (
    Act,
    CloseAs,
    Judged,
    ProviderView,
    ReapTiming,
    Verdict,
    ended_needs_nothing,
    judge_attached,
    judge_ended,
    judge_unattached,
)

log = logging.getLogger("dialer.reaper")

#: Max call duration assumed when a lease does not say (should not happen).
DEFAULT_MAX_CALL_MS = 3600 * 1000
#: How long after an ended lease's call end an unreachable provider is
#: waited for before its attempt is closed as DIALER_LOST.
DEFAULT_ENDED_STATUS_GRACE_MS = 60_000

_CLOSE_OUTCOME = {
    CloseAs.NOT_DIALED: resources_pb2.CALL_OUTCOME_NOT_DIALED,
    CloseAs.DIALER_LOST: resources_pb2.CALL_OUTCOME_DIALER_LOST,
}


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
        self.timing = ReapTiming(
            lease_ttl_ms=int(lease_ttl_ms),
            ring_timeout_ms=int(ring_timeout_seconds * 1000),
            dial_grace_ms=int(dial_grace_seconds * 1000),
            ended_status_grace_ms=int(ended_status_grace_ms),
        )
        self.metrics = metrics
        self.own_leases = own_leases
        self.lock_ttl_ms = lock_ttl_ms
        self.status_timeout = status_timeout
        self._sem = asyncio.Semaphore(concurrency)

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
        """Judge the org's expired leases (slot-holding, ended, reserved)
        not held by this dialer. Returns how many were released."""
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
            elif result.released:
                released += 1
        return released

    async def _judge_bounded(self, record: LeaseRecord, judge: Callable[[LeaseRecord], Awaitable[Judged]]) -> Judged:
        async with self._sem:
            return await judge(record)

    def _judged(self, record: LeaseRecord, judged: Judged) -> Judged:
        """Count and log what became of one lease."""
        if self.metrics is not None and judged.released:
            self.metrics.reaped.labels(judged.reason).inc()
        log_event(log, "reaper.judged", logging.INFO if judged.released else logging.DEBUG, org_id=record.org_id,
                  lease_id=record.lease_id, batch_id=record.batch_id, contact_id=record.contact_id,
                  attempt_id=record.attempt_id, holder=record.dialer_id, result=str(judged))
        return judged

    async def judge(self, record: LeaseRecord) -> Judged:
        """Decide one expired slot-holding lease and carry the verdict out."""
        return self._judged(record, await self._judge(record))

    async def _judge(self, record: LeaseRecord) -> Judged:
        now = self.leases.now_ms()
        verdict = judge_unattached(record, now, self.timing)
        if verdict is None:
            view = await self._ask_provider(record)
            verdict = judge_attached(record, now, self.timing, view, default_max_call_ms=DEFAULT_MAX_CALL_MS)
            if verdict.overdue_ms > 0:
                log_event(log, "reaper.call_overdue", logging.WARNING, org_id=record.org_id,
                          lease_id=record.lease_id, provider_call_id=record.provider_call_id,
                          state=view.state_word, overdue_seconds=verdict.overdue_ms / 1000)
            return await self._carry_out(record, verdict, view, end_ms=now, now=now)
        if verdict.act is Act.DROP_ORPHAN:
            await self._drop_orphan(record)
            return Judged(True, verdict.reason)
        return await self._carry_out(record, verdict, None, end_ms=now, now=now)

    async def judge_ended(self, record: LeaseRecord) -> Judged:
        """Decide one expired ended lease (its call is over, its dialer died
        before FinishAttempt was answered) and carry the verdict out."""
        now = self.leases.now_ms()
        if ended_needs_nothing(record):
            # No slot is involved: only the ended zset and the info go.
            await self.leases.drop_ended(record.org_id, record.lease_id)
            return self._judged(record, Judged(True, "ended_orphan"))
        view = await self._ask_provider(record)
        verdict = judge_ended(record, now, self.timing, view)
        judged = await self._carry_out(record, verdict, view, end_ms=record.ended_ms or now, now=now,
                                       prefix="ended_")
        return self._judged(record, judged)

    async def judge_reserved(self, record: LeaseRecord) -> Judged:
        """An expired reservation (granted ahead, its dialer died before it
        took a slot): no call was ever placed under it (the dialer dials
        only after activate.lua moved it into the slot zsets), so it is
        released at once, the contact re-queued, and tombstoned so the
        server closes the attempt granted under it as never dialed."""
        due = int(float(record.info.get("due_ms") or 0)) or self.leases.now_ms()
        r = await self.leases.release(
            record.org_id, record.batch_id, record.lease_id,
            requeue_contact=record.contact_id if record.info else "", requeue_due_ms=due,
            requeue_mode=RequeueMode.KEEP_EXISTING,
        )
        await self.leases.note_released_unattached(record.org_id, record.lease_id)
        return self._judged(record, Judged(True, "reservation" if r == 1 else "reservation_gone"))

    async def _ask_provider(self, record: LeaseRecord) -> ProviderView:
        """The provider's word on the lease's call; state None when it
        could not be asked (unreachable: not proof the call is over)."""
        authoritative = False
        try:
            trunk = trunk_from_json(record.trunk_json)
            provider = self.providers.get(trunk.kind)
            authoritative = bool(getattr(provider, "authoritative_status", False))
            status = await asyncio.wait_for(provider.call_status(record.provider_call_id, trunk), self.status_timeout)
        except Exception as exc:
            log_event(log, "reaper.call_status_failed", logging.WARNING, org_id=record.org_id,
                      lease_id=record.lease_id, provider_call_id=record.provider_call_id, error=repr(exc))
            return ProviderView(None, authoritative=authoritative)
        return ProviderView(status.state, status.result, authoritative)

    async def _carry_out(self, record: LeaseRecord, verdict: Verdict, view: ProviderView | None, *,
                         end_ms: int, now: int, prefix: str = "") -> Judged:
        """Do what the verdict says (KEEP, RELEASE_UNATTACHED, CLOSE); a
        DROP_ORPHAN is done by the caller, which knows which zsets hold the
        lease. ``prefix`` goes before the words of an unanswered or stale
        FinishAttempt ("ended_" for ended leases)."""
        if verdict.act is Act.KEEP:
            return Judged(False, verdict.reason)
        if verdict.act is Act.RELEASE_UNATTACHED:
            due = int(float(record.info.get("due_ms") or 0)) or now
            r = await self.leases.release(
                record.org_id, record.batch_id, record.lease_id, only_unattached=True,
                requeue_contact=record.contact_id, requeue_due_ms=due, requeue_mode=RequeueMode.KEEP_EXISTING,
            )
            if r == -1:
                return Judged(False, "attached_meanwhile")
            # Tell the server: an attempt it granted under this lease (the
            # grant's reply never reached the dead dialer) was never dialed.
            await self.leases.note_released_unattached(record.org_id, record.lease_id)
            return Judged(True, verdict.reason)
        if verdict.close_as is CloseAs.PROVIDER_RESULT and view is not None and view.result is not None:
            result = view.result
            req = finish_request(
                attempt_id=record.attempt_id, fencing_token=record.fencing_token,
                outcome=outcome_to_proto(result.outcome), closed_by=self.closed_by,
                end_time=end_ms / 1000, result=result,
            )
        else:
            assert verdict.close_as in _CLOSE_OUTCOME, verdict
            req = finish_request(
                attempt_id=record.attempt_id, fencing_token=record.fencing_token,
                outcome=_CLOSE_OUTCOME[verdict.close_as], closed_by=self.closed_by,
                end_time=end_ms / 1000, detail=verdict.detail,
            )
        return await self._finish_and_release(record, req, verdict.reason, now, prefix=prefix)

    async def _finish_and_release(self, record: LeaseRecord, req: Any, reason: str, now: int,
                                  *, prefix: str = "") -> Judged:
        """FinishAttempt once; answered (ok or rejected) -> release, the
        contact re-queued when it waits for another attempt; unavailable ->
        keep for the next tick."""
        answer, resp = await self.server.finish_once(req)
        if answer is FinishAnswer.RETRY:
            return Judged(False, f"{prefix}finish_unavailable")
        if self.metrics is not None and answer is FinishAnswer.OK:
            self.metrics.outcomes.labels(
                resources_pb2.CallOutcome.Name(req.outcome).removeprefix("CALL_OUTCOME_").lower()
            ).inc()
        due = requeue_due_ms(resp, now) if answer is FinishAnswer.OK else None
        await self.leases.release(record.org_id, record.batch_id, record.lease_id,
                                  requeue_contact=record.contact_id if due is not None else "",
                                  requeue_due_ms=due or 0)
        return Judged(True, reason if answer is FinishAnswer.OK else f"{prefix}already_closed")

    async def _drop_orphan(self, record: LeaseRecord) -> None:
        """Remove a lease without info from the org zset and from whichever
        batch zset of the org holds it (found by SCAN: a rare path)."""
        redis = self.leases.redis
        org_id = record.org_id
        await redis.zrem(keys.org_leases(org_id), record.lease_id)
        escaped = "".join("\\" + c if c in "*?[]\\" else c for c in org_id)
        pattern = keys.batch_leases(escaped, "*")
        # On a Redis Cluster only the org's master holds its keys (one slot):
        # scan that one, not every master.
        scan = {"target_nodes": redis.get_node_from_key(keys.org_leases(org_id))} if isinstance(redis, RedisCluster) else {}
        async for key in redis.scan_iter(match=pattern, count=500, **scan):
            await redis.zrem(key, record.lease_id)
