"""Claiming rounds: which contacts this dialer claims, and when.

A full claim round runs every ``poll_seconds``, and at once when slots were
freed that only a full round refills (a release that gave slots back, a
reaper tick that released leases, a claim handler ending while this
dialer's own cap held a round back: ``ClaimPacing.wake_full``). When this
dialer's end_call frees a slot, an *express* round refills it at once:
end_call.lua returned the start of that org's round (ring rotated by one,
free slots), so the claim itself is the only round trip (skipped while the
last full round found the state marker missing). A round is exhaustive, so
the loop then waits for the next wake or full round.

A full round serves every organization in ACTIVE_ORGS, provided the state
marker exists (else Redis lost its data: claim nothing until the server's
reconciler has rebuilt it; heartbeats and live calls go on). Per
organization four commands rotate the ring of running batches by one and
read it with the org's free slots; for the orgs active in the previous
round they go in the same round trip as the marker and ACTIVE_ORGS, with an
SADD of the orgs to LEASE_ORGS (for the reapers; at most once per heartbeat
interval per org, and before the first claim in an org). Then passes are
made over the ring: in each pass every batch is asked, with one claim.lua
call, for its share of the free slots (ceil(free / batches left in the
pass), so the remainder goes to the batches first in the rotated ring, and
a batch that had fewer contacts leaves its share to the next), until every
batch is full / empty / not due or the organization is full. Each claim is
handed to ``spawn`` (``dialer.call.CallSteps.spawn``); a saturated org gets
reservations (``dialer.grant_ahead``). docs/design.md §5.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable

from redis.exceptions import RedisClusterException, RedisError

from dialer.aio import wait_event
from dialer.grant_ahead import GrantAhead
from dialer.lease_book import LeaseBook
from dialer.lease_replies import Claim, ClaimStop, OrgRound
from dialer.leases import LeaseClient
from dialer.logging import log_event
from dialer.metrics import DialerMetrics
from dialer.pacing import ClaimPacing
from dialer.settings import DialerSettings

__all__ = ["ClaimRounds"]

log = logging.getLogger("dialer.worker")


class ClaimRounds:
    """The claim loop: full rounds, express rounds, serving one org."""

    def __init__(
        self,
        settings: DialerSettings,
        leases: LeaseClient,
        metrics: DialerMetrics,
        pacing: ClaimPacing,
        book: LeaseBook,
        grant_ahead: GrantAhead,
        monotonic: Callable[[], float],
        spawn: Callable[[Claim], None],
    ) -> None:
        self.settings = settings
        self.leases = leases
        self.metrics = metrics
        self.pacing = pacing
        self.book = book
        self.grant_ahead = grant_ahead
        self.monotonic = monotonic
        #: Starts a claim's handler (``dialer.call.CallSteps.spawn``).
        self.spawn = spawn
        #: The state marker was there at the last full round.
        self.state_present = False
        #: ACTIVE_ORGS of the last round: their round starts are read in the
        #: same round trip as the marker and ACTIVE_ORGS (claim_context).
        self._known_orgs: list[str] = []
        #: org -> monotonic time this dialer last noted it in LEASE_ORGS.
        #: Once per heartbeat interval is enough: the heartbeat notes every
        #: org it holds leases in, and an org that leaves ACTIVE_ORGS is put
        #: in LEASE_ORGS by the server (RedisState.deactivate_batch), so a
        #: reaper never loses sight of an org with leases.
        self._noted: dict[str, float] = {}
        self._marker_missing_logged = False

    async def loop(self) -> None:
        """Full rounds every ``poll_seconds`` (or at once when woken with
        ``wake_full``); in between, an express round for each org where
        this dialer's end_call freed slots (end_call.lua returned the start
        of that org's round: no other round trip before the claim)."""
        pacing = self.pacing
        errors = 0
        next_full = 0.0
        while not pacing.stopping.is_set():
            # Cleared before the round: a slot freed while it runs makes the
            # next round start at once.
            pacing.wake.clear()
            hints, pacing.hints = pacing.hints, {}
            full = pacing.full_wanted or not (hints or pacing.refill) or self.monotonic() >= next_full
            pacing.full_wanted = False
            try:
                if full:
                    await self.claim_round()
                    next_full = self.monotonic() + self.settings.poll_seconds
                else:
                    await self.express_round(hints)
                errors = 0
            except (RedisError, RedisClusterException, OSError) as exc:  # a failover: slot map moving
                errors += 1
                log_event(log, "claim.redis_error", logging.WARNING, error=repr(exc))
                await pacing.sleep(min(0.1 * 2**errors, 2.0))
                continue
            except Exception as exc:  # noqa: BLE001 - a bug must not end claiming for good
                errors += 1
                log_event(log, "claim.error", logging.ERROR, error=repr(exc), exc_info=True)
                await pacing.sleep(min(0.1 * 2**errors, 2.0))
                continue
            # A round is exhaustive (passes until every org is full or its
            # batches are full / empty / not due; a round cut short by this
            # dialer's cap or a claim pause is resumed by the wake or the
            # pause), so even a round that claimed waits for the next freed
            # slot (the wake) or the next full round (other dialers' slots,
            # contacts coming due, other orgs), rather than confirming
            # "full" at once.
            await wait_event(pacing.wake, max(0.0, next_full - self.monotonic()))

    async def express_round(self, hints: dict[str, OrgRound]) -> int:
        """Refill the slots this dialer's end_calls freed, org by org, from
        the round starts end_call.lua returned, and top up the reservations
        woken waiters drew down. Skipped while the last full round found the
        state marker missing (claim.lua also refuses in an org whose config
        the rebuild has not written yet)."""
        pacing = self.pacing
        if not self.state_present or self.monotonic() < pacing.pause_until:
            return 0
        claimed = 0
        for org_id, start in hints.items():
            if pacing.stopping.is_set():
                break
            if start.org_free:
                claimed += await self.serve_org(org_id, start)
            else:
                claimed += await self.grant_ahead.prefetch(org_id, start.ring)
        refill, pacing.refill = pacing.refill, {}
        for org_id, ring in refill.items():
            if not pacing.stopping.is_set() and org_id not in hints:
                claimed += await self.grant_ahead.prefetch(org_id, ring)
        return claimed

    async def claim_round(self) -> bool:
        """One round over every active organization. True if anything was claimed."""
        pause = self.pacing.pause_until - self.monotonic()
        if pause > 0:
            await self.pacing.sleep(min(pause, self.settings.poll_seconds * 4))
            return False
        if self.book.busy_claims() >= self.settings.max_live_calls:
            self.pacing.cap_blocked = True
            return False
        now = self.monotonic()
        note = [o for o in self._known_orgs if now - self._noted.get(o, -1e9) >= self.settings.heartbeat_seconds]
        present, active, rounds = await self.leases.claim_context(self._known_orgs, note)
        for org_id in note:
            self._noted[org_id] = now
        self._known_orgs = sorted(active)
        self.state_present = present
        if not present:
            if not self._marker_missing_logged:
                log_event(log, "claim.state_marker_missing", logging.WARNING,
                          detail="Redis state missing; not claiming until the server rebuilds it")
                self._marker_missing_logged = True
            return False
        if self._marker_missing_logged:
            log_event(log, "claim.state_marker_back")
            self._marker_missing_logged = False
        orgs = list(active)
        random.shuffle(orgs)
        claimed = 0
        for org_id in orgs:
            if self.pacing.stopping.is_set():
                break
            claimed += await self.serve_org(org_id, rounds.get(org_id))
        return claimed > 0

    async def serve_org(self, org_id: str, start: OrgRound | None = None) -> int:
        """Fill the org's free slots round-robin over its running batches.
        ``start``: the round's start if already read (claim_context).
        Returns how many contacts were claimed."""
        if start is None:
            start = await self.leases.begin_org_round(org_id)  # notes it in LEASE_ORGS
            self._noted[org_id] = self.monotonic()
        if start.org_free is None:
            self.metrics.claims.labels(ClaimStop.ORG_UNCONFIGURED).inc()
            return 0
        free = start.org_free
        claimed = 0
        remaining = start.ring
        saturated = free <= 0
        # Free slots go first to this dialer's granted reservations: a fresh
        # claim would need a StartAttempt round trip before its call.
        while free > 0 and self.grant_ahead.wake_slot_waiter(org_id):
            free -= 1
            saturated = True
        while remaining and free > 0:
            next_pass: list[str] = []
            for i, batch_id in enumerate(remaining):
                if self.pacing.halted():
                    return claimed
                room = min(free, self.settings.max_live_calls - self.book.busy_claims())
                if room <= 0:
                    self.pacing.cap_blocked = self.pacing.cap_blocked or free > 0
                    return claimed
                share = -(-room // (len(remaining) - i))  # ceil: the remainder goes first in the ring
                got = await self.leases.claim_many(org_id, batch_id, share)
                if got.claims:
                    self.metrics.claims.labels("ok").inc(len(got.claims))
                    for claim in got.claims:
                        self.spawn(claim)
                    claimed += len(got.claims)
                free = got.org_free
                if got.stop is ClaimStop.OK:
                    next_pass.append(batch_id)  # it may have more
                    continue
                self.metrics.claims.labels(got.stop).inc()
                if got.stop in (ClaimStop.ORG_UNCONFIGURED, ClaimStop.NO_MARKER):
                    # NO_MARKER: a failover may have lost this org's last
                    # writes; nothing is claimed in it until the server's
                    # reconciler rebuilt it (next rounds retry).
                    return claimed
                if got.stop in (ClaimStop.ORG_FULL, ClaimStop.BATCH_FULL):
                    saturated = True
                if got.stop is ClaimStop.ORG_FULL:
                    break
            else:
                remaining = next_pass
                continue
            break
        if free <= 0 and claimed == 0:
            self.metrics.claims.labels(ClaimStop.ORG_FULL).inc()
        if saturated or free <= 0:
            claimed += await self.grant_ahead.prefetch(org_id, start.ring)
        return claimed
