"""Every Lua script of ``contract/scripts.py`` on a real Redis Cluster (three
masters, three replicas on loopback: ``redis_cluster`` of
tests/integration/conftest.py), through redis-py's
``redis.asyncio.cluster.RedisCluster``, with the real keys of
``contract/keys.py`` for organizations whose hash tags land on different
masters (docs/redis.md).

What this proves:

- every key of an organization hashes to one slot, and every script call
  passes keys of that one slot (checked per call here, and by the cluster:
  a CROSSSLOT or non-local key access would fail the call);
- a scenario that goes through every script (claim -> attach -> end_call ->
  release, reservations, renew, rebuild, pacing, locks...) returns exactly
  what it returns on a single Redis 7 (``redis7_url``), org by org;
- the server's ``RedisState`` works on the cluster: its pipelines (no
  scripts in them on a cluster), and sharded pub/sub for WatchBatch.

The dialer's calls go through its real ``ScriptBatcher`` on both sides of
the comparison (on the cluster it splits each round trip per master:
``RecordingBatcher`` below only notes each script call's keys). The dialer
itself on the cluster: ``test_redis_cluster_dialer.py``.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import uuid
from collections.abc import Sequence
from datetime import UTC
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.cluster import key_slot

from contract import keys
from contract.scripts import SCRIPT_NAMES, Scripts
from dialer.cps import Pacer
from dialer.leases import Claim, LeaseClient
from dialer.script_batcher import ScriptBatcher
from server.adapters.redis.state import (
    BatchSnapshot,
    InflightLease,
    OrgSnapshot,
    RedisState,
)
from tests.support.helpers import Clock, run

T0 = 1_700_000_000_000


def slot(key: str) -> int:
    return key_slot(key.encode())


async def cluster_client(cluster: Any) -> RedisCluster:
    r = RedisCluster.from_url(cluster.url)
    await r.initialize()
    return r


def orgs_on_distinct_masters(r: RedisCluster, n: int = 3) -> list[str]:
    """``n`` fresh organization ids whose slots are served by ``n`` different
    masters."""
    found: dict[str, str] = {}
    for _ in range(10_000):
        org_id = f"org_{uuid.uuid4().hex[:10]}"
        node = r.get_node_from_key(keys.org_config(org_id))
        if node.name not in found:
            found[node.name] = org_id
            if len(found) == n:
                return list(found.values())
    raise AssertionError(f"could not place {n} orgs on distinct masters: {found}")


class Recorder:
    """Wraps the registered scripts of a ``Scripts``: every call is noted
    (script name, keys) so a test can check which scripts ran and that
    each call's keys share one slot."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []

    def wrap(self, scripts: Scripts) -> Scripts:
        for name in SCRIPT_NAMES:
            original = getattr(scripts, name)
            setattr(scripts, name, _Recorded(name, original, self))
        return scripts

    def names(self) -> set[str]:
        return {name for name, _ in self.calls}


class _Recorded:
    def __init__(self, name: str, script: Any, recorder: Recorder) -> None:
        self.name, self.inner, self.recorder = name, script, recorder
        self.script = script.script  # the source, as on redis-py's script objects

    @property
    def sha(self) -> str:
        return self.inner.sha

    async def __call__(self, keys: Sequence[str] = (), args: Sequence[Any] = (), client: Any = None) -> Any:
        self.recorder.calls.append((self.name, [str(k) for k in keys]))
        return await self.inner(keys=keys, args=args, client=client)


class RecordingBatcher(ScriptBatcher):
    """The dialer's ``ScriptBatcher``, noting each script call (name, keys)
    in the recorder; the call itself goes out with the real script object
    (the batcher may reload it on NOSCRIPT)."""

    def __init__(self, redis: Any, recorder: Recorder) -> None:
        super().__init__(redis)
        self.recorder = recorder

    async def call(self, script: Any, keys_: Sequence[str], args: Sequence[Any], *, lazy: bool = False) -> Any:
        if isinstance(script, _Recorded):
            self.recorder.calls.append((script.name, [str(k) for k in keys_]))
            script = script.inner
        return await super().call(script, keys_, args, lazy=lazy)


def lease_client(r: Any, clock: Clock, recorder: Recorder, *, ttl_ms: int = 10_000) -> LeaseClient:
    # The scripts' own replies compared with a single Redis: no org marker.
    leases = LeaseClient(r, dialer_id="d1", lease_ttl_ms=ttl_ms, clock=clock, org_markers=False)
    recorder.wrap(leases.scripts)
    # The real transport, on both sides of a comparison.
    leases.batcher = RecordingBatcher(r, recorder)
    assert leases.batcher.cluster == isinstance(r, RedisCluster)
    return leases


def plain(value: Any) -> Any:
    """A reply as comparable plain data (dataclasses, enums, bytes)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if hasattr(value, "__dataclass_fields__"):
        return {k: plain(getattr(value, k)) for k in value.__dataclass_fields__ if k != "org_id"}
    if hasattr(value, "value") and not isinstance(value, (int, float, str)):
        return plain(value.value)
    return value


async def scenario(r: Any, org_id: str, recorder: Recorder) -> list[Any]:
    """Goes through every script of SCRIPT_NAMES for one org; returns the
    transcript of replies (no org id in it: the same on any server)."""
    clock = Clock()
    out: list[Any] = []
    state = RedisState(r, clock, lease_ttl_seconds=10.0)
    recorder.wrap(state.scripts)
    leases = lease_client(r, clock, recorder)

    await state.set_org_limit(org_id, 2)
    for batch_id, limit in (("A", 1), ("B", 2)):
        await state.activate_batch(  # ring_add.lua
            org_id, batch_id, concurrency_limit=limit, max_call_seconds=600,
            ready=[(f"{batch_id}-c{i:02d}", clock()) for i in range(4)],
        )
    await state.mark_present()
    # claim.lua (slot), attach.lua, end_call.lua, release.lua.
    a = await leases.claim(org_id, "A", lease_id="LA1", provider_call_id="pA1")
    b = await leases.claim(org_id, "B", lease_id="LB1", provider_call_id="pB1")
    assert isinstance(a, Claim) and isinstance(b, Claim)
    out += [plain(a), plain(b), plain(await leases.claim(org_id, "A", lease_id="LX", provider_call_id="pX"))]
    out.append(await leases.attach(org_id, "LA1", attempt_id="at-1", started_ms=int(clock() * 1000), max_call_ms=60_000,
                                   trunk_json='{"kind":"simulated"}'))
    # A reservation (claim.lua reserve), handed the slot A frees by end_call.lua.
    reserved = await leases.claim_many(org_id, "A", 1, lease_ids=["RA1"], provider_call_ids=["pR1"], reserve=True)
    out.append(plain(reserved))
    clock.advance(0.5)
    out.append(plain(await leases.end_call(org_id, "A", "LA1", then_activate=("RA1", "A"))))
    out.append(plain(await leases.renew_many([(org_id, "A", "LA1"), (org_id, "B", "LB1"), (org_id, "A", "RA1")])))
    out.append(await leases.release(org_id, "A", "LA1", requeue_contact=a.contact_id, requeue_due_ms=a.due_ms))
    out.append(await leases.release(org_id, "A", "LA1"))
    # activate.lua on its own: a second reservation in B, then activated.
    res_b = await leases.claim_many(org_id, "B", 1, lease_ids=["RB1"], provider_call_ids=["pRB1"], reserve=True)
    out.append(plain(res_b))
    out.append(plain(await leases.activate(org_id, "B", "RB1")))
    # end_call.lua hands B's freed slot to the org's oldest waiting
    # reservation (keys derived from the org prefix: still its one slot).
    out.append(await leases.attach(org_id, "LB1", attempt_id="at-b", started_ms=int(clock() * 1000),
                                   max_call_ms=60_000, trunk_json='{"kind":"simulated"}'))
    out.append(plain(await leases.end_call(org_id, "B", "LB1", hand_off_scan=8)))
    out.append(await state.slots_in_use(org_id))
    out.append(sorted(await state.leased_contacts(org_id, "B")))
    # restore_lease.lua + fence_floor.lua (the rebuild after a data loss).
    snap = OrgSnapshot(org_id=org_id, concurrency_limit=2, max_fencing_token=40, running=[
        BatchSnapshot(batch_id="B", concurrency_limit=2, max_call_seconds=60, inflight=[InflightLease(
            lease_id="LR1", batch_id="B", contact_id="B-restored", attempt_id="at-r", fencing_token=41,
            dialer_id="d0", provider_call_id="pr", started_at=clock(), max_call_seconds=60, trunk_json="{}")])])
    await state.rebuild([snap], limits_before={org_id: "2"})  # set_if_unchanged.lua too
    # org_marker.lua (failover without loss): "<epoch>:<this node's replid>".
    marker = await state.mark_org(org_id, 3)
    got, replid = (await state.org_markers([org_id]))[org_id]
    out.append([marker.split(":")[0], got == marker == f"3:{replid}"])
    out.append(sorted(plain(await r.zrange(keys.org_leases(org_id), 0, -1))))
    out.append(plain(await r.get(keys.fence_counter(org_id))))
    # set_if_exists.lua (batch limit), set_if_unchanged.lua (repair).
    await state.set_batch_limit(org_id, "B", 3)
    out.append(plain(await r.hget(keys.batch_meta(org_id, "B"), "limit")))
    out.append(await state.repair_org_limit(org_id, "7", 9))  # refused: it holds "2"
    # unlock.lua (reaper lock).
    out.append(await leases.try_lock(keys.reaper_lock(org_id), "tok", 5000))
    out.append(await leases.unlock(keys.reaper_lock(org_id), "other"))
    out.append(await leases.unlock(keys.reaper_lock(org_id), "tok"))
    # pace.lua, pushback.lua, pace_ok.lua (dialer.cps.Pacer, client-side clock).
    pacer = Pacer(r)
    recorder.wrap(pacer.scripts)
    for i in range(4):
        out.append(plain(await pacer.acquire(org_id, "t1", 2, 3, T0 + 100 * i)))
    out.append(plain(await pacer.pushback(org_id, "t1", T0 + 500, 1.5, trunk_cps=2, started_ms=T0)))
    out.append(plain(await pacer.success(org_id, "t1", T0 + 3000, trunk_cps=2, started_ms=T0 + 2500)))
    # rate_limit.lua (server/api/rate_limit.py, the server's clock in µs).
    rl_key = keys.rate_limit(org_id, "k" * 64)
    for i in range(3):
        out.append(plain(await state.scripts.rate_limit(keys=[rl_key], args=[T0 * 1000 + i, 500_000, 2])))
    # deactivate.lua: pause B, cancel A.
    await state.deactivate_batch(org_id, "B", discard_queue=False)
    await state.deactivate_batch(org_id, "A", discard_queue=True)
    out.append(plain(await r.lrange(keys.org_running(org_id), 0, -1)))
    out.append(await r.exists(keys.batch_ready(org_id, "A")))
    return out


def check_one_slot_per_call(recorder: Recorder) -> None:
    for name, call_keys in recorder.calls:
        assert call_keys, f"{name} called without keys"
        slots = {slot(k) for k in call_keys}
        assert len(slots) == 1, f"{name} touched keys of several slots: {call_keys}"


def test_every_key_of_an_organization_is_in_its_slot():
    org_id = "org_0123456789"
    expected = slot(keys.org_config(org_id))
    builders = [
        (name, fn) for name, fn in inspect.getmembers(keys, inspect.isfunction)
        if fn.__module__ == keys.__name__ and not name.startswith("_")
    ]
    assert len(builders) >= 15
    for name, fn in builders:
        params = list(inspect.signature(fn).parameters)
        key = fn(org_id, *(f"x{i}" for i in range(len(params) - 1)))
        assert "{" + org_id + "}" in key and slot(key) == expected, (name, key)
    for name in ("ACTIVE_ORGS", "STATE_MARKER", "REBUILD_LOCK", "SCHEDULER_LOCK", "LEASE_ORGS",
                 "DIALER_HANDOFFS"):
        assert "{" not in getattr(keys, name)  # global: single-key commands only


def test_every_script_runs_on_the_cluster_as_on_a_single_redis(redis_cluster, redis7_url):
    """Three orgs on three masters run the scenario; each gets the transcript
    a single Redis 7 gives for the same scenario, and every script of
    SCRIPT_NAMES ran with keys of one slot."""

    async def main():
        r = await cluster_client(redis_cluster)
        single = aioredis.from_url(redis7_url)
        try:
            orgs = orgs_on_distinct_masters(r)
            ref_recorder = Recorder()
            expected = await scenario(single, f"org_{uuid.uuid4().hex[:10]}", ref_recorder)
            for org_id in orgs:
                recorder = Recorder()
                got = await scenario(r, org_id, recorder)
                assert got == expected, org_id
                assert recorder.names() == set(SCRIPT_NAMES), set(SCRIPT_NAMES) - recorder.names()
                check_one_slot_per_call(recorder)
                assert {slot(k) for _, ks in recorder.calls for k in ks} == {slot(keys.org_config(org_id))}
            # The three orgs' state really is on three different masters.
            assert len({r.get_node_from_key(keys.org_leases(o)).name for o in orgs}) == 3
        finally:
            await r.aclose()
            await single.aclose()

    run(main())


def test_a_script_given_keys_of_two_orgs_is_refused(redis_cluster):
    """What the one-slot rule prevents: keys of two organizations in one
    call are refused (by the client before sending, or CROSSSLOT)."""

    async def main():
        r = await cluster_client(redis_cluster)
        try:
            a, b = orgs_on_distinct_masters(r, 2)
            scripts = Scripts(r)
            with pytest.raises(Exception) as err:
                await scripts.set_if_exists(keys=[keys.batch_meta(a, "A"), keys.batch_meta(b, "A")], args=["x", 1])
            assert "slot" in str(err.value).lower()
        finally:
            await r.aclose()

    run(main())


def test_concurrent_claimers_on_the_cluster_never_exceed_limits(redis_cluster):
    """Eight claimers (each its own cluster client) race for slots of three
    orgs on three masters: no org or batch ever exceeds its limit, and each
    contact is claimed once."""

    async def main():
        setup_client = await cluster_client(redis_cluster)
        orgs = orgs_on_distinct_masters(setup_client)
        clock = Clock()
        state = RedisState(setup_client, clock)
        for org_id in orgs:
            await state.set_org_limit(org_id, 4)
            for batch_id in ("A", "B"):
                await state.activate_batch(org_id, batch_id, concurrency_limit=3, max_call_seconds=60,
                                           ready=[(f"{batch_id}-{i}", clock()) for i in range(30)])
        await state.mark_present()
        clients = [await cluster_client(redis_cluster) for _ in range(8)]
        recorder = Recorder()
        claimers = [lease_client(c, clock, recorder) for c in clients]
        claimed: list[Claim] = []

        async def worker(leases: LeaseClient) -> None:
            for _ in range(20):
                for org_id in orgs:
                    for batch_id in ("A", "B"):
                        got = await leases.claim(org_id, batch_id)
                        if isinstance(got, Claim):
                            claimed.append(got)

        await asyncio.gather(*(worker(c) for c in claimers))
        for org_id in orgs:
            assert await setup_client.zcard(keys.org_leases(org_id)) == 4
            mine = [c for c in claimed if c.org_id == org_id]
            assert len(mine) == 4 and len({c.contact_id for c in mine}) == 4
            for batch_id in ("A", "B"):
                assert await setup_client.zcard(keys.batch_leases(org_id, batch_id)) <= 3
            tokens = [c.fencing_token for c in mine]
            assert sorted(tokens) == list(range(1, 5))
        check_one_slot_per_call(recorder)
        for c in clients:
            await c.aclose()
        await setup_client.aclose()

    run(main())


def test_state_pipelines_and_sharded_pubsub_on_the_cluster(redis_cluster):
    """RedisState's multi-org pipelines (org limits, re-enqueue, publish)
    are split per node by the cluster pipeline; a batch event published
    with SPUBLISH reaches a watcher subscribed with SSUBSCRIBE, for orgs on
    every master, and only the watcher of that batch."""

    async def main():
        r = await cluster_client(redis_cluster)
        state = RedisState(r, Clock())
        assert state.cluster
        orgs = orgs_on_distinct_masters(r)
        try:
            for i, org_id in enumerate(orgs):
                await state.set_org_limit(org_id, i + 1)
            assert await state.org_limits(orgs) == {o: str(i + 1) for i, o in enumerate(orgs)}
            await state.enqueue_items([(o, "A", f"c{i}", 1.0) for i, o in enumerate(orgs)])
            for i, org_id in enumerate(orgs):
                assert await state.ready_contacts(org_id, "A") == {f"c{i}"}

            subs = {o: state.subscribe(o, "A") for o in orgs}
            other = state.subscribe(orgs[0], "B")
            received: dict[str, list[bytes]] = {o: [] for o in orgs}

            async def first(gen: Any) -> bytes:
                return await gen.__anext__()

            # Subscribe (the generators run to their first message): publish
            # until each watcher hears its own sync token, as WatchBatch does.
            pending = {o: asyncio.ensure_future(first(subs[o])) for o in orgs}
            other_task = asyncio.ensure_future(first(other))
            for _ in range(100):
                for o in orgs:
                    if not pending[o].done():
                        await state.publish(o, "A", json.dumps({"type": "watch_sync", "o": o}).encode())
                await asyncio.sleep(0.05)
                if all(t.done() for t in pending.values()):
                    break
            for o in orgs:
                assert json.loads(pending[o].result())["o"] == o
            # publish_many: one pipelined round trip for batches of three orgs.
            await state.publish_many([(o, "A", json.dumps({"type": "batch", "o": o}).encode()) for o in orgs])
            for o in orgs:
                data = await asyncio.wait_for(first(subs[o]), 5)
                received[o].append(data)
                assert json.loads(data) == {"type": "batch", "o": o}
            assert not other_task.done()  # batch B of orgs[0] heard nothing
            other_task.cancel()
            for gen in [*subs.values(), other]:
                await gen.aclose()
        finally:
            await r.aclose()

    run(main())


def test_watchbatch_subscription_hears_published_batch_events_through_the_cluster(redis_cluster):
    """The server's own path on a cluster: ``bootstrap.redis_from_settings``
    with REDIS_CLUSTER_URL (several seeds) gives a RedisCluster; WatchBatch's
    subscription (server/api/watch.py) confirms itself with its sync token,
    then a batch event published by ``server.service.events`` after a commit
    reaches it through sharded pub/sub, for an org on every master."""
    from datetime import datetime
    from types import SimpleNamespace

    from server.api.watch import _Subscription
    from server.bootstrap import redis_from_settings
    from server.service.events import batch_event, publish_many
    from server.settings import Settings

    seeds = ",".join(f"redis://127.0.0.1:{n.port}" for n in redis_cluster.nodes[:2])
    settings = Settings.from_env({"REDIS_CLUSTER_URL": seeds, "REDIS_URL": ""})
    assert settings.redis_cluster_url == seeds

    async def main():
        r = redis_from_settings(settings)
        assert isinstance(r, RedisCluster)
        state = RedisState(r, Clock())
        ctx = SimpleNamespace(redis_state=state)
        await r.initialize()
        orgs = orgs_on_distinct_masters(r)
        subs = [_Subscription(state, o, "B1") for o in orgs]
        try:
            for sub in subs:
                await sub.start()
                assert sub.synced.is_set(), "the sync token did not come back"
            at = datetime(2026, 1, 1, tzinfo=UTC)
            await publish_many(ctx, {(o, "B1"): [batch_event("running", at)] for o in orgs})
            for sub in subs:
                data = await sub.next(5.0)
                assert data is not None and json.loads(data)["status"] == "running"
                assert await sub.next(0.2) is None  # nothing else (no other org's event)
        finally:
            for sub in subs:
                await sub.close()
            await r.aclose()

    run(main())
