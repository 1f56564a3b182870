"""The leases this dialer holds and the tasks working them: ``LeaseBook``.

Bookkeeping only: which leases are held (and lost, or ended), the claim
handler and the provider call of each, the heartbeat that renews them all,
the release that gives one back, and the drain at stop. What a call does
with its lease is in ``dialer.call``.

Heartbeat (docs/design.md §5): every ``heartbeat_seconds`` all held leases
are renewed with renew.lua (ZADD XX). A failed renewal = lease lost: a
warning and a metric, but the call goes on (a person may be talking) and
the lease keeps being renewed, which works again once the server's
reconciler rebuilt it; the attempt is finished normally and Postgres
decides.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from redis.exceptions import RedisError

from dialer.aio import wait_event
from dialer.lease_replies import Claim, RequeueMode
from dialer.leases import LeaseClient
from dialer.logging import log_event
from dialer.metrics import DialerMetrics
from dialer.pacing import ClaimPacing
from dialer.settings import DialerSettings

__all__ = ["FINISH_BUDGET_AT_STOP_SECONDS", "HeldLease", "LeaseBook"]

log = logging.getLogger("dialer.worker")

#: Budget for delivering outcomes once a hard stop began (after the drain).
FINISH_BUDGET_AT_STOP_SECONDS = 10.0


@dataclass
class HeldLease:
    org_id: str
    batch_id: str
    lease_id: str
    contact_id: str
    lost: bool = False
    #: The call is over and its slots were given back (end_call.lua); the
    #: lease waits in the ended zset for FinishAttempt and the release.
    ended: bool = False


class LeaseBook:
    """Held leases, their tasks, heartbeat, release and drain."""

    def __init__(
        self,
        settings: DialerSettings,
        leases: LeaseClient,
        metrics: DialerMetrics,
        pacing: ClaimPacing,
        monotonic: Callable[[], float],
    ) -> None:
        self.settings = settings
        self.leases = leases
        self.metrics = metrics
        self.pacing = pacing
        self.monotonic = monotonic
        self.held: dict[str, HeldLease] = {}
        #: lease id -> claim handler (``dialer.call.CallSteps.handle``).
        self.claim_tasks: dict[str, asyncio.Task[None]] = {}
        #: lease id -> provider.place_call.
        self.call_tasks: dict[str, asyncio.Task] = {}
        #: Leases whose call ended (slots given back) awaiting FinishAttempt.
        self.ended: set[str] = set()
        #: Monotonic time the drain gave up waiting and hung up live calls.
        self.hard_stop_at: float | None = None

    def hold(self, claim: Claim) -> None:
        self.held[claim.lease_id] = HeldLease(claim.org_id, claim.batch_id, claim.lease_id, claim.contact_id)

    def busy_claims(self) -> int:
        """Claims that may hold or soon hold a slot: handlers minus those
        whose call already ended (they only wait for FinishAttempt)."""
        return len(self.claim_tasks) - len(self.ended)

    def mark_ended(self, lease_id: str) -> bool:
        """end_call.lua gave the lease's slots back. False when the lease is
        no longer held here (released meanwhile)."""
        held = self.held.get(lease_id)
        if held is None:
            return False
        held.ended = True
        self.ended.add(lease_id)
        return True

    def forget(self, lease_id: str) -> None:
        """This dialer no longer looks after the lease (released, or left
        to a reaper)."""
        self.held.pop(lease_id, None)
        self.ended.discard(lease_id)

    def past_finish_budget(self) -> bool:
        """A hard stop began long enough ago that undelivered outcomes are
        left to a reaper."""
        return self.hard_stop_at is not None and self.monotonic() > self.hard_stop_at + FINISH_BUDGET_AT_STOP_SECONDS

    async def release(
        self,
        claim: Claim,
        *,
        requeue_due_ms: int | None = None,
        requeue_mode: RequeueMode = RequeueMode.KEEP_EXISTING,
    ) -> None:
        """release.lua, retried a few times on Redis errors. For a lease
        whose call ended (slots already given back by end_call) the release
        is lazy: it rides along with the next pipeline; otherwise it frees
        slots and wakes the claim loop."""
        ended = claim.lease_id in self.ended
        freed = False
        for i in range(5):
            try:
                freed = await self.leases.release(
                    claim.org_id, claim.batch_id, claim.lease_id,
                    requeue_contact=claim.contact_id if requeue_due_ms is not None else "",
                    requeue_due_ms=requeue_due_ms or 0,
                    requeue_mode=requeue_mode,
                    lazy=ended,
                ) == 1
                break
            except (RedisError, OSError) as exc:
                log_event(log, "lease.release_failed", logging.WARNING, lease_id=claim.lease_id, error=repr(exc))
                await asyncio.sleep(0.2 * (i + 1))
        self.forget(claim.lease_id)
        if freed and not ended:
            self.pacing.wake_full()  # slots given back: claim again now

    # -- heartbeat ---------------------------------------------------------------

    async def heartbeat_loop(self, stop: asyncio.Event) -> None:
        while not await wait_event(stop, self.settings.heartbeat_seconds):
            try:
                await self.heartbeat()
            except (RedisError, OSError) as exc:
                log_event(log, "heartbeat.redis_error", logging.WARNING, error=repr(exc))
            except Exception as exc:  # pragma: no cover - keep beating whatever happens
                log_event(log, "heartbeat.error", logging.ERROR, error=repr(exc), exc_info=True)

    async def heartbeat(self) -> dict[str, bool]:
        """Renew every held lease once, and note their orgs in LEASE_ORGS.
        Returns lease id -> held."""
        held = list(self.held.values())
        if not held:
            return {}
        results = await self.leases.renew_many((h.org_id, h.batch_id, h.lease_id) for h in held)
        await self.leases.note_lease_orgs({h.org_id for h in held})
        for h in held:
            ok = results.get(h.lease_id, False)
            if not ok and not h.lost and h.lease_id in self.held:
                h.lost = True
                self.metrics.leases_lost.inc()
                log_event(log, "lease.lost", logging.WARNING, org_id=h.org_id, batch_id=h.batch_id,
                          lease_id=h.lease_id, contact_id=h.contact_id,
                          live_call=h.lease_id in self.call_tasks)
            elif ok and h.lost:
                h.lost = False
                log_event(log, "lease.recovered", logging.INFO, org_id=h.org_id, lease_id=h.lease_id)
        return results

    # -- stopping ------------------------------------------------------------------

    async def drain(self, timeout: float) -> None:
        """Let the claim handlers finish for up to ``timeout`` s; then hang
        up the live calls (provider cancellation) and give their handlers
        the finish budget to report them."""
        pending = set(self.claim_tasks.values())
        if not pending:
            return
        log_event(log, "dialer.draining", live_calls=len(self.call_tasks), claims=len(pending),
                  drain_timeout_seconds=timeout)
        _, pending = await asyncio.wait(pending, timeout=timeout)
        if not pending:
            return
        self.hard_stop_at = self.monotonic()
        log_event(log, "dialer.hanging_up", logging.WARNING, live_calls=len(self.call_tasks))
        for task in list(self.call_tasks.values()):
            task.cancel()
        await asyncio.wait(pending, timeout=FINISH_BUDGET_AT_STOP_SECONDS + 10.0)
