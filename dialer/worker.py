"""The dialer's main loop (docs/design.md §5 is the contract).

``Dialer(settings, redis, channel, providers, clock=..., monotonic=...)``;
``await dialer.run()`` until ``await dialer.stop()``.

Claiming. A full claim round runs every ``poll_seconds``, and at once when
slots were freed that only a full round refills (a release that gave slots
back, a reaper tick that released leases, a claim handler ending while this
dialer's own cap held a round back: ``_wake_full``). When this dialer's
end_call frees a slot, an *express* round refills it at once: end_call.lua
returned the start of that org's round (ring rotated by one, free slots), so
the claim itself is the only round trip (skipped while the last full round
found the state marker missing). A round is exhaustive, so the loop then
waits for the next wake or full round. A full round serves every
organization in ACTIVE_ORGS, provided the state marker
exists (else Redis lost its data: claim nothing until the reconciler has
rebuilt it; heartbeats and live calls go on). Per organization four
commands rotate the ring of running batches by one and read it with the
org's free slots; for the orgs active in the previous round they go in the
same round trip as the marker and ACTIVE_ORGS, with an SADD of the orgs to
LEASE_ORGS (for the reapers; at most once per heartbeat interval per org,
and before the first claim in an org). Then passes are made over
the ring: in each pass every batch is asked, with one claim.lua call, for
its share of the free slots (ceil(free / batches left in the pass), so the
remainder goes to the batches first in the rotated ring, and a batch that
had fewer contacts leaves its share to the next), until every batch is
full / empty / not due or the organization is full. Each claim is handled
in a task of its own:

1. StartAttempt(org, batch, contact, token, lease id, dialer id, provider
   call id) with the service token; t0 = monotonic() before sending.
2. Not GRANTED -> release the lease at once (BATCH_NOT_RUNNING: the contact
   goes back to the ready queue if the batch is still active, i.e. paused;
   DEFERRED: back at next_attempt_time; STALE / SUPPRESSED: dropped).
   A gRPC error -> release with the contact re-queued and a tombstone for
   the lease (if the server granted before failing, its reconciler closes
   that attempt as never dialed), and claiming backs off for a moment (the
   server is probably restarting).
3. GRANTED -> attach.lua records attempt id, trunk, max call ms on the lease,
   only if the lease is still held. If it is not, or monotonic() - t0 >
   dial_grace (the server's grant window), or the dialer is stopping:
   FinishAttempt(NOT_DIALED) and release; no call.
4. Otherwise place the call (a task), MarkAnswered on answer. Once the
   call is over at the provider (place_call returned, or a settle path
   learned it is over), end_call.lua gives the lease's org and batch slots
   back AT ONCE and parks the lease, slot-free, in the org's ended zset;
   then FinishAttempt with the result (retried until the server answers),
   then release the lease (out of the ended zset, the contact re-queued if
   it waits for another attempt).

Why the slots may be freed before FinishAttempt is answered (docs/design.md §5):
invariant 3 counts calls live at the provider, and this one is over, so a
slot idling through the FinishAttempt round trip would only cost
throughput. Invariant 2 still holds: until FinishAttempt the contact is
DIALING/CONNECTED with its attempt open in Postgres and in no ready queue
(only the release after FinishAttempt re-queues it), so StartAttempt's
fenced update refuses any other claim of it. If this dialer dies in
between, a reaper finds the expired entry of the ended zset and closes the
attempt with the provider's result (else DIALER_LOST). A call that is not
known to be over (a hang-up at a hard stop the provider did not confirm, a
provider error with the call's state unknown) keeps its slots until the
release, as before; so do grants that are never dialed.

Grant ahead (``_prefetch``, ``_activate``). While an organization is
saturated (a round found no free slot, or batches full), the dialer keeps
about (its call-end rate there x ``prefetch_seconds``, at most
``max_prefetch``) contacts claimed as *reservations*: claim.lua in "reserve"
mode, leases that hold no slot (the org's reserved zset). Each goes through
steps 1-3 as above (its StartAttempt coalesced with the others ahead), then
waits for a slot: a call's end (``_end_call``) and any free slot a round
finds are handed to the first waiting reservation, which runs activate.lua
(both limits checked, the lease moved into the slot zsets) and is dialed at
once, checking the dial grace right before place_call. No slot within half
the dial grace, a paused or cancelled batch, or a lost lease: NOT_DIALED, as
step 3. A call is never placed without activation, so the limits count
every call that can be live; the StartAttempt round trip is simply no longer
between one call's end and the next call's start.

Heartbeat: every ``heartbeat_seconds`` all held leases are renewed with
renew.lua (ZADD XX). A failed renewal = lease lost: a warning and a metric,
but the call goes on (a person may be talking) and the lease keeps being
renewed, which works again once the reconciler rebuilt it; the attempt is
finished normally and Postgres decides.

Stop: no more claims; live calls finish (up to ``drain_timeout_seconds``),
then are hung up (provider cancellation) and reported; every lease whose
attempt is closed is released. A lease whose FinishAttempt could not be
delivered is left in Redis for a reaper.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import grpc
from redis.exceptions import RedisError

from batchcalls.v1 import dialer_service_pb2, resources_pb2
from dialer.leases import Claim, LeaseClient, OrgRound
from dialer.logging import log_event
from dialer.metrics import DialerMetrics
from dialer.providers.base import CallRequest, CallResult, CallState, Outcome
from dialer.reaper import DEFAULT_MAX_CALL_MS, Reaper
from dialer.server_client import (
    ServerClient,
    finish_request,
    outcome_name,
    outcome_to_proto,
    requeue_due_ms,
    trunk_from_proto,
    trunk_to_json,
)
from dialer.settings import DialerSettings

log = logging.getLogger("dialer.worker")

D = dialer_service_pb2
GRANTED = D.START_ATTEMPT_DECISION_GRANTED

#: Budget for delivering outcomes once a hard stop began (after the drain).
FINISH_BUDGET_AT_STOP_SECONDS = 10.0
#: Time constant of the call-end rate that sizes the grant-ahead pool.
END_RATE_TAU_SECONDS = 1.0
#: A reservation waits for a slot at most this share of the dial grace
#: after its StartAttempt was sent; then it is returned as NOT_DIALED.
ACTIVATE_GRACE_SHARE = 0.5


def _clock_fn(clock: Any) -> Callable[[], float]:
    """Accept ``Callable[[], float]`` (epoch s) or a ``server.domain.clock``
    Clock (``.now() -> aware datetime``)."""
    if hasattr(clock, "now") and callable(clock.now):
        return lambda: clock.now().timestamp()
    return clock


async def wait_event(event: asyncio.Event, timeout: float | None) -> bool:
    """Wait for ``event`` up to ``timeout`` s; True if set. Built on
    asyncio.wait, which (unlike wait_for on Python 3.11) never swallows a
    cancellation of the waiting task."""
    if event.is_set():
        return True
    waiter = asyncio.ensure_future(event.wait())
    try:
        done, _ = await asyncio.wait({waiter}, timeout=timeout)
        return bool(done)
    finally:
        waiter.cancel()


async def cancel_and_wait(tasks, *, rounds: int = 100) -> None:
    """Cancel tasks and wait for them; re-cancel if a cancellation got
    swallowed (asyncio.wait_for on 3.11 can do that)."""
    pending = {t for t in tasks if not t.done()}
    for _ in range(rounds):
        if not pending:
            return
        for t in pending:
            t.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.1)
    if pending:  # pragma: no cover
        log_event(log, "dialer.tasks_would_not_stop", logging.ERROR, tasks=[t.get_name() for t in pending])


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


class Dialer:
    def __init__(
        self,
        settings: DialerSettings,
        redis: Any,
        channel: grpc.aio.Channel | None,
        providers: Any,
        *,
        clock: Any = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        metrics: DialerMetrics | None = None,
        server: ServerClient | None = None,
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.providers = providers
        self.clock = _clock_fn(clock)
        self.monotonic = monotonic
        self.metrics = metrics or DialerMetrics()
        self.dialer_id = settings.dialer_id
        self.leases = LeaseClient(redis, dialer_id=self.dialer_id, lease_ttl_ms=settings.lease_ttl_ms, clock=self.clock)
        if server is None:
            if channel is None:
                raise ValueError("a gRPC channel or a ServerClient is required")
            server = ServerClient(channel, settings.service_token, rpc_timeout=settings.rpc_timeout_seconds)
        self.server = server
        self.reaper = Reaper(
            self.leases,
            providers,
            server,
            dialer_id=self.dialer_id,
            lease_ttl_ms=settings.lease_ttl_ms,
            ring_timeout_seconds=settings.ring_timeout_seconds,
            dial_grace_seconds=settings.dial_grace_seconds,
            metrics=self.metrics,
            own_leases=lambda: self._held,
        )
        self._held: dict[str, HeldLease] = {}
        self._tasks: dict[str, asyncio.Task] = {}  # lease id -> claim handler
        self._call_tasks: dict[str, asyncio.Task] = {}  # lease id -> provider.place_call
        self._stopping = asyncio.Event()
        #: Set whenever this dialer frees a slot (or stops): the claim loop
        #: wakes at once instead of sleeping out its poll interval, so a
        #: slot idles for one claim round trip, not up to ``poll_seconds``.
        self._wake = asyncio.Event()
        #: Leases whose call ended (slots given back) awaiting FinishAttempt.
        self._ended: set[str] = set()
        #: org -> round start returned by this dialer's latest end_call in it,
        #: for the next express round (see _claim_loop).
        self._hints: dict[str, OrgRound] = {}
        #: Slots were freed that only a full round refills (see _wake_full).
        self._full_wanted = False
        #: The state marker was there at the last full round.
        self._state_present = False
        #: A claim round stopped at this dialer's own cap (max_live_calls):
        #: the next claim handler to end wakes the claim loop.
        self._cap_blocked = False
        #: ACTIVE_ORGS of the last round: their round starts are read in the
        #: same round trip as the marker and ACTIVE_ORGS (claim_context).
        self._known_orgs: list[str] = []
        #: org -> monotonic time this dialer last noted it in LEASE_ORGS.
        #: Once per heartbeat interval is enough: the heartbeat notes every
        #: org it holds leases in, and an org that leaves ACTIVE_ORGS is put
        #: in LEASE_ORGS by the server (RedisState.deactivate_batch), so a
        #: reaper never loses sight of an org with leases.
        self._noted: dict[str, float] = {}
        #: OutboundTrunk (serialized) -> (TrunkSettings, its json), so the
        #: conversions are not redone for every call of a batch.
        self._trunks: dict[bytes, tuple[Any, str]] = {}
        #: (metric, label value) -> labelled child, so the per-call metrics
        #: skip prometheus_client's label validation and lock each time.
        self._metric_children: dict[tuple[int, str], Any] = {}
        #: Grant ahead (see _prefetch): org -> lease ids of this dialer's
        #: reservations not yet given a slot; org -> reservations waiting
        #: for a slot (FIFO), woken one by one as this dialer's calls end;
        #: org -> (decayed count of call ends, monotonic time) for the rate.
        self._reservations: dict[str, set[str]] = {}
        self._slot_waiters: dict[str, collections.deque[tuple[asyncio.Future, Claim]]] = {}
        self._end_rate: dict[str, tuple[float, float]] = {}
        #: Orgs whose reservations a woken waiter drew down: refill them.
        self._refill: dict[str, list[str]] = {}
        self._reaper_stop = asyncio.Event()
        self._heartbeat_stop = asyncio.Event()
        self._finished = asyncio.Event()
        self._started = False
        self._hard_stop_at: float | None = None
        self._claim_pause_until = 0.0
        self._start_failures = 0
        self._marker_missing_logged = False
        self._drain_timeout: float | None = None

    # -- public ------------------------------------------------------------------

    @property
    def live_calls(self) -> int:
        return len(self._call_tasks)

    def _busy_claims(self) -> int:
        """Claims that may hold or soon hold a slot: handlers minus those
        whose call already ended (they only wait for FinishAttempt)."""
        return len(self._tasks) - len(self._ended)

    def _forget(self, lease_id: str) -> None:
        """This dialer no longer looks after the lease (released, or left
        to a reaper)."""
        self._held.pop(lease_id, None)
        self._ended.discard(lease_id)

    @property
    def held_leases(self) -> dict[str, HeldLease]:
        return dict(self._held)

    async def run(self) -> None:
        """Claim and dial until ``stop()``; then drain and return."""
        if self._started:
            raise RuntimeError("Dialer.run() may only be called once")
        self._started = True
        log_event(log, "dialer.started", dialer_id=self.dialer_id, server=self.settings.server_addr,
                  lease_ttl_seconds=self.settings.lease_ttl_seconds)
        heartbeat = asyncio.create_task(self._heartbeat_loop(), name="dialer-heartbeat")
        reaper = asyncio.create_task(self._reaper_loop(), name="dialer-reaper")
        try:
            await self._claim_loop()
            self._reaper_stop.set()
            await self._drain()
        finally:
            self._reaper_stop.set()
            self._heartbeat_stop.set()
            await asyncio.wait({heartbeat, reaper}, timeout=2.0)
            await cancel_and_wait([heartbeat, reaper, *self._tasks.values(), *self._call_tasks.values()])
            if self._held:
                log_event(log, "dialer.leases_left_for_reaper", logging.WARNING, leases=sorted(self._held))
            self._finished.set()
            log_event(log, "dialer.stopped", dialer_id=self.dialer_id)

    async def stop(self, drain_timeout: float | None = None) -> None:
        """Stop claiming, let live calls finish (bounded), release, return
        when ``run()`` has returned."""
        if drain_timeout is not None:
            self._drain_timeout = drain_timeout
        self._stopping.set()
        self._wake.set()
        if self._started:
            await self._finished.wait()

    def request_stop(self) -> None:
        """Signal-handler friendly: begin stopping without waiting."""
        self._stopping.set()
        self._wake.set()

    # -- claiming ----------------------------------------------------------------

    async def _sleep(self, seconds: float) -> None:
        """Sleep, waking early when stopping."""
        if seconds > 0:
            await wait_event(self._stopping, seconds)

    def _wake_full(self) -> None:
        """Wake the claim loop for a full round (slots freed that no express
        round will refill: a release, a reaper, this dialer's cap)."""
        self._full_wanted = True
        self._wake.set()

    async def _claim_loop(self) -> None:
        """Full rounds every ``poll_seconds`` (or at once when woken with
        ``_wake_full``); in between, an express round for each org where
        this dialer's end_call freed slots (end_call.lua returned the start
        of that org's round: no other round trip before the claim)."""
        errors = 0
        next_full = 0.0
        while not self._stopping.is_set():
            # Cleared before the round: a slot freed while it runs makes the
            # next round start at once.
            self._wake.clear()
            hints, self._hints = self._hints, {}
            full = self._full_wanted or not (hints or self._refill) or self.monotonic() >= next_full
            self._full_wanted = False
            try:
                if full:
                    await self.claim_round()
                    next_full = self.monotonic() + self.settings.poll_seconds
                else:
                    await self._express_round(hints)
                errors = 0
            except (RedisError, OSError) as exc:
                errors += 1
                log_event(log, "claim.redis_error", logging.WARNING, error=repr(exc))
                await self._sleep(min(0.1 * 2**errors, 2.0))
                continue
            # A round is exhaustive (passes until every org is full or its
            # batches are full / empty / not due; a round cut short by this
            # dialer's cap or a claim pause is resumed by the wake or the
            # pause), so even a round that claimed waits for the next freed
            # slot (the wake) or the next full round (other dialers' slots,
            # contacts coming due, other orgs), rather than confirming
            # "full" at once.
            await wait_event(self._wake, max(0.0, next_full - self.monotonic()))

    async def _express_round(self, hints: dict[str, OrgRound]) -> int:
        """Refill the slots this dialer's end_calls freed, org by org, from
        the round starts end_call.lua returned. Skipped while the last full
        round found the state marker missing (claim.lua also refuses in an
        org whose config the rebuild has not written yet)."""
        if not self._state_present or self.monotonic() < self._claim_pause_until:
            return 0
        claimed = 0
        for org_id, start in hints.items():
            if self._stopping.is_set():
                break
            if start.org_free:
                claimed += await self._serve_org(org_id, start)
            else:
                claimed += await self._prefetch(org_id, start.ring)
        refill, self._refill = self._refill, {}
        for org_id, ring in refill.items():
            if not self._stopping.is_set() and org_id not in hints:
                claimed += await self._prefetch(org_id, ring)
        return claimed

    async def claim_round(self) -> bool:
        """One round over every active organization. True if anything was claimed."""
        pause = self._claim_pause_until - self.monotonic()
        if pause > 0:
            await self._sleep(min(pause, self.settings.poll_seconds * 4))
            return False
        if self._busy_claims() >= self.settings.max_live_calls:
            self._cap_blocked = True
            return False
        now = self.monotonic()
        note = [o for o in self._known_orgs if now - self._noted.get(o, -1e9) >= self.settings.heartbeat_seconds]
        present, active, rounds = await self.leases.claim_context(self._known_orgs, note)
        for org_id in note:
            self._noted[org_id] = now
        self._known_orgs = sorted(active)
        self._state_present = present
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
            if self._stopping.is_set():
                break
            claimed += await self._serve_org(org_id, rounds.get(org_id))
        return claimed > 0

    async def _serve_org(self, org_id: str, start: OrgRound | None = None) -> int:
        """Fill the org's free slots round-robin over its running batches.
        ``start``: the round's start if already read (claim_context).
        Returns how many contacts were claimed."""
        if start is None:
            start = await self.leases.begin_org_round(org_id)  # notes it in LEASE_ORGS
            self._noted[org_id] = self.monotonic()
        if start.org_free is None:
            self.metrics.claims.labels("org_unconfigured").inc()
            return 0
        free = start.org_free
        claimed = 0
        remaining = start.ring
        saturated = free <= 0
        # Free slots go first to this dialer's granted reservations: a fresh
        # claim would need a StartAttempt round trip before its call.
        while free > 0 and self._wake_slot_waiter(org_id):
            free -= 1
            saturated = True
        while remaining and free > 0:
            next_pass: list[str] = []
            for i, batch_id in enumerate(remaining):
                if self._stopping.is_set() or self.monotonic() < self._claim_pause_until:
                    return claimed
                room = min(free, self.settings.max_live_calls - self._busy_claims())
                if room <= 0:
                    self._cap_blocked = self._cap_blocked or free > 0
                    return claimed
                share = -(-room // (len(remaining) - i))  # ceil: the remainder goes first in the ring
                got = await self.leases.claim_many(org_id, batch_id, share)
                if got.claims:
                    self.metrics.claims.labels("ok").inc(len(got.claims))
                    for claim in got.claims:
                        self._spawn(claim)
                    claimed += len(got.claims)
                free = got.org_free
                if got.stop == "ok":
                    next_pass.append(batch_id)  # it may have more
                    continue
                self.metrics.claims.labels(got.stop).inc()
                if got.stop == "org_unconfigured":
                    return claimed
                if got.stop in ("org_full", "batch_full"):
                    saturated = True
                if got.stop == "org_full":
                    break
            else:
                remaining = next_pass
                continue
            break
        if free <= 0 and claimed == 0:
            self.metrics.claims.labels("org_full").inc()
        if saturated or free <= 0:
            claimed += await self._prefetch(org_id, start.ring)
        return claimed

    # -- grant ahead -------------------------------------------------------------

    def _prefetch_target(self, org_id: str) -> int:
        """How many reservations to keep in the org: this dialer's recent
        call-end rate there x ``prefetch_seconds`` (0 for slow campaigns, so
        no grant sits near its dial grace waiting for a slot)."""
        if self.settings.prefetch_seconds <= 0 or self.settings.max_prefetch <= 0:
            return 0
        count, at = self._end_rate.get(org_id, (0.0, 0.0))
        rate = count * math.exp(-(self.monotonic() - at) / END_RATE_TAU_SECONDS) / END_RATE_TAU_SECONDS
        return min(self.settings.max_prefetch, int(rate * self.settings.prefetch_seconds))

    def _note_call_end(self, org_id: str) -> None:
        now = self.monotonic()
        count, at = self._end_rate.get(org_id, (0.0, now))
        self._end_rate[org_id] = (count * math.exp(-(now - at) / END_RATE_TAU_SECONDS) + 1.0, now)

    async def _prefetch(self, org_id: str, ring: list[str]) -> int:
        """Grant ahead while the org is saturated: claim contacts as
        reservations (no slot; claim.lua "reserve"), round-robin over the
        org's batches, and get them granted (coalesced StartAttempts) while
        the org's calls go on. Each then waits in _activate for a slot that
        a call's end frees, and is dialed at once: the StartAttempt round
        trip leaves the path between one call's end and the next call's
        start. Returns how many were reserved."""
        want = self._prefetch_target(org_id) - len(self._reservations.get(org_id, ()))
        claimed = 0
        remaining = list(ring)
        while remaining and want > 0:
            next_pass: list[str] = []
            for i, batch_id in enumerate(remaining):
                if self._stopping.is_set() or self.monotonic() < self._claim_pause_until or want <= 0:
                    return claimed
                if self._busy_claims() >= self.settings.max_live_calls:
                    return claimed
                share = -(-want // (len(remaining) - i))
                got = await self.leases.claim_many(org_id, batch_id, share, reserve=True)
                for claim in got.claims:
                    self._reservations.setdefault(org_id, set()).add(claim.lease_id)
                    self._spawn(claim)
                if got.claims:
                    self.metrics.claims.labels("reserved").inc(len(got.claims))
                claimed += len(got.claims)
                want -= len(got.claims)
                if got.stop == "ok":
                    next_pass.append(batch_id)
                elif got.stop in ("org_full", "org_unconfigured"):
                    return claimed
            remaining = next_pass
        return claimed

    def _end_reservation(self, claim: Claim) -> None:
        held = self._reservations.get(claim.org_id)
        if held is not None:
            held.discard(claim.lease_id)

    def _first_waiter(self, org_id: str) -> tuple[asyncio.Future, Claim] | None:
        waiters = self._slot_waiters.get(org_id)
        while waiters:
            if not waiters[0][0].done():
                return waiters[0]
            waiters.popleft()
        return None

    def _wake_slot_waiter(self, org_id: str, activated: bool = False) -> bool:
        """Hand a freed slot to the org's first waiting reservation
        (``activated``: end_call.lua already gave it the slot)."""
        first = self._first_waiter(org_id)
        if first is None:
            return False
        self._slot_waiters[org_id].popleft()
        first[0].set_result(activated)
        return True

    async def _activate(self, claim: Claim, t0: float) -> str | None:
        """Give a granted reservation its slots (activate.lua), waiting for
        a slot to free up until shortly before its dial grace runs out.
        None: activated, dial now. Else why not to dial."""
        deadline = t0 + self.settings.dial_grace_seconds * ACTIVATE_GRACE_SHARE
        woken = False
        try:
            while True:
                if self._stopping.is_set():
                    return "dialer stopping"
                status = await self.leases.activate(claim.org_id, claim.batch_id, claim.lease_id)
                if status == "ok":
                    return None
                if status not in ("org_full", "batch_full"):
                    return f"reservation {status}"
                if woken and status == "batch_full":
                    # The slot freed for us is of no use to this batch: pass
                    # it on to the next reservation in line.
                    self._wake_slot_waiter(claim.org_id)
                remaining = deadline - self.monotonic()
                if remaining <= 0:
                    return "no slot came free within the dial grace"
                fut = asyncio.get_running_loop().create_future()
                entry = (fut, claim)
                waiters = self._slot_waiters.setdefault(claim.org_id, collections.deque())
                waiters.append(entry)
                try:
                    done, _ = await asyncio.wait({fut}, timeout=min(remaining, self.settings.poll_seconds))
                    woken = bool(done)
                finally:
                    if not fut.done():
                        fut.cancel()
                        try:
                            waiters.remove(entry)
                        except ValueError:
                            pass
                if woken and fut.result():
                    return None  # end_call.lua handed us its slot
        finally:
            self._end_reservation(claim)

    def _spawn(self, claim: Claim) -> None:
        self._held[claim.lease_id] = HeldLease(claim.org_id, claim.batch_id, claim.lease_id, claim.contact_id)
        task = asyncio.create_task(self._handle_claim(claim, self.monotonic()), name=f"claim-{claim.lease_id}")
        self._tasks[claim.lease_id] = task

    # -- one claim ---------------------------------------------------------------

    async def _handle_claim(self, claim: Claim, claim_mono: float) -> None:
        try:
            await self._run_claim(claim, claim_mono)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log_event(log, "claim.crashed", logging.ERROR, org_id=claim.org_id, batch_id=claim.batch_id,
                      contact_id=claim.contact_id, lease_id=claim.lease_id, error=repr(exc), exc_info=True)
            # Leave the lease to expire: the reaper judges it (released
            # if no attempt is attached, else by the provider's word).
            self._forget(claim.lease_id)
        finally:
            self._tasks.pop(claim.lease_id, None)
            if claim.reserved:
                self._end_reservation(claim)
            if self._cap_blocked:  # this dialer's own cap stopped a round
                self._cap_blocked = False
                self._wake_full()

    async def _release(self, claim: Claim, *, requeue_due_ms: int | None = None, requeue_mode: str = "nx") -> None:
        """release.lua, retried a few times on Redis errors. For a lease
        whose call ended (slots already given back by end_call) the release
        is lazy: it rides along with the next pipeline; otherwise it frees
        slots and wakes the claim loop."""
        ended = claim.lease_id in self._ended
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
        self._forget(claim.lease_id)
        if freed and not ended:
            self._wake_full()  # slots given back: claim again now

    async def _run_claim(self, claim: Claim, claim_mono: float) -> None:
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
            self._start_failures += 1
            backoff = min(0.1 * 2 ** min(self._start_failures, 6), 5.0)
            self._claim_pause_until = max(self._claim_pause_until, self.monotonic() + backoff)
            log_event(log, "start_attempt.error", logging.WARNING, code=exc.code().name, error=exc.details(),
                      pause_seconds=backoff, **fields)
            await self._release(claim, requeue_due_ms=claim.due_ms)
            # The server may have granted the attempt before the error (a
            # restart): no call will be placed under this lease, say so.
            try:
                await self.leases.note_released_unattached(claim.org_id, claim.lease_id)
            except (RedisError, OSError) as exc2:
                log_event(log, "lease.tombstone_failed", logging.WARNING, lease_id=claim.lease_id, error=repr(exc2))
            return
        self._start_failures = 0
        decision = resp.decision
        self._metric_child(self.metrics.start_decisions,
                           D.StartAttemptDecision.Name(decision).removeprefix("START_ATTEMPT_DECISION_").lower()).inc()
        if decision != GRANTED:
            log_event(log, "start_attempt.declined", logging.DEBUG, decision=D.StartAttemptDecision.Name(decision),
                      reason=resp.reason, **fields)
            if decision == D.START_ATTEMPT_DECISION_BATCH_NOT_RUNNING:
                await self._release(claim, requeue_due_ms=claim.due_ms)
            elif decision == D.START_ATTEMPT_DECISION_DEFERRED and resp.HasField("next_attempt_time"):
                due = resp.next_attempt_time.ToMilliseconds()
                await self._release(claim, requeue_due_ms=due, requeue_mode="set")
            else:
                await self._release(claim)
            return

        attempt_id = resp.attempt_id
        trunk, trunk_json = self._trunk(resp.outbound_trunk)
        max_call_s = resp.max_call_duration_seconds or DEFAULT_MAX_CALL_MS // 1000
        started_ms = self.leases.now_ms()
        try:
            attached = await self.leases.attach(
                claim.org_id, claim.lease_id, attempt_id=attempt_id, started_ms=started_ms,
                max_call_ms=max_call_s * 1000, trunk_json=trunk_json,
            )
        except (RedisError, OSError) as exc:
            log_event(log, "lease.attach_failed", logging.WARNING, error=repr(exc), **fields)
            attached = False
        elapsed = self.monotonic() - t0
        fields.update(attempt_id=attempt_id, provider_call_id=claim.provider_call_id)
        not_dialed = None
        if self._stopping.is_set():
            not_dialed = "dialer stopping"
        elif not attached:
            not_dialed = "lease lost before dialing"
        elif elapsed > self.settings.dial_grace_seconds:
            not_dialed = f"grant arrived after {elapsed:.3f}s (> dial grace {self.settings.dial_grace_seconds}s)"
        if not_dialed is not None:
            log_event(log, "call.not_dialed", logging.INFO, reason=not_dialed, **fields)
            await self._finish(claim, attempt_id, resources_pb2.CALL_OUTCOME_NOT_DIALED, None, not_dialed)
            return

        try:
            provider = self.providers.get(trunk.kind)
        except Exception as exc:
            detail = f"no telephony provider for trunk kind {trunk.kind!r}: {exc}"
            log_event(log, "call.no_provider", logging.ERROR, error=detail, **fields)
            await self._finish(claim, attempt_id, resources_pb2.CALL_OUTCOME_CARRIER_ERROR, None, detail)
            return

        request = CallRequest(
            provider_call_id=claim.provider_call_id,
            to_number=resp.phone_number,
            from_number=resp.from_phone_number,
            trunk=trunk,
            ring_timeout_seconds=self.settings.ring_timeout_seconds,
            max_call_duration_seconds=float(max_call_s),
            organization_id=claim.org_id,
            batch_id=claim.batch_id,
            contact_id=claim.contact_id,
            agent_id=resp.agent_id,
            attempt_number=resp.attempt_number,
            variables=dict(resp.variables),
            recording_enabled=resp.recording_enabled,
            transcript_enabled=resp.transcript_enabled,
        )
        if claim.reserved:
            why = await self._activate(claim, t0)
            if why is None and self.monotonic() - t0 > self.settings.dial_grace_seconds:
                why = "activated after the dial grace"
            if why is not None:
                log_event(log, "call.not_dialed", logging.INFO, reason=why, **fields)
                await self._finish(claim, attempt_id, resources_pb2.CALL_OUTCOME_NOT_DIALED, None, why)
                return
            claim_mono = self.monotonic()  # claim-to-dial: from the slot taken
        answered: list[datetime] = []
        side_tasks: list[asyncio.Task] = []

        async def on_answer(answer_time: datetime) -> None:
            if answered:
                return
            answered.append(answer_time)
            side_tasks.append(asyncio.create_task(
                self.server.mark_answered(attempt_id, claim.fencing_token, answer_time)))

        call_task = asyncio.create_task(provider.place_call(request, on_answer), name=f"call-{claim.lease_id}")
        self._call_tasks[claim.lease_id] = call_task
        gauge = self._metric_child(self.metrics.live_calls, claim.org_id)
        gauge.inc()
        self.metrics.claim_to_dial.observe(max(0.0, self.monotonic() - claim_mono))
        log_event(log, "call.placed", logging.INFO, to=resp.phone_number, attempt_number=resp.attempt_number, **fields)
        try:
            await asyncio.wait({call_task})
        finally:
            gauge.dec()
            self._call_tasks.pop(claim.lease_id, None)

        outcome: int
        result: CallResult | None = None
        detail = ""
        over = True  # known to be over at the provider
        if call_task.cancelled():
            outcome, result, detail, over = await self._settle_cancelled(provider, request, answered)
        elif call_task.exception() is not None:
            exc = call_task.exception()
            log_event(log, "call.provider_error", logging.WARNING, error=repr(exc), **fields)
            outcome, result, detail, over = await self._settle_after_error(provider, request, started_ms, exc)
        else:
            result = call_task.result()
            outcome = outcome_to_proto(result.outcome)
        if over:
            await self._end_call(claim)
        if side_tasks:
            await asyncio.gather(*side_tasks, return_exceptions=True)
        log_event(log, "call.ended", logging.INFO, outcome=outcome_name(outcome),
                  duration_seconds=result.duration_seconds if result else 0.0, **fields)
        await self._finish(claim, attempt_id, outcome, result, detail)

    def _metric_child(self, metric: Any, label: str) -> Any:
        key = (id(metric), label)
        child = self._metric_children.get(key)
        if child is None:
            child = self._metric_children[key] = metric.labels(label)
        return child

    def _trunk(self, proto: Any) -> tuple[Any, str]:
        """TrunkSettings and its json for an OutboundTrunk, cached by the
        message's bytes (a batch's calls share one trunk)."""
        key = proto.SerializeToString(deterministic=True)
        hit = self._trunks.get(key)
        if hit is None:
            trunk = trunk_from_proto(proto)
            hit = (trunk, trunk_to_json(trunk))
            if len(self._trunks) >= 256:
                self._trunks.clear()
            self._trunks[key] = hit
        return hit

    async def _end_call(self, claim: Claim) -> None:
        """The call is over at the provider: give its slots back now
        (end_call.lua), before FinishAttempt. A failure only delays the
        slots to the release, as before this optimisation."""
        first = self._first_waiter(claim.org_id)
        then_activate = (first[1].lease_id, first[1].batch_id) if first is not None else None
        try:
            start = await self.leases.end_call(claim.org_id, claim.batch_id, claim.lease_id,
                                               then_activate=then_activate)
        except (RedisError, OSError) as exc:
            log_event(log, "lease.end_call_failed", logging.WARNING, lease_id=claim.lease_id, error=repr(exc))
            return
        held = self._held.get(claim.lease_id)
        if start is not None and held is not None:
            held.ended = True
            self._ended.add(claim.lease_id)
            self._note_call_end(claim.org_id)
            # end_call.lua may have handed the freed slot straight to the
            # first reservation in line (still at the head while its wait
            # lasts): it then dials without an activate call of its own.
            handed = start.activation == "ok" and first is not None and not first[0].done()
            if self._wake_slot_waiter(claim.org_id, activated=handed):
                # A granted reservation takes the slot at once; top the
                # reservations up in the background.
                self._refill[claim.org_id] = start.ring
            else:
                # A slot is free: refill it now, from the round start
                # end_call returned (the latest one of an org wins).
                self._hints[claim.org_id] = start
            self._wake.set()

    async def _settle_cancelled(self, provider: Any, request: CallRequest, answered: list[datetime]):
        """The call was hung up by us (hard stop). Prefer the provider's
        record. Returns (outcome, result, detail, over): ``over`` only when
        the provider confirmed the call ENDED."""
        try:
            status = await asyncio.wait_for(provider.call_status(request.provider_call_id, request.trunk), 5)
            if status.state is CallState.ENDED and status.result is not None:
                return outcome_to_proto(status.result.outcome), status.result, "hung up: dialer shutting down", True
        except Exception:
            pass
        now = datetime.fromtimestamp(self.clock(), timezone.utc)
        if answered:
            result = CallResult(
                outcome=Outcome.COMPLETED, start_time=answered[0], end_time=now, answer_time=answered[0],
                duration_seconds=max(0.0, (now - answered[0]).total_seconds()),
                detail="hung up: dialer shutting down",
            )
            return resources_pb2.CALL_OUTCOME_COMPLETED, result, result.detail, False
        return resources_pb2.CALL_OUTCOME_DIALER_LOST, None, "cancelled before answer: dialer shutting down", False

    async def _settle_after_error(self, provider: Any, request: CallRequest, started_ms: int, exc: BaseException):
        """place_call raised: learn from the provider whether a call exists.
        ENDED -> its result; RINGING/IN_PROGRESS -> wait for it; UNKNOWN ->
        no call is live: DIALER_LOST (retryable, counted). Returns
        (outcome, result, detail, over): ``over`` when the provider said
        ENDED or UNKNOWN, or it stayed unreachable past started + max call +
        ring timeout + ttl (the reaper's rule); not when a hard stop cut the
        wait short while the call may be live."""
        deadline_ms = (started_ms + int(request.max_call_duration_seconds * 1000)
                       + int(self.settings.ring_timeout_seconds * 1000) + self.settings.lease_ttl_ms)
        detail = f"provider error: {exc!r}"[:500]
        while True:
            state = None
            try:
                status = await asyncio.wait_for(provider.call_status(request.provider_call_id, request.trunk), 10)
                state = status.state
                if state is CallState.ENDED and status.result is not None:
                    return outcome_to_proto(status.result.outcome), status.result, detail, True
                if state is CallState.UNKNOWN:
                    return resources_pb2.CALL_OUTCOME_DIALER_LOST, None, detail, True
            except Exception:
                pass
            past_deadline = self.leases.now_ms() > deadline_ms
            if past_deadline or self._hard_stop_at is not None:
                over = past_deadline and state not in (CallState.RINGING, CallState.IN_PROGRESS)
                return resources_pb2.CALL_OUTCOME_DIALER_LOST, None, detail + f"; provider state {state}", over
            await asyncio.sleep(1.0)

    def _give_up_finishing(self) -> bool:
        return self._hard_stop_at is not None and self.monotonic() > self._hard_stop_at + FINISH_BUDGET_AT_STOP_SECONDS

    async def _finish(self, claim: Claim, attempt_id: str, outcome: int, result: CallResult | None, detail: str) -> None:
        req = finish_request(
            attempt_id=attempt_id, fencing_token=claim.fencing_token, outcome=outcome,
            closed_by=self.dialer_id, end_time=self.clock(), result=result, detail=detail,
        )
        answer, resp = await self.server.finish(req, give_up=self._give_up_finishing)
        if answer == "gave_up":
            log_event(log, "finish_attempt.gave_up", logging.ERROR, org_id=claim.org_id, lease_id=claim.lease_id,
                      attempt_id=attempt_id, detail="lease left for a reaper")
            self._forget(claim.lease_id)
            return
        due = None
        if answer == "ok":
            self._metric_child(self.metrics.outcomes, outcome_name(outcome)).inc()
            due = requeue_due_ms(resp, self.leases.now_ms())
        await self._release(claim, requeue_due_ms=due)

    # -- heartbeat & reaper ------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        while not await wait_event(self._heartbeat_stop, self.settings.heartbeat_seconds):
            try:
                await self.heartbeat()
            except (RedisError, OSError) as exc:
                log_event(log, "heartbeat.redis_error", logging.WARNING, error=repr(exc))
            except Exception as exc:  # pragma: no cover - keep beating whatever happens
                log_event(log, "heartbeat.error", logging.ERROR, error=repr(exc), exc_info=True)

    async def heartbeat(self) -> dict[str, bool]:
        """Renew every held lease once. Returns lease id -> held."""
        held = list(self._held.values())
        if not held:
            return {}
        results = await self.leases.renew_many((h.org_id, h.batch_id, h.lease_id) for h in held)
        await self.leases.note_lease_orgs({h.org_id for h in held})
        for h in held:
            ok = results.get(h.lease_id, False)
            if not ok and not h.lost and h.lease_id in self._held:
                h.lost = True
                self.metrics.leases_lost.inc()
                log_event(log, "lease.lost", logging.WARNING, org_id=h.org_id, batch_id=h.batch_id,
                          lease_id=h.lease_id, contact_id=h.contact_id,
                          live_call=h.lease_id in self._call_tasks)
            elif ok and h.lost:
                h.lost = False
                log_event(log, "lease.recovered", logging.INFO, org_id=h.org_id, lease_id=h.lease_id)
        return results

    async def _reaper_loop(self) -> None:
        while not self._reaper_stop.is_set():
            try:
                if await self.reaper.tick():
                    self._wake_full()  # the reaper freed slots
            except (RedisError, OSError) as exc:
                log_event(log, "reaper.redis_error", logging.WARNING, error=repr(exc))
            except Exception as exc:
                log_event(log, "reaper.error", logging.ERROR, error=repr(exc), exc_info=True)
            await wait_event(self._reaper_stop, self.settings.reaper_interval_seconds)

    # -- stopping ------------------------------------------------------------------

    async def _drain(self) -> None:
        timeout = self.settings.drain_timeout_seconds if self._drain_timeout is None else self._drain_timeout
        pending = set(self._tasks.values())
        if not pending:
            return
        log_event(log, "dialer.draining", live_calls=len(self._call_tasks), claims=len(pending),
                  drain_timeout_seconds=timeout)
        _, pending = await asyncio.wait(pending, timeout=timeout)
        if not pending:
            return
        self._hard_stop_at = self.monotonic()
        log_event(log, "dialer.hanging_up", logging.WARNING, live_calls=len(self._call_tasks))
        for task in list(self._call_tasks.values()):
            task.cancel()
        await asyncio.wait(pending, timeout=FINISH_BUDGET_AT_STOP_SECONDS + 10.0)
