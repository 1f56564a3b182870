"""The dialer process's main object: ``Dialer`` wires its parts and runs them.

``Dialer(settings, redis, channel, providers, clock=..., monotonic=...)``;
``await dialer.run()`` until ``await dialer.stop()``. docs/design.md §5 is
the contract; each part has a module of its own:

- ``dialer.rounds.ClaimRounds``: the claim loop (full rounds, express
  rounds after a call's end, serving one organization).
- ``dialer.grant_ahead.GrantAhead``: reservations granted ahead while an
  organization is saturated, and the slot handed to them at a call's end.
- ``dialer.call.CallSteps``: one claim's life as named steps (start
  attempt, attach, activate, place call, on answer, end call, finish).
- ``dialer.lease_book.LeaseBook``: the held leases and their tasks,
  heartbeat, release, drain.
- ``dialer.pacing.ClaimPacing``: the claim loop's wake-ups, pause and stop,
  which the other parts nudge.
- ``dialer.reaper.Reaper``: recovery of other dialers' expired leases, one
  tick every ``reaper_interval_seconds``.

Stop: no more claims; live calls finish (up to ``drain_timeout_seconds``),
then are hung up (provider cancellation) and reported; every lease whose
attempt is closed is released. A lease whose FinishAttempt could not be
delivered is left in Redis for a reaper.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import grpc
from redis.exceptions import RedisError

from dialer.aio import cancel_and_wait, epoch_seconds_fn, wait_event
from dialer.call import CallSteps
from dialer.cps import Pacer
from dialer.cps_gate import CpsGate
from dialer.grant_ahead import GrantAhead
from dialer.lease_book import FINISH_BUDGET_AT_STOP_SECONDS, HeldLease, LeaseBook
from dialer.lease_replies import Claim
from dialer.leases import LeaseClient
from dialer.logging import log_event
from dialer.metrics import DialerMetrics
from dialer.pacing import ClaimPacing
from dialer.reaper import Reaper
from dialer.rounds import ClaimRounds
from dialer.server_client import ServerClient
from dialer.settings import DialerSettings
from dialer.watched import WatchedBatches

__all__ = ["FINISH_BUDGET_AT_STOP_SECONDS", "Dialer", "HeldLease", "cancel_and_wait", "wait_event"]

log = logging.getLogger("dialer.worker")


class Dialer:
    """One dialer: claims contacts, places their calls, reports outcomes."""

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
        pace_now_ms: Callable[[], int] | None = None,
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.providers = providers
        self.clock = epoch_seconds_fn(clock)
        self.monotonic = monotonic
        self.metrics = metrics or DialerMetrics()
        self.dialer_id = settings.dialer_id
        self.leases = LeaseClient(redis, dialer_id=self.dialer_id, lease_ttl_ms=settings.lease_ttl_ms, clock=self.clock)
        if server is None:
            if channel is None:
                raise ValueError("a gRPC channel or a ServerClient is required")
            server = ServerClient(channel, settings.service_token, rpc_timeout=settings.rpc_timeout_seconds)
        self.server = server
        self.pacing = ClaimPacing(monotonic)
        self.book = LeaseBook(settings, self.leases, self.metrics, self.pacing, monotonic)
        self.grant_ahead = GrantAhead(settings, self.leases, self.metrics, self.pacing, self.book, monotonic,
                                      spawn=self._spawn)
        #: Calls-per-second pacing across all dialers (dialer.cps, dialer.cps_gate).
        # Pacing runs on the real wall clock (``pace_now_ms``), not on the
        # injected business clock: the carrier counts real seconds, and a
        # test's frozen FakeClock must not stall every call behind one cell.
        self.gate = CpsGate(Pacer(redis, self.leases.scripts, batcher=self.leases.batcher), self.metrics,
                            now_ms=pace_now_ms or (lambda: int(time.time() * 1000)),
                            monotonic=monotonic, stopping=self.pacing.stopping,
                            dial_grace_seconds=settings.dial_grace_seconds, headroom=settings.cps_headroom)
        self.watched = WatchedBatches(self.leases.batcher)
        self.calls = CallSteps(settings, self.leases, server, providers, self.metrics, self.pacing, self.book,
                               self.grant_ahead, clock=self.clock, monotonic=monotonic, gate=self.gate,
                               watched=self.watched)
        self.rounds = ClaimRounds(settings, self.leases, self.metrics, self.pacing, self.book, self.grant_ahead,
                                  monotonic, spawn=self._spawn)
        self.reaper = Reaper(
            self.leases,
            providers,
            server,
            dialer_id=self.dialer_id,
            lease_ttl_ms=settings.lease_ttl_ms,
            ring_timeout_seconds=settings.ring_timeout_seconds,
            dial_grace_seconds=settings.dial_grace_seconds,
            metrics=self.metrics,
            own_leases=lambda: self.book.held,
        )
        self._reaper_stop = asyncio.Event()
        self._heartbeat_stop = asyncio.Event()
        self._finished = asyncio.Event()
        self._started = False
        self._drain_timeout: float | None = None

    def _spawn(self, claim: Claim) -> None:
        """Start a claim's handler. The rounds and the grant-ahead are built
        before the call steps (which need the grant-ahead), so they call
        through here."""
        self.calls.spawn(claim)

    # -- public ------------------------------------------------------------------

    @property
    def live_calls(self) -> int:
        return len(self.book.call_tasks)

    @property
    def held_leases(self) -> dict[str, HeldLease]:
        return dict(self.book.held)

    async def run(self) -> None:
        """Claim and dial until ``stop()``; then drain and return."""
        if self._started:
            raise RuntimeError("Dialer.run() may only be called once")
        self._started = True
        log_event(log, "dialer.started", dialer_id=self.dialer_id, server=self.settings.server_addr,
                  lease_ttl_seconds=self.settings.lease_ttl_seconds)
        heartbeat = asyncio.create_task(self.book.heartbeat_loop(self._heartbeat_stop), name="dialer-heartbeat")
        reaper = asyncio.create_task(self._reaper_loop(), name="dialer-reaper")
        handoffs = asyncio.create_task(self.grant_ahead.listen_handoffs(self.redis, self._heartbeat_stop),
                                       name="dialer-handoffs")
        watched = asyncio.create_task(
            self.watched.refresh_loop(lambda: {(h.org_id, h.batch_id) for h in self.book.held.values()},
                                      self._heartbeat_stop),
            name="dialer-watched")
        try:
            await self.rounds.loop()
            self._reaper_stop.set()
            timeout = self.settings.drain_timeout_seconds if self._drain_timeout is None else self._drain_timeout
            await self.book.drain(timeout)
        finally:
            self._reaper_stop.set()
            self._heartbeat_stop.set()
            await asyncio.wait({heartbeat, reaper}, timeout=2.0)
            await cancel_and_wait([heartbeat, reaper, handoffs, watched, *self.book.claim_tasks.values(),
                                   *self.book.call_tasks.values()])
            if self.book.held:
                log_event(log, "dialer.leases_left_for_reaper", logging.WARNING, leases=sorted(self.book.held))
            self._finished.set()
            log_event(log, "dialer.stopped", dialer_id=self.dialer_id)

    async def stop(self, drain_timeout: float | None = None) -> None:
        """Stop claiming, let live calls finish (bounded), release, return
        when ``run()`` has returned."""
        if drain_timeout is not None:
            self._drain_timeout = drain_timeout
        self.pacing.stop()
        if self._started:
            await self._finished.wait()

    def request_stop(self) -> None:
        """Signal-handler friendly: begin stopping without waiting."""
        self.pacing.stop()

    async def _reaper_loop(self) -> None:
        while not self._reaper_stop.is_set():
            try:
                if await self.reaper.tick():
                    self.pacing.wake_full()  # the reaper freed slots
            except (RedisError, OSError) as exc:
                log_event(log, "reaper.redis_error", logging.WARNING, error=repr(exc))
            except Exception as exc:
                log_event(log, "reaper.error", logging.ERROR, error=repr(exc), exc_info=True)
            await wait_event(self._reaper_stop, self.settings.reaper_interval_seconds)
