"""Grant ahead: reservations that make the next call start at a call's end.

While an organization is saturated (a round found no free slot, or its
batches full), the dialer keeps about (its call-end rate there x
``prefetch_seconds``, at most ``max_prefetch``) contacts claimed as
*reservations*: claim.lua in "reserve" mode, leases that hold no slot (the
org's reserved zset). Each is granted by StartAttempt like any claim (its
request coalesced with the others ahead), then waits for a slot: a call's
end (``dialer.call``) and any free slot a round finds are handed to the
first waiting reservation, which runs activate.lua (both limits checked,
the lease moved into the slot zsets) and is dialed at once. No slot within
half the dial grace, a paused or cancelled batch, or a lost lease:
NOT_DIALED. A call is never placed without activation, so the limits count
every call that can be live; the StartAttempt round trip is simply no
longer between one call's end and the next call's start (docs/design.md
§5, the lease life; §8).

The line of granted reservations is the org's, not this dialer's: a call
end whose own dialer has no reservation waiting hands its slot to the
oldest waiting one of any dialer (end_call.lua, the org's waiting zset),
and that dialer hears of it on its hand-off channel (``listen_handoffs``)
and dials at once. With N dialers a freed slot would otherwise often go
to a fresh claim (a StartAttempt round trip with the slot idle) while
another dialer's granted reservations wait (docs/leases.md).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisClusterException, RedisError

from dialer.lease_book import LeaseBook
from contract import keys
from dialer.lease_replies import Activation, Claim, ClaimStop
from dialer.leases import LeaseClient
from dialer.logging import log_event
from dialer.metrics import DialerMetrics
from dialer.pacing import ClaimPacing
from dialer.settings import DialerSettings

__all__ = ["ACTIVATE_GRACE_SHARE", "END_RATE_TAU_SECONDS", "HAND_OFF_SCAN", "GrantAhead"]

log = logging.getLogger("dialer.worker")

#: Time constant of the call-end rate that sizes the grant-ahead pool.
END_RATE_TAU_SECONDS = 1.0
#: A reservation waits for a slot at most this share of the dial grace
#: after its StartAttempt was sent; then it is returned as NOT_DIALED.
ACTIVATE_GRACE_SHARE = 0.5
#: Reserve this many times StartAttempt's recent latency ahead (at least
#: ``prefetch_seconds``): the pool must outlast one refill round trip.
LEAD_FACTOR = 2.0
#: ... but at most this share of a reservation's wait for its slot.
LEAD_SHARE_OF_WAIT = 0.6
#: A waiting reservation's own activate.lua poll (``waiter_poll_seconds``).
WAITER_POLL_SECONDS = 0.2
#: Weight of the newest sample in StartAttempt's moving-average latency.
GRANT_LATENCY_WEIGHT = 0.1
#: How many of the org's waiting reservations a call end tries (oldest
#: first) when its own dialer has none waiting; those of a full batch are
#: skipped, so a few batches at their limit do not keep the slot idle.
HAND_OFF_SCAN = 8

#: A reservation waiting for a slot: the future its waker resolves (True:
#: end_call.lua already gave it the slot) and its claim.
SlotWaiter = tuple["asyncio.Future[bool]", Claim]


class GrantAhead:
    """This dialer's reservations, per organization, and the slot waiters."""

    def __init__(
        self,
        settings: DialerSettings,
        leases: LeaseClient,
        metrics: DialerMetrics,
        pacing: ClaimPacing,
        book: LeaseBook,
        monotonic: Callable[[], float],
        spawn: Callable[[Claim], None],
    ) -> None:
        self.settings = settings
        self.leases = leases
        self.metrics = metrics
        self.pacing = pacing
        self.book = book
        self.monotonic = monotonic
        #: Starts a claim's handler (``dialer.call.CallSteps.spawn``).
        self.spawn = spawn
        #: org -> lease ids of this dialer's reservations not yet given a slot.
        self.reservations: dict[str, set[str]] = {}
        #: org -> reservations waiting for a slot (FIFO), woken one by one as
        #: this dialer's calls end.
        self.slot_waiters: dict[str, collections.deque[SlotWaiter]] = {}
        #: org -> (decayed count of call ends, monotonic time) for the rate.
        self._end_rate: dict[str, tuple[float, float]] = {}
        #: Moving average of a reservation's StartAttempt latency (s).
        self._grant_latency = 0.0
        #: lease id -> the future its waiting reservation awaits (a hand-off
        #: from another dialer's call end resolves it by lease id).
        self._waiting: dict[str, asyncio.Future[bool]] = {}
        #: Reservations handed a slot while not awaiting (between two of
        #: their activate.lua calls): they dial without waiting.
        self._handed_early: set[str] = set()

    # -- how many --------------------------------------------------------------------

    def lead_seconds(self) -> float:
        """How far ahead to reserve: ``prefetch_seconds``, or longer while
        StartAttempt answers reservations slower (``LEAD_FACTOR`` x its
        recent latency: a pool sized for a quick server runs dry on a busy
        one, and each call end that finds it empty idles its slot for a
        fresh claim's round trip). At most ``LEAD_SHARE_OF_WAIT`` of the
        time a reservation may wait for its slot, so a full pool's last
        reservation still gets one before its dial grace."""
        lead = max(self.settings.prefetch_seconds, LEAD_FACTOR * self._grant_latency)
        return min(lead, LEAD_SHARE_OF_WAIT * ACTIVATE_GRACE_SHARE * self.settings.dial_grace_seconds)

    def waiter_poll_seconds(self) -> float:
        """How often a waiting reservation asks activate.lua itself. Slots
        reach it through its future (this dialer's call ends and claim
        rounds, another dialer's hand-off message), so the poll only covers
        a lost hand-off message; polling at the claim loop's pace would cost
        a script call per reservation every ``poll_seconds``."""
        return max(self.settings.poll_seconds, WAITER_POLL_SECONDS)

    def note_grant_latency(self, seconds: float) -> None:
        """A reservation's StartAttempt took ``seconds`` (moving average)."""
        self._grant_latency += GRANT_LATENCY_WEIGHT * (seconds - self._grant_latency)

    def target(self, org_id: str) -> int:
        """How many reservations to keep in the org: this dialer's recent
        call-end rate there x ``lead_seconds`` (0 for slow campaigns, so no
        grant sits near its dial grace waiting for a slot)."""
        if self.settings.prefetch_seconds <= 0 or self.settings.max_prefetch <= 0:
            return 0
        count, at = self._end_rate.get(org_id, (0.0, 0.0))
        rate = count * math.exp(-(self.monotonic() - at) / END_RATE_TAU_SECONDS) / END_RATE_TAU_SECONDS
        return min(self.settings.max_prefetch, int(rate * self.lead_seconds()))

    def note_call_end(self, org_id: str) -> None:
        now = self.monotonic()
        count, at = self._end_rate.get(org_id, (0.0, now))
        self._end_rate[org_id] = (count * math.exp(-(now - at) / END_RATE_TAU_SECONDS) + 1.0, now)

    # -- reserving -------------------------------------------------------------------

    async def prefetch(self, org_id: str, ring: list[str]) -> int:
        """Grant ahead while the org is saturated: claim contacts as
        reservations (no slot; claim.lua "reserve"), round-robin over the
        org's batches, and get them granted (coalesced StartAttempts) while
        the org's calls go on. Each then waits in ``activate`` for a slot
        that a call's end frees, and is dialed at once. Returns how many
        were reserved."""
        want = self.target(org_id) - len(self.reservations.get(org_id, ()))
        claimed = 0
        remaining = list(ring)
        while remaining and want > 0:
            next_pass: list[str] = []
            for i, batch_id in enumerate(remaining):
                if self.pacing.halted() or want <= 0:
                    return claimed
                if self.book.busy_claims() >= self.settings.max_live_calls:
                    return claimed
                share = -(-want // (len(remaining) - i))
                got = await self.leases.claim_many(org_id, batch_id, share, reserve=True)
                for claim in got.claims:
                    self.reservations.setdefault(org_id, set()).add(claim.lease_id)
                    self.spawn(claim)
                if got.claims:
                    self.metrics.claims.labels("reserved").inc(len(got.claims))
                claimed += len(got.claims)
                want -= len(got.claims)
                if got.stop is ClaimStop.OK:
                    next_pass.append(batch_id)
                elif got.stop in (ClaimStop.ORG_FULL, ClaimStop.ORG_UNCONFIGURED, ClaimStop.NO_MARKER):
                    return claimed
            remaining = next_pass
        return claimed

    def end_reservation(self, claim: Claim) -> None:
        held = self.reservations.get(claim.org_id)
        if held is not None:
            held.discard(claim.lease_id)

    # -- handing slots over ----------------------------------------------------------

    def first_waiter(self, org_id: str) -> SlotWaiter | None:
        waiters = self.slot_waiters.get(org_id)
        while waiters:
            if not waiters[0][0].done():
                return waiters[0]
            waiters.popleft()
        return None

    def wake_slot_waiter(self, org_id: str, activated: bool = False) -> bool:
        """Hand a freed slot to the org's first waiting reservation
        (``activated``: end_call.lua already gave it the slot)."""
        first = self.first_waiter(org_id)
        if first is None:
            return False
        self.slot_waiters[org_id].popleft()
        first[0].set_result(activated)
        return True

    def take_hand_off(self, lease_id: str) -> bool:
        """An end_call.lua (another dialer's, or this one's for a reservation
        not first in line) gave this reservation its slots: dial it now.
        False when it is not one of this dialer's waiting reservations (a
        late or repeated message)."""
        fut = self._waiting.get(lease_id)
        if fut is not None:
            if fut.done():
                return False
            fut.set_result(True)
            return True
        if any(lease_id in held for held in self.reservations.values()):
            self._handed_early.add(lease_id)
            return True
        return False

    async def listen_handoffs(self, redis: Any, stop: asyncio.Event) -> None:
        """Receive this dialer's hand-offs (``keys.dialer_handoffs``) until
        ``stop``. A message lost while reconnecting costs latency only: the
        reservation's next activate.lua poll answers "ok"."""
        channel = keys.DIALER_HANDOFFS + self.settings.dialer_id
        errors = 0
        while not stop.is_set():
            pubsub = redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(channel)
                errors = 0
                while not stop.is_set():
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
                    if message is None or message.get("type") != "message":
                        continue
                    data = message["data"]
                    self.take_hand_off(data.decode() if isinstance(data, bytes) else str(data))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the poll still activates; keep listening
                errors += 1
                log_event(log, "handoff.listen_error", logging.WARNING, error=repr(exc))
                await asyncio.sleep(min(0.05 * 2**errors, 2.0))
            finally:
                try:
                    await asyncio.shield(pubsub.aclose())
                except Exception:  # noqa: BLE001 - best effort
                    pass

    async def activate(self, claim: Claim, t0: float) -> str | None:
        """Give a granted reservation its slots (activate.lua), waiting for
        a slot to free up until shortly before its dial grace runs out.
        None: activated, dial now. Else why not to dial."""
        deadline = t0 + self.settings.dial_grace_seconds * ACTIVATE_GRACE_SHARE
        woken = False
        errors = 0
        try:
            while True:
                if self.pacing.stopping.is_set():
                    return "dialer stopping"
                # Reservations of this dialer already wait in the org: it is
                # full, and this one will wait behind them; its (first or
                # poll) activate.lua rides with the next round trip.
                lazy = not woken and bool(self.slot_waiters.get(claim.org_id))
                try:
                    status = await self.leases.activate(claim.org_id, claim.batch_id, claim.lease_id, lazy=lazy)
                except (RedisError, RedisClusterException, OSError) as exc:
                    # The org's master may be failing over: try again after
                    # a short pause while the dial grace lasts; after it the
                    # attempt is finished as NOT_DIALED (never left open).
                    errors += 1
                    remaining = deadline - self.monotonic()
                    if remaining <= 0:
                        return f"activation failed: {exc!r}"
                    await asyncio.sleep(min(remaining, 0.05 * 2 ** min(errors, 5)))
                    continue
                if status is Activation.OK:
                    return None
                if not status.waits:
                    return f"reservation {status}"
                if woken and status is Activation.BATCH_FULL:
                    # The slot freed for us is of no use to this batch: pass
                    # it on to the next reservation in line.
                    self.wake_slot_waiter(claim.org_id)
                if claim.lease_id in self._handed_early:
                    return None  # another dialer's end_call.lua activated it meanwhile
                remaining = deadline - self.monotonic()
                if remaining <= 0:
                    return "no slot came free within the dial grace"
                fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
                entry = (fut, claim)
                waiters = self.slot_waiters.setdefault(claim.org_id, collections.deque())
                waiters.append(entry)
                self._waiting[claim.lease_id] = fut
                try:
                    done, _ = await asyncio.wait({fut}, timeout=min(remaining, self.waiter_poll_seconds()))
                    woken = bool(done)
                finally:
                    self._waiting.pop(claim.lease_id, None)
                    if not fut.done():
                        fut.cancel()
                        try:
                            waiters.remove(entry)
                        except ValueError:
                            pass
                if woken and fut.result():
                    return None  # an end_call.lua handed us its slot
        finally:
            self._handed_early.discard(claim.lease_id)
            self.end_reservation(claim)
