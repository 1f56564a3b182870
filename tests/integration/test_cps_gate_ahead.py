"""``CpsGate.before_dial`` with future cells (pace.lua's ``ahead``) against
a real Redis: a call whose trunk cell is free a little later takes it in one
round trip and dials at its instant, and a carrier push-back that pauses the
trunk while it waits voids that cell (the call waits out the throttle)."""

from __future__ import annotations

import asyncio
import time
import uuid

import redis.asyncio as aioredis

from dialer.cps import Pacer
from dialer.cps_gate import CpsGate, PaceKey, Ticket
from dialer.metrics import DialerMetrics
from dialer.script_batcher import ScriptBatcher

CPS = 20.0  # paced at 0.985 x: cells ~51 ms apart


def now_ms() -> int:
    return int(time.time() * 1000)


def gate_for(redis) -> CpsGate:
    pacer = Pacer(redis, batcher=ScriptBatcher(redis))
    return CpsGate(pacer, DialerMetrics(), now_ms=now_ms, monotonic=time.monotonic,
                   stopping=asyncio.Event(), dial_grace_seconds=1.0)


def key() -> PaceKey:
    return PaceKey(f"org_{uuid.uuid4().hex[:10]}", "+14155550100", CPS, 0.0)


def test_a_later_cell_is_taken_once_and_dialed_at_its_instant(redis_url):
    async def main():
        r = aioredis.from_url(redis_url)
        gate, k = gate_for(r), key()
        deadline = time.monotonic() + 1.0
        tickets = [Ticket(k, None) for _ in range(3)]
        t0 = now_ms()
        assert await asyncio.gather(*(gate.before_dial(k, t, deadline) for t in tickets)) == [None] * 3
        done = now_ms()
        starts = sorted(t.started_ms for t in tickets)
        interval = 1000 / (CPS * (1 - gate.headroom))
        assert all(b - a >= interval - 1 for a, b in zip(starts, starts[1:]))
        assert starts[0] >= t0 and done >= starts[-1]  # none dialed before its cell
        # One take per call (no asking again): two of them waited for a taken cell.
        assert gate.metrics.pace_waits.labels("ahead")._value.get() == 2
        assert gate.metrics.pace_waits.labels("trunk")._value.get() == 0
        await r.aclose()

    asyncio.run(main())


def test_a_push_back_while_waiting_for_the_cell_voids_it(redis_url):
    async def main():
        r = aioredis.from_url(redis_url)
        gate, k = gate_for(r), key()
        deadline = time.monotonic() + 1.0
        first = Ticket(k, None)
        assert await gate.before_dial(k, first, deadline) is None
        second = Ticket(k, None)
        waiting = asyncio.create_task(gate.before_dial(k, second, deadline))
        await asyncio.sleep(0.01)  # it holds the next cell, ~50 ms ahead, and sleeps
        res = await gate.pacer.pushback(k.org_id, k.trunk_id, now_ms(), 0.3, trunk_cps=CPS,
                                        started_ms=first.started_ms)
        assert res.throttled_until_ms > now_ms() + 200
        assert await waiting is None
        # Dialed only once the throttle was over, not at the voided cell.
        assert now_ms() >= res.throttled_until_ms
        assert second.started_ms >= res.throttled_until_ms
        await r.aclose()

    asyncio.run(main())


def test_a_call_on_a_trunk_without_push_back_state_sends_no_success(redis_url):
    """pace.lua says whether the trunk has push-back state; a call whose
    cell was taken without any sends no pace_ok after it (it would change
    nothing), while one taken after a push-back does, and raises the rate."""

    async def main():
        r = aioredis.from_url(redis_url)
        gate, k = gate_for(r), key()
        successes = []
        real_success = gate.pacer.success

        async def counting(*a, **kw):
            successes.append(a)
            return await real_success(*a, **kw)

        gate.pacer.success = counting
        deadline = time.monotonic() + 1.0
        calm = Ticket(k, None)
        assert await gate.before_dial(k, calm, deadline) is None
        assert calm.pushback_state is False
        await gate.accepted(k, calm)
        assert successes == []
        res = await gate.pacer.pushback(k.org_id, k.trunk_id, now_ms(), 0.05, trunk_cps=CPS,
                                        started_ms=calm.started_ms)
        lowered = res.effective_cps
        assert lowered is not None and lowered < CPS
        await asyncio.sleep(0.06)  # the throttle is over; the rate stays lowered
        after = Ticket(k, None)
        assert await gate.before_dial(k, after, time.monotonic() + 1.0) is None
        assert after.pushback_state is True
        await gate.accepted(k, after)
        assert len(successes) == 1
        assert (await gate.pacer.state(k.org_id, k.trunk_id)).effective_cps > lowered
        await r.aclose()

    asyncio.run(main())


def test_a_free_cell_seen_by_a_peek_stands_for_the_next_claims_a_moment(redis_url):
    """Claims right after a peek that found the trunk's cell free are
    admitted without a peek of their own; a throttled trunk is peeked
    every time (its wait is what the claim waits for)."""
    from dialer.cps_gate import PEEK_REUSE_SECONDS

    async def main():
        r = aioredis.from_url(redis_url)
        gate, k = gate_for(r), key()
        asks = []
        real_acquire = gate.pacer.acquire

        async def counting(*a, **kw):
            asks.append(kw.get("peek"))
            return await real_acquire(*a, **kw)

        gate.pacer.acquire = counting
        assert await gate._peek(k) == 0 and await gate._peek(k) == 0 and await gate._peek(k) == 0
        assert asks == [True]
        await asyncio.sleep(PEEK_REUSE_SECONDS + 0.01)
        assert await gate._peek(k) == 0 and asks == [True, True]
        await gate.pacer.pushback(k.org_id, k.trunk_id, now_ms(), 5.0, trunk_cps=CPS)
        await asyncio.sleep(PEEK_REUSE_SECONDS + 0.01)
        assert await gate._peek(k) > 4000
        assert await gate._peek(k) > 4000 and asks == [True] * 4
        await r.aclose()

    asyncio.run(main())
