"""Calls-per-second pacing in a call's life (issue 13): ``CpsGate``.

``dialer.cps.Pacer`` enforces the rates in Redis for all dialers together;
this module decides *when* in a claim's life to ask it, so that the limit
holds at the carrier and a contact waiting only for CPS spends nothing.

Where pacing sits (``dialer.call``)::

    claim ─► before_grant ─► StartAttempt ─► attach ─► [activate] ─► before_dial ─► place_call
             (slot-free wait,                                        (take the cell,
              no attempt yet)                                         then dial at once)

* **The cell is taken right before the call is placed** (``before_dial``,
  ``pace.lua`` in take mode), after StartAttempt, attach and, for a
  reservation, activate. A cell taken earlier would be spent a variable
  time before the carrier sees the call (a StartAttempt round trip, a slot
  wait), and starts spaced ``1/CPS`` apart at the pacer could bunch up at
  the carrier. The trunk's rate and id are only known from the grant
  anyway (StartAttemptResponse's trunk).
* **But waiting happens before the grant** (``before_grant``, ``peek``): a
  granted attempt must be dialed within the dial grace (1 s; the pause
  protocol relies on it, docs/design.md §5), so a claim first waits,
  holding only its claim, until its trunk's next free cell is less than
  ``lead`` away (a quarter of the dial grace) and until fewer than ``K``
  claims of this dialer are granted and waiting for that trunk (``K`` ≈
  rate × lead, at least 1). The claim keeps its place (its lease is held
  and heartbeated, the contact in no queue), no attempt exists yet. A
  throttled trunk (carrier push-back) is waited out here.
* After the grant the residual wait is short (the cells other dialers take
  meanwhile). If it would pass the dial grace the attempt is finished as
  NOT_DIALED, which the server undoes (attempt deleted, the contact's count
  back, re-queued): nothing is spent.
* A **reservation** (grant ahead, ``claim.lua`` reserve mode) holds no slot
  until ``activate``; it waits for CPS in ``before_grant`` like any claim,
  slot-free, and takes its cell after activate, so it holds a slot only
  for the residual wait (bounded by the dial grace).
* The trunk's key is learned per batch from the first grant; the first
  claim of a batch this dialer has not granted yet goes first alone, the
  others wait for it (``_learning``), so a new batch does not grant 50
  attempts that its trunk cannot start within the grace.

Headroom and grid. The dialer paces at ``(1 - CPS_HEADROOM)`` × the
configured rate (1.5 %): the carrier sees each start after a network and
scheduling delay that varies by a few ms, so starts spaced exactly ``1/CPS``
could put ``CPS + 1`` of them in some one-second window at the carrier.
With 1.5 % the ``N + 1``-th start is ``~15 ms`` (at 10 CPS) later than a
full second after the first, plus the ms the script's rounding and late
wake-ups add per interval (the achieved rate is ~1 % under the paced one:
0.971 × configured measured with 2 %), which absorbs that jitter. And a waiter that wakes
a little late (an event loop is not a real-time clock) asks with the
instant it meant to wake (at most ``GRID_SLACK_MS`` earlier than now), so
lateness does not push the trunk's schedule back call after call: the
schedule stays on its grid and the achieved rate stays at the paced one.

Carrier push-back (``after_call``): a refused call whose answer
``classify_response`` calls THROTTLE → ``Pacer.pushback`` (pause for
Retry-After or an adaptive back-off, lower the effective rate); any other
answer → ``Pacer.success``. The caller finishes a push-back as NOT_DIALED.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from dialer.aio import wait_event
from dialer.cps import (
    PaceDecision,
    Pacer,
    PushbackKind,
    PushbackResult,
    classify_response,
    parse_retry_after,
)
from dialer.logging import log_event
from dialer.providers.base import CallResult

__all__ = ["CPS_HEADROOM", "CpsGate", "PaceKey", "Ticket"]

log = logging.getLogger("dialer.cps")

#: Share of the configured rate kept free for timing jitter (see above).
CPS_HEADROOM = 0.015
#: A waiter up to this late asks with the instant it meant to wake.
GRID_SLACK_MS = 15
#: How far ahead ``before_dial`` takes a trunk's next free cell (ms): a
#: call waits for its own cell rather than asking again (pace.lua ARGV[9]).
MAX_AHEAD_MS = 250
#: A peek that found the trunk's cell free stands for this long (s) for the
#: next claims of that trunk (no peek of their own): at hundreds of calls a
#: second the answer would be the same, and the gate's K (granted waiters
#: per trunk, about rate x lead) still bounds what waits after the grant.
PEEK_REUSE_SECONDS = 0.02
#: A call that waited longer than this for its future cell re-reads the
#: trunk's push-back pause before it dials (µs).
RECHECK_PAUSE_AFTER_US = 10_000
#: ... asked this long before the cell's instant (s), so the answer is back.
RECHECK_LEAD_SECONDS = 0.005
#: The pre-grant wait ends this share of the dial grace before the cell.
LEAD_SHARE = 0.25
#: How long a claim waits for the first grant of its batch before going on.
LEARN_WAIT_SECONDS = 2.0
#: Pause between tries when Redis fails (the gate fails closed).
REDIS_RETRY_SECONDS = 0.2
#: Learned batch keys kept (cleared past this).
MAX_KEYS = 4096


@dataclass(frozen=True)
class PaceKey:
    """What a call is paced by: its organization, its trunk (the caller
    number, stable and unique within the organization) and their rates."""

    org_id: str
    trunk_id: str
    trunk_cps: float
    #: 0 = no organization-wide cap.
    org_cps: float = 0.0

    def paced(self, headroom: float) -> tuple[float, float | None]:
        """The rates the pacer is asked for: configured × (1 - headroom)."""
        factor = 1.0 - headroom
        return self.trunk_cps * factor, (self.org_cps * factor if self.org_cps > 0 else None)


class Ticket:
    """A claim's place at its trunk's gate: released when the call is
    placed or the claim's life ends (``CallSteps.handle``)."""

    __slots__ = ("_release", "accepted", "key", "pushback_state", "started_ms")

    def __init__(self, key: PaceKey | None, release: Callable[[], None] | None) -> None:
        self.key = key
        self._release = release
        #: Epoch ms when ``before_dial`` took the call's cell (pushback's started_ms).
        self.started_ms: int | None = None
        #: ``Pacer.success`` was sent for this call (once per call).
        self.accepted = False
        #: The trunk had push-back state when the call's cell was taken
        #: (unknown: True). Without it no success is sent: pace_ok.lua would
        #: find nothing to end or raise, or only a push-back after this
        #: call's start, which a success of this call never counts against.
        self.pushback_state = True

    def release(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()


class CpsGate:
    """Per-dialer side of CPS pacing: where and how long a claim waits."""

    def __init__(
        self,
        pacer: Pacer,
        metrics: Any,
        *,
        now_ms: Callable[[], int],
        monotonic: Callable[[], float],
        stopping: asyncio.Event,
        dial_grace_seconds: float,
        headroom: float = CPS_HEADROOM,
    ) -> None:
        self.pacer = pacer
        self.metrics = metrics
        self.now_ms = now_ms
        self.monotonic = monotonic
        self.stopping = stopping
        self.headroom = headroom
        self.lead_ms = max(1, int(dial_grace_seconds * 1000 * LEAD_SHARE))
        #: batch id -> the key its last grant paced by.
        self.keys: dict[str, PaceKey] = {}
        #: (org, trunk) -> monotonic time a peek last found its cell free.
        self._free_seen: dict[tuple[str, str], float] = {}
        #: (org, trunk) -> semaphore of K granted waiters, and its K.
        self._gates: dict[tuple[str, str], tuple[asyncio.Semaphore, int]] = {}
        #: batch id -> set when its first grant taught us its key.
        self._learning: dict[str, asyncio.Event] = {}

    # -- before StartAttempt -------------------------------------------------------

    async def before_grant(self, org_id: str, batch_id: str, *, lazy: bool = False) -> Ticket | None:
        """Wait, holding only the claim, until a grant could be dialed
        within the dial grace. None: the dialer is stopping (release the
        claim, re-queued). ``lazy``: a reservation (no slot waits on it):
        its peek rides with the next Redis round trip."""
        while True:
            if self.stopping.is_set():
                return None
            key = self.keys.get(batch_id)
            if key is not None and key.org_id == org_id:
                return await self._admit(key, lazy)
            learning = self._learning.get(batch_id)
            if learning is None:
                event = self._learning[batch_id] = asyncio.Event()
                return Ticket(None, lambda event=event: self._learned(batch_id, event))
            await wait_event(learning, LEARN_WAIT_SECONDS)
            if not learning.is_set():
                return Ticket(None, None)  # the first grant is slow: go on unpaced before the grant

    def _learned(self, batch_id: str, event: asyncio.Event) -> None:
        event.set()
        if self._learning.get(batch_id) is event:
            del self._learning[batch_id]

    def learn(self, batch_id: str, key: PaceKey) -> None:
        """A grant told the batch's trunk and rates."""
        if self.keys.get(batch_id) != key:
            if len(self.keys) >= MAX_KEYS:
                self.keys.clear()
            self.keys[batch_id] = key
            self._set_rate(key, key.paced(self.headroom)[0])
        event = self._learning.get(batch_id)
        if event is not None:
            self._learned(batch_id, event)

    def _gate(self, key: PaceKey) -> asyncio.Semaphore:
        trunk_rate, org_rate = key.paced(self.headroom)
        rate = min(trunk_rate, org_rate) if org_rate else trunk_rate
        k = max(1, math.ceil(rate * self.lead_ms / 1000))
        entry = self._gates.get((key.org_id, key.trunk_id))
        if entry is None or entry[1] != k:
            entry = self._gates[(key.org_id, key.trunk_id)] = (asyncio.Semaphore(k), k)
        return entry[0]

    async def _admit(self, key: PaceKey, lazy: bool = False) -> Ticket | None:
        sem = self._gate(key)
        if sem.locked():  # K granted waiters already: wait for a place (or the stop)
            got = asyncio.ensure_future(sem.acquire())
            stop = asyncio.ensure_future(self.stopping.wait())
            try:
                await asyncio.wait({got, stop}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stop.cancel()
                if not got.done():
                    got.cancel()
            if got.cancelled() or not got.done():
                return None
        else:  # a free place: taken at once, without two tasks per call
            await sem.acquire()
        ticket = Ticket(key, sem.release)
        try:
            while True:
                if self.stopping.is_set():
                    ticket.release()
                    return None
                wait_ms = await self._peek(key, lazy)
                if wait_ms <= self.lead_ms:
                    return ticket
                await wait_event(self.stopping, (wait_ms - self.lead_ms) / 1000)
        except BaseException:
            ticket.release()
            raise

    async def _peek(self, key: PaceKey, lazy: bool = False) -> int:
        slot = (key.org_id, key.trunk_id)
        free_at = self._free_seen.get(slot)
        if free_at is not None and self.monotonic() - free_at < PEEK_REUSE_SECONDS:
            return 0  # a peek a moment ago found a free cell: the gate's K bounds the rest
        trunk_rate, org_rate = key.paced(self.headroom)
        try:
            d = await self.pacer.acquire(key.org_id, key.trunk_id, trunk_rate, org_rate, self.now_ms(), peek=True,
                                         lazy=lazy)
        except (RedisError, OSError) as exc:
            log_event(log, "pace.redis_error", logging.WARNING, error=repr(exc))
            return self.lead_ms + int(REDIS_RETRY_SECONDS * 1000)
        if d.go:
            if len(self._free_seen) >= MAX_KEYS:
                self._free_seen.clear()
            self._free_seen[slot] = self.monotonic()
            return 0
        self._free_seen.pop(slot, None)
        return d.wait_ms

    # -- right before the call is placed -------------------------------------------

    def ahead_ms(self, deadline: float) -> int:
        """How far ahead a call dialed by ``deadline`` (monotonic) may
        take its cell."""
        return max(0, min(MAX_AHEAD_MS, int((deadline - self.monotonic()) * 1000)))

    def take_args(self, key: PaceKey, deadline: float) -> tuple[str, list[Any]]:
        """(trunk id, pace.lua ARGV) to take the call's cell now, for
        end_call.lua to take it with the slot it hands the call
        (``LeaseClient.end_call(then_pace=...)``)."""
        trunk_rate, org_rate = key.paced(self.headroom)
        return key.trunk_id, self.pacer.pace_args(trunk_rate, org_rate, self.now_ms(),
                                                  ahead_ms=self.ahead_ms(deadline))

    async def before_dial(self, key: PaceKey, ticket: Ticket, deadline: float,
                          taken: tuple[PaceDecision, int, float] | None = None) -> str | None:
        """Take the call's cell (trunk and org buckets, atomically), waiting
        for it until ``deadline`` (monotonic). None: dial now (``ticket.
        started_ms`` is set). Else why not to dial (the caller finishes the
        attempt as NOT_DIALED: nothing spent). ``taken``: pace.lua's answer
        already got (by end_call.lua with the call's slot), the instant it
        was asked for (epoch ms) and the monotonic time then; no round trip
        of its own then.

        A cell taken for a later instant is dialed at that instant on the
        monotonic clock, not a delay after the answer arrived: the round
        trip's variable length would otherwise move each start off the
        trunk's grid (at 10 CPS the 1.5 % headroom is 15 ms a second)."""
        trunk_rate, org_rate = key.paced(self.headroom)
        target: int | None = None
        while True:
            if self.stopping.is_set():
                return "dialer stopping"
            d: PaceDecision | None
            if taken is not None:
                (d, at, at_mono), taken = taken, None
            else:
                now = self.now_ms()
                # Woken a little late: ask with the instant we meant to wake,
                # so the trunk's schedule stays on its grid (module docstring).
                at = target if target is not None and target <= now <= target + GRID_SLACK_MS else now
                at_mono = self.monotonic() - (now - at) / 1000
                # A cell free before the deadline is taken for its instant in
                # the same round trip; the call then waits for it here.
                try:
                    d = await self.pacer.acquire(key.org_id, key.trunk_id, trunk_rate, org_rate, at,
                                                 ahead_ms=self.ahead_ms(deadline))
                except (RedisError, OSError) as exc:
                    log_event(log, "pace.redis_error", logging.WARNING, error=repr(exc))
                    d = None
            if d is not None and d.go:
                if d.delay_us > 0:  # the cell is ours: dial at its instant
                    self.metrics.pace_waits.labels("ahead").inc()
                    due = at_mono + d.delay_us / 1_000_000
                    if d.delay_us > RECHECK_PAUSE_AFTER_US:
                        # A carrier push-back meanwhile (any dialer's) paused
                        # the trunk: the cell is void, wait out the throttle.
                        # Asked a little before the cell, so the answer is
                        # back by then; a wait of a few ms adds no more than
                        # the race every start has with a push-back in flight.
                        await asyncio.sleep(max(0.0, due - RECHECK_LEAD_SECONDS - self.monotonic()))
                        paused = asyncio.ensure_future(self._paused_meanwhile(key))
                        await asyncio.sleep(max(0.0, due - self.monotonic()))
                        if await paused:
                            target = None
                            continue
                    else:
                        await asyncio.sleep(max(0.0, due - self.monotonic()))
                ticket.started_ms = at + d.delay_us // 1000
                ticket.pushback_state = d.pushback_state
                self._set_throttled(key, False)
                return None
            wait_ms = int(REDIS_RETRY_SECONDS * 1000) if d is None else d.wait_ms
            if d is not None:
                self.metrics.pace_waits.labels(d.limited_by or "unknown").inc()
                if d.limited_by == "throttled":
                    self._set_throttled(key, True)
            if self.monotonic() + wait_ms / 1000 > deadline:
                why = "redis unavailable" if d is None else f"calls per second ({d.limited_by})"
                return f"{why}: next start in {wait_ms} ms, after the dial grace"
            target = at + wait_ms
            await wait_event(self.stopping, wait_ms / 1000)

    async def _paused_meanwhile(self, key: PaceKey) -> bool:
        """Whether the trunk is paused now (``pushback.lua``'s ``until``).
        Redis failing: not known to be paused, the call goes (as a call
        whose cell was free at once would have)."""
        try:
            until = await self.pacer.throttled_until(key.org_id, key.trunk_id)
        except (RedisError, OSError) as exc:
            log_event(log, "pace.redis_error", logging.WARNING, error=repr(exc))
            return False
        return until is not None and until > self.now_ms()

    # -- after the carrier's first answer ------------------------------------------

    @staticmethod
    def is_pushback(result: CallResult | None) -> bool:
        """The carrier refused the call to slow us down (429/503-like): see
        ``dialer.pushback``."""
        return (result is not None and result.refused
                and classify_response(result.sip_code, result.reason) is PushbackKind.THROTTLE)

    async def after_call(self, key: PaceKey, ticket: Ticket, result: CallResult | None) -> PushbackResult | None:
        """Tell the pacer how the carrier took the call: a push-back
        (returned: finish the attempt as NOT_DIALED, no attempt spent, the
        breaker never sees it) or an accepted call. Redis failing: logged,
        and a push-back is still returned as one (never counted as a call)."""
        if result is None:
            return None
        now = self.now_ms()
        pushback = self.is_pushback(result)
        trunk_rate, _ = key.paced(self.headroom)
        try:
            if pushback:
                res = await self.pacer.pushback(
                    key.org_id, key.trunk_id, now, parse_retry_after(result.retry_after, now),
                    trunk_cps=trunk_rate, started_ms=ticket.started_ms,
                )
                self.metrics.pushbacks.labels("counted" if res.counted else "same_event").inc()
                self._set_throttled(key, res.throttled_until_ms > now)
                self._set_rate(key, res.effective_cps if res.effective_cps is not None else trunk_rate)
                log_event(log, "pace.pushback", logging.WARNING, org_id=key.org_id, trunk_id=key.trunk_id,
                          status=result.sip_code, reason=result.reason, retry_after=result.retry_after,
                          counted=res.counted, throttled_until_ms=res.throttled_until_ms,
                          effective_cps=res.effective_cps)
                return res
        except (RedisError, OSError) as exc:
            log_event(log, "pace.redis_error", logging.WARNING, error=repr(exc))
            if pushback:
                return PushbackResult(False, now, None, 0)
            return None
        await self.accepted(key, ticket)
        return None

    async def accepted(self, key: PaceKey, ticket: Ticket) -> None:
        """The carrier took the call (answered, or any answer that is not
        push-back): ``Pacer.success``, once per call."""
        if ticket.accepted or ticket.started_ms is None:
            return
        ticket.accepted = True
        if not ticket.pushback_state:
            return
        trunk_rate, _ = key.paced(self.headroom)
        try:
            if await self.pacer.success(key.org_id, key.trunk_id, self.now_ms(), trunk_cps=trunk_rate,
                                        started_ms=ticket.started_ms):
                state = await self.pacer.state(key.org_id, key.trunk_id)
                self._set_rate(key, state.effective(trunk_rate))
        except (RedisError, OSError) as exc:
            log_event(log, "pace.redis_error", logging.WARNING, error=repr(exc))

    # -- metrics -------------------------------------------------------------------

    def _set_throttled(self, key: PaceKey, throttled: bool) -> None:
        self.metrics.trunk_throttled.labels(key.org_id, key.trunk_id).set(1 if throttled else 0)

    def _set_rate(self, key: PaceKey, rate: float) -> None:
        self.metrics.trunk_effective_cps.labels(key.org_id, key.trunk_id).set(rate)
