"""The dialer on a Redis Cluster (three masters, three replicas on loopback:
``redis_cluster`` of tests/integration/conftest.py), with the real
``ScriptBatcher`` routing each round trip per master (docs/redis.md, "The
dialer on a cluster").

- The dialer invariant tests of ``test_redis_dialer.py`` run unchanged on
  the cluster: their ``Env`` is swapped for ``ClusterEnv``, whose Redis is a
  ``RedisCluster`` built by ``contract.redis_client`` from
  ``REDIS_CLUSTER_URL``-style seeds (also set in the environment, so the
  ``python -m dialer`` subprocesses of those tests run on the cluster too).
- Several dialers granting ahead for organizations on all three masters
  keep every org and batch limit at the provider and dial each contact
  once.
- ``SCRIPT FLUSH`` on one master mid-run (NOSCRIPT) and a stale slot map
  (MOVED) are recovered by the batcher.
"""

from __future__ import annotations

import asyncio
import collections
import time

import grpc
import pytest
from batchcalls.v1 import dialer_service_pb2_grpc
from redis.asyncio.cluster import RedisCluster

from contract import keys
from contract.redis_client import redis_cluster_client
from dialer.__main__ import make_redis
from dialer.leases import Claim, LeaseClient
from dialer.script_batcher import ScriptBatcher
from dialer.settings import DialerSettings
from server.adapters.redis.state import RedisState
from tests.integration import test_redis_dialer as single
from tests.integration.test_redis_cluster_scripts import orgs_on_distinct_masters
from tests.integration.test_redis_dialer import (  # noqa: F401 (fixture)
    Env,
    FakeProvider,
    simcarrier,
    wait_until,
)
from tests.support.helpers import Clock, run


def seeds(cluster) -> str:
    """REDIS_CLUSTER_URL for the test cluster: two seeds."""
    return ",".join(f"redis://127.0.0.1:{n.port}" for n in cluster.nodes[:2])


class ClusterEnv(Env):
    """``test_redis_dialer.Env`` on a cluster: ``url`` is a comma-separated
    seed list; the org of ``org_id`` is on any master, ``orgs`` are three
    orgs on three different masters (``orgs[0] == org_id``)."""

    async def start(self):
        self.redis = redis_cluster_client(self.url)
        await self.redis.initialize()
        self.orgs = orgs_on_distinct_masters(self.redis, 3)
        self.org_id = self.orgs[0]
        self.org_batches: list[tuple[str, str]] = []
        self.state = RedisState(self.redis)
        self.server = grpc.aio.server()
        dialer_service_pb2_grpc.add_DialerServiceServicer_to_server(self.service, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        await self.server.start()
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{self.port}")
        await self.state.mark_present()
        return self

    def dialer(self, providers=None, **kw):
        d = super().dialer(providers, **kw)
        assert d.leases.batcher.cluster  # the real batcher, routing per master
        return d

    async def org_batch(self, org_id: str, batch_id: str, n: int, *, limit: int) -> list[str]:
        """A batch of another org (contact ids unique across orgs)."""
        ids = [f"{org_id}-{batch_id}-{i:04d}" for i in range(n)]
        self.org_batches.append((org_id, batch_id))
        for c in ids:
            self.service.add(c)
        await self.state.activate_batch(org_id, batch_id, concurrency_limit=limit, max_call_seconds=60,
                                        ready=[(c, time.time() - 1) for c in ids])
        await self.state.mark_org(org_id, 0)  # as the server's rebuild of the org does
        return ids

    async def batch(self, batch_id: str, n: int, *, limit: int, due: float | None = None):
        out = await super().batch(batch_id, n, limit=limit, due=due)
        await self.state.mark_org(self.org_id, 0)  # as the server's rebuild of the org does
        return out

    async def close(self):
        for d in self.dialers:
            await d.stop(drain_timeout=1.0)
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.dialers, self.tasks = [], []
        for org_id, batch_id in self.org_batches:
            await self.state.deactivate_batch(org_id, batch_id, discard_queue=True)
            await self.redis.srem(keys.ACTIVE_ORGS, org_id)
        await super().close()


#: The invariant tests of test_redis_dialer.py that run on the cluster as
#: they are (every one but the two that restart a dialer mid-call against
#: the simulated carrier, which are covered by the first kill -9 one).
SINGLE_REDIS_TESTS = [
    "test_dialer_calls_every_contact_once_within_limits",
    "test_grants_ahead_keep_limits_and_dial_each_contact_once",
    "test_no_claims_while_state_marker_missing",
    "test_late_grant_is_not_dialed",
    "test_finish_attempt_is_retried_until_delivered",
    "test_graceful_stop_lets_live_calls_finish",
    "test_hard_stop_hangs_up_reports_and_releases",
    "test_lost_lease_does_not_abort_the_call",
    "test_reaper_judges_dead_dialers_leases",
    "test_a_dialer_reaps_another_dialers_crashed_lease_and_reuses_the_slot",
    "test_python_m_dialer_serves_metrics_and_exits_0_on_sigterm",
    "test_retryable_outcome_goes_back_to_the_ready_queue_at_next_attempt_time",
    "test_slots_are_freed_when_the_call_ends_before_finish_attempt_is_answered",
    "test_reaper_closes_expired_ended_leases_with_the_providers_result",
    "test_claim_loop_wakes_at_once_when_this_dialer_frees_a_slot",
    "test_no_refill_while_the_state_marker_is_missing",
]


@pytest.fixture
def on_cluster(redis_cluster, monkeypatch):
    """test_redis_dialer's Env on the cluster; REDIS_CLUSTER_URL set for the
    dialer subprocesses those tests start."""
    url = seeds(redis_cluster)
    monkeypatch.setattr(single, "Env", ClusterEnv)
    monkeypatch.setenv("REDIS_CLUSTER_URL", url)
    return url


@pytest.mark.parametrize("name", SINGLE_REDIS_TESTS)
def test_dialer_invariants_on_the_cluster(name, on_cluster, tmp_path):
    test = getattr(single, name)
    if name == "test_python_m_dialer_serves_metrics_and_exits_0_on_sigterm":
        test(on_cluster, tmp_path)
    else:
        test(on_cluster)


def test_kill_9_dialer_on_the_cluster_is_recovered_by_another_dialers_reaper(on_cluster, simcarrier):  # noqa: F811
    """The kill -9 test with the victim a ``python -m dialer`` whose
    REDIS_CLUSTER_URL names the cluster (``make_redis`` builds a
    RedisCluster), checked at the simulated carrier."""
    single.test_kill_9_dialer_mid_call_is_recovered_by_another_dialers_reaper(on_cluster, simcarrier)


def test_make_redis_builds_a_cluster_client_from_redis_cluster_url(redis_cluster):
    url = seeds(redis_cluster)
    settings = DialerSettings.from_env({"REDIS_CLUSTER_URL": url, "REDIS_URL": "redis://ignored:1/0"})
    assert settings.redis_cluster_url == url
    r = make_redis(settings.redis_url, settings.redis_cluster_url)
    assert isinstance(r, RedisCluster)
    assert {(n.host, n.port) for n in r.nodes_manager.startup_nodes.values()} >= {
        ("127.0.0.1", n.port) for n in redis_cluster.nodes[:2]}
    assert not isinstance(make_redis("redis://127.0.0.1:1/0"), RedisCluster)
    assert DialerSettings.from_env({}).redis_cluster_url == ""

    async def main():
        try:
            assert await r.ping()
            assert ScriptBatcher(r).cluster
        finally:
            await r.aclose()

    run(main())


def test_dialers_granting_ahead_for_orgs_on_every_master_keep_limits_and_dial_once(redis_cluster):
    """Three dialers with grant ahead on, three orgs on three masters, two
    batches each: at the provider no org exceeds 4 live calls and no batch
    3, every contact is called exactly once, and nothing stays leased or
    reserved. Each dialer's round trips are split across the masters."""

    async def main():
        env = await ClusterEnv(seeds(redis_cluster), FakeProvider(duration=0.03)).start()
        try:
            everyone: list[str] = []
            for org_id in env.orgs:
                await env.state.set_org_limit(org_id, 4)
                everyone += await env.org_batch(org_id, "A", 40, limit=3)
                everyone += await env.org_batch(org_id, "B", 15, limit=3)
            dialers = [env.dialer(prefetch_seconds=2.0) for _ in range(3)]
            assert all(d.leases.batcher.cluster for d in dialers)
            await wait_until(lambda: len(env.service.finished) == len(everyone), what="all outcomes", timeout=90)
            reserved = sum(d.metrics.registry.get_sample_value("batchcalls_dialer_claims_total", {"result": "reserved"})
                           or 0 for d in dialers)
            assert reserved > 0  # grants ahead were used
            for org_id in env.orgs:
                assert 3 <= env.provider.max_org[org_id] <= 4, org_id
                for batch_id in ("A", "B"):
                    assert env.provider.max_batch[(org_id, batch_id)] <= 3
            assert env.provider.max_per_contact == 1
            called = collections.Counter(c.contact_id for c in env.provider.calls)
            assert set(called) == set(everyone) and max(called.values()) == 1
            await wait_until(lambda: not any(d.held_leases for d in dialers), what="leases released")
            for org_id in env.orgs:
                assert await env.state.slots_in_use(org_id) == 0
                assert await env.redis.zcard(keys.org_reserved(org_id)) == 0
                assert await env.redis.zcard(keys.org_ended(org_id)) == 0
                assert not await env.redis.keys(f"bc:{{{org_id}}}:lease:*")
        finally:
            await env.close()

    run(main())


async def _noscript_count(node) -> int:
    """NOSCRIPT errors a node has answered (Redis 7 errorstats)."""
    info = await node.execute_command("INFO", "errorstats")
    if isinstance(info, (bytes, str)):
        text = info.decode() if isinstance(info, bytes) else info
        for line in text.splitlines():
            if line.startswith("errorstat_NOSCRIPT:"):
                return int(line.split("count=")[1].split(",")[0])
        return 0
    stat = info.get("errorstat_NOSCRIPT") or {}
    return int(stat.get("count", 0)) if isinstance(stat, dict) else 0


def test_script_flush_on_one_master_mid_run_is_recovered(redis_cluster):
    """Two dialers run batches of orgs on all three masters; SCRIPT FLUSH on
    one org's master while calls are live makes its next EVALSHAs answer
    NOSCRIPT: the batcher loads the scripts there and resends, and the run
    completes with the limits held and each contact dialed once."""

    async def main():
        env = await ClusterEnv(seeds(redis_cluster), FakeProvider(duration=0.03)).start()
        try:
            everyone: list[str] = []
            for org_id in env.orgs:
                await env.state.set_org_limit(org_id, 3)
                everyone += await env.org_batch(org_id, "A", 40, limit=2)
            victim = env.redis.get_node_from_key(keys.org_config(env.orgs[1]))
            before = await _noscript_count(victim)
            dialers = [env.dialer(prefetch_seconds=1.0), env.dialer()]
            await wait_until(lambda: len(env.service.finished) >= 20, what="a third of the outcomes")
            await victim.execute_command("SCRIPT", "FLUSH")
            await wait_until(lambda: len(env.service.finished) == len(everyone), what="all outcomes", timeout=90)
            assert await _noscript_count(victim) > before  # the flush was hit, and recovered
            for org_id in env.orgs:
                assert env.provider.max_org[org_id] <= 3
                assert env.provider.max_batch[(org_id, "A")] <= 2
            called = collections.Counter(c.contact_id for c in env.provider.calls)
            assert set(called) == set(everyone) and max(called.values()) == 1
            await wait_until(lambda: not any(d.held_leases for d in dialers), what="leases released")
            for org_id in env.orgs:
                assert await env.state.slots_in_use(org_id) == 0
        finally:
            await env.close()

    run(main())


def test_batcher_recovers_noscript_and_a_stale_slot_map(redis_cluster):
    """The batcher alone: after SCRIPT FLUSH on every master, claims for
    orgs on three masters sent in one round trip all succeed (NOSCRIPT:
    loaded on each master, resent); with the client's slot map made wrong
    for one org (its slot pointed at another master: MOVED), the next round
    trip refreshes the map and succeeds; a claim round's plain commands
    (global keys and org keys mixed) come back in order."""

    async def main():
        r = redis_cluster_client(seeds(redis_cluster))
        await r.initialize()
        try:
            orgs = orgs_on_distinct_masters(r, 3)
            clock = Clock()
            state = RedisState(r, clock)
            for org_id in orgs:
                await state.set_org_limit(org_id, 10)
                await state.activate_batch(org_id, "A", concurrency_limit=10, max_call_seconds=60,
                                           ready=[(f"{org_id}-c{i}", clock() - 1) for i in range(10)])
            await state.mark_present()
            leases = LeaseClient(r, dialer_id="d1", lease_ttl_ms=10_000, clock=clock, org_markers=False)
            assert leases.batcher.cluster
            for node in r.get_primaries():
                await node.execute_command("SCRIPT", "FLUSH")
            before = leases.batcher.pipelines
            got = await asyncio.gather(*(leases.claim(o, "A") for o in orgs for _ in range(2)))
            assert all(isinstance(c, Claim) for c in got)
            assert leases.batcher.pipelines - before <= 2  # grouped, not one round trip per call
            # MOVED: the client believes org 0's slot is served by org 1's master.
            slot = r.keyslot(keys.org_config(orgs[0]))
            right = r.nodes_manager.slots_cache[slot]
            wrong = r.get_node_from_key(keys.org_config(orgs[1]))
            r.nodes_manager.slots_cache[slot] = [wrong]
            c = await leases.claim(orgs[0], "A")
            assert isinstance(c, Claim)
            assert r.nodes_manager.slots_cache[slot][0].name == right[0].name  # the map was refreshed
            present, active, rounds = await leases.claim_context(known_orgs=orgs, note_orgs=orgs)
            assert present and set(orgs) <= active
            assert {o: rounds[o].ring for o in orgs} == {o: ["A"] for o in orgs}
            assert {o: rounds[o].org_free for o in orgs} == {orgs[0]: 7, orgs[1]: 8, orgs[2]: 8}
            # An error reply of one command stays that command's (no retry, no spill).
            await r.set(keys.org_running(orgs[2]), "not a list")
            replies = await leases.batcher.commands([("LRANGE", keys.org_running(orgs[2]), 0, -1),
                                                     ("ZCARD", keys.org_leases(orgs[1]))])
            assert isinstance(replies[0], Exception) and "WRONGTYPE" in str(replies[0]) and replies[1] == 2
        finally:
            for org_id in orgs:
                await r.delete(keys.org_running(org_id))
                await r.srem(keys.ACTIVE_ORGS, org_id)
            await r.aclose()

    run(main())


def test_reaper_drops_an_orphan_lease_scanning_only_its_orgs_master(redis_cluster):
    """A slot-holding lease whose info hash is gone (an orphan) is removed
    from the org's zset and from its batch's zset, found by SCAN on the
    org's master only (docs/redis.md)."""
    from contract.lease import LeaseRecord
    from dialer.reaper import Reaper

    async def main():
        r = redis_cluster_client(seeds(redis_cluster))
        await r.initialize()
        org_id = orgs_on_distinct_masters(r, 1)[0]
        clock = Clock()
        state = RedisState(r, clock)
        try:
            await state.set_org_limit(org_id, 2)
            await state.activate_batch(org_id, "O", concurrency_limit=2, max_call_seconds=60,
                                       ready=[("o-1", clock() - 1)])
            leases = LeaseClient(r, dialer_id="dead", lease_ttl_ms=1000, clock=clock, org_markers=False)
            c = await leases.claim(org_id, "O")
            assert isinstance(c, Claim)
            await r.delete(keys.lease_info(org_id, c.lease_id))
            reaper = Reaper(leases, None, None, dialer_id="r1", lease_ttl_ms=1000, ring_timeout_seconds=1.0)
            scanned: list[object] = []
            real_scan = r.scan

            async def scan(*args, **kwargs):
                scanned.append(kwargs.get("target_nodes"))
                return await real_scan(*args, **kwargs)

            r.scan = scan  # type: ignore[method-assign]
            await reaper._drop_orphan(LeaseRecord(org_id=org_id, lease_id=c.lease_id, expiry_ms=0, info={}))
            assert scanned and all(n is not None and n.name == r.get_node_from_key(keys.org_leases(org_id)).name
                                   for n in scanned)
            assert await r.zcard(keys.org_leases(org_id)) == 0
            assert await r.zcard(keys.batch_leases(org_id, "O")) == 0
        finally:
            await state.deactivate_batch(org_id, "O", discard_queue=True)
            await r.srem(keys.ACTIVE_ORGS, org_id)
            await r.aclose()

    run(main())
