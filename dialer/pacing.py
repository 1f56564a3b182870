"""When the claim loop runs, and what it refills: ``ClaimPacing``.

The claiming rounds (``dialer.rounds``) read it; the call steps
(``dialer.call``), the grant-ahead reservations (``dialer.grant_ahead``)
and the lease book (``dialer.lease_book``) nudge it: a call's end leaves a
round start to refill from (an express round), a release or a reaper tick
wants a full round, a StartAttempt error pauses claiming for a moment.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from dialer.aio import wait_event
from dialer.lease_replies import OrgRound

__all__ = ["ClaimPacing"]


class ClaimPacing:
    """The claim loop's wake-ups, pause and stop, shared by the dialer's parts."""

    def __init__(self, monotonic: Callable[[], float]) -> None:
        self.monotonic = monotonic
        #: Set once the dialer stops: no more claims.
        self.stopping = asyncio.Event()
        #: Set whenever this dialer frees a slot (or stops): the claim loop
        #: wakes at once instead of sleeping out its poll interval, so a
        #: slot idles for one claim round trip, not up to ``poll_seconds``.
        self.wake = asyncio.Event()
        #: Slots were freed that only a full round refills (``wake_full``).
        self.full_wanted = False
        #: org -> round start returned by this dialer's latest end_call in it,
        #: for the next express round (the latest one of an org wins).
        self.hints: dict[str, OrgRound] = {}
        #: org -> ring: orgs whose reservations a woken waiter drew down,
        #: to be topped up by the next express round.
        self.refill: dict[str, list[str]] = {}
        #: A claim round stopped at this dialer's own cap (max_live_calls):
        #: the next claim handler to end wakes the claim loop.
        self.cap_blocked = False
        #: No claims before this monotonic time (StartAttempt errors).
        self.pause_until = 0.0
        self._start_failures = 0

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()

    def wake_full(self) -> None:
        """Wake the claim loop for a full round (slots freed that no express
        round will refill: a release, a reaper, this dialer's cap)."""
        self.full_wanted = True
        self.wake.set()

    def claim_ended(self) -> None:
        """A claim handler ended: if this dialer's own cap held a round
        back, that round can go on now."""
        if self.cap_blocked:
            self.cap_blocked = False
            self.wake_full()

    def halted(self) -> bool:
        """No claim now: the dialer stops, or claiming is paused."""
        return self.stopping.is_set() or self.monotonic() < self.pause_until

    def start_failed(self) -> float:
        """A StartAttempt failed (the server is probably restarting): pause
        claiming with an exponential backoff of at most 1 s, so claiming
        resumes within a second of a server answering again (issue 17).
        Returns the pause (s)."""
        self._start_failures += 1
        backoff = min(0.1 * 2 ** min(self._start_failures, 6), 1.0)
        self.pause_until = max(self.pause_until, self.monotonic() + backoff)
        return backoff

    def start_answered(self) -> None:
        self._start_failures = 0

    async def sleep(self, seconds: float) -> None:
        """Sleep, waking early when stopping."""
        if seconds > 0:
            await wait_event(self.stopping, seconds)
