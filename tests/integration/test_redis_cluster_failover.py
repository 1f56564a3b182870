"""Failover without loss on a Redis Cluster (issue 15, item 3;
docs/recovery.md, "Failover without loss").

The org's queues and leases are trusted only while ``bc:{org}:marker``
names the epoch Postgres holds and the replication id of the node that now
serves the org's slot; claim.lua refuses otherwise ("no_marker"). These
tests run real dialers (``ClusterEnv`` of test_redis_cluster_dialer.py: the
stub server is "Postgres in a dict") and stand in for the server's
reconciler with ``RedisState.rebuild_orgs`` fed from that dict, the way
``server.service.background.rebuild_stale_orgs`` feeds it from Postgres.

- deterministic: the marker is deleted mid-batch (a promoted replica that
  missed writes) -> claims stop -> rebuild -> claims resume, nothing lost;
- kill -9 of the master serving the org's slot mid-batch, its replica
  promoted: claims stop there (new replication id), rebuild, resume; at the
  provider no contact twice at once, none dialed twice, org and batch limits
  held, every contact final.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import signal
import time

import pytest
from batchcalls.v1 import dialer_service_pb2 as D
from batchcalls.v1 import resources_pb2
from redis.crc import key_slot

from contract import keys
from server.adapters.redis.state import BatchSnapshot, InflightLease, OrgSnapshot
from tests.integration.test_redis_cluster_dialer import ClusterEnv, seeds
from tests.integration.test_redis_dialer import FakeProvider, wait_until
from tests.support.helpers import run


def not_dialed_requeues(env: ClusterEnv) -> None:
    """The stub server closes every attempt as final; the real one returns a
    NOT_DIALED contact to waiting without spending an attempt (a reservation
    the dialer could not activate while the org marker was missing)."""
    svc = env.service
    finish = svc.FinishAttempt

    async def FinishAttempt(request, context):
        resp = await finish(request, context)
        if request.outcome == resources_pb2.CALL_OUTCOME_NOT_DIALED:
            c = svc.contacts[svc.attempts[request.attempt_id]["contact"]]
            c["status"], c["attempts"] = "pending", c["attempts"] - 1
            resp = D.FinishAttemptResponse(contact_status=resources_pb2.CONTACT_STATUS_QUEUED)
            resp.next_attempt_time.FromMilliseconds(int(time.time() * 1000))
        return resp

    svc.FinishAttempt = FinishAttempt


def pg_snapshot(env: ClusterEnv, org_id: str, batch_id: str, *, org_limit: int, batch_limit: int) -> OrgSnapshot:
    """What ``server.service.background.snapshot`` reads from Postgres, from
    the stub server's dict: waiting contacts, open attempts as leases."""
    svc = env.service
    now = time.time()
    ready = [(c, now - 1) for c, v in svc.contacts.items() if v["status"] in ("pending", "queued")]
    inflight = [
        InflightLease(lease_id=a["lease"], batch_id=batch_id, contact_id=a["contact"], attempt_id=aid,
                      fencing_token=int(a["token"]), dialer_id="", provider_call_id=a["pcid"], started_at=now,
                      max_call_seconds=60, trunk_json="{}")
        for aid, a in svc.attempts.items() if a["open"]
    ]
    max_token = max([int(a["token"]) for a in svc.attempts.values()] or [0])
    return OrgSnapshot(org_id=org_id, concurrency_limit=org_limit, max_fencing_token=max_token,
                       running=[BatchSnapshot(batch_id=batch_id, concurrency_limit=batch_limit,
                                              max_call_seconds=60, ready=ready, inflight=inflight)])


async def reconcile_org(env: ClusterEnv, org_id: str, epoch: int, batch_id: str, **limits) -> bool:
    """The reconciler's check for one org: rebuild if its marker is stale."""
    (marker, replid), = (await env.state.org_markers([org_id])).values()
    if marker == f"{epoch}:{replid}":
        return False
    await env.state.rebuild_orgs([pg_snapshot(env, org_id, batch_id, **limits)], {org_id: epoch + 1})
    return True


def check_carrier(env: ClusterEnv, ids: list[str], org_id: str, *, org_limit: int, batch_limit: int) -> None:
    p = env.provider
    called = collections.Counter(c.contact_id for c in p.calls)
    print(f"calls={len(p.calls)} contacts={len(ids)} max_org={p.max_org[org_id]} "
          f"max_batch={p.max_batch[(org_id, 'A')]} max_per_contact={p.max_per_contact}")
    lost = set(ids) - set(called)
    outcomes = {f.attempt_id: f.outcome for f in env.service.finished}
    print("lost:", {c: [outcomes.get(aid) for aid, a in env.service.attempts.items() if a["contact"] == c]
                    for c in lost})
    assert set(called) == set(ids), "a contact was lost"
    assert max(called.values()) == 1, "a contact dialed beyond its max attempts"
    not_dialed = sum(f.outcome == resources_pb2.CALL_OUTCOME_NOT_DIALED for f in env.service.finished)
    print(f"reservations closed NOT_DIALED (re-queued): {not_dialed}")
    assert p.max_per_contact == 1, "two calls at once for one contact"
    assert p.max_org[org_id] <= org_limit
    assert p.max_batch[(org_id, "A")] <= batch_limit
    assert all(v["status"] == "final" and v["attempts"] == 1 for v in env.service.contacts.values())


def test_missing_org_marker_stops_claims_until_the_org_is_rebuilt(redis_cluster):
    async def main():
        env = ClusterEnv(seeds(redis_cluster), FakeProvider(duration=0.05))
        not_dialed_requeues(env)  # before start(): the servicer's methods are bound there
        await env.start()
        org = env.org_id
        try:
            await env.state.set_org_limit(org, 3)
            ids = await env.org_batch(org, "A", 60, limit=2)
            await env.state.mark_org(org, 1)
            dialers = [env.dialer(), env.dialer(prefetch_seconds=1.0)]
            assert all(d.leases.org_markers for d in dialers)
            await wait_until(lambda: len(env.service.finished) >= 10, what="some outcomes")
            await env.redis.delete(keys.org_marker(org))  # a promoted replica that missed writes
            await asyncio.sleep(1.0)  # claims already made finish
            stalled = len(env.provider.calls)
            await asyncio.sleep(1.5)
            assert len(env.provider.calls) == stalled < len(ids), "claimed without the org marker"
            print(f"claims stopped at {stalled}/{len(ids)} calls")
            assert await reconcile_org(env, org, 1, "A", org_limit=3, batch_limit=2)
            assert not await reconcile_org(env, org, 2, "A", org_limit=3, batch_limit=2)
            await wait_until(lambda: all(v["status"] == "final" for v in env.service.contacts.values()),
                             what="every contact final", timeout=60)
            check_carrier(env, ids, org, org_limit=3, batch_limit=2)
            await wait_until(lambda: not any(d.held_leases for d in dialers), what="leases released")
        finally:
            await env.redis.delete(keys.org_marker(org))
            await env.close()

    run(main())


@pytest.fixture
def own_cluster():
    """A cluster of this test's own (a master is killed), node timeout 1 s."""
    from tests.conftest import need_binary
    from tests.support.redis_servers import RedisCluster, is_redis7

    binary = need_binary("redis-server", "Redis >= 7 for the Redis Cluster tests", is_redis7)
    cli = need_binary("redis-cli", "the Redis Cluster tests")
    cluster = RedisCluster.start(binary, cli, node_timeout_ms=1000)
    try:
        yield cluster
    finally:
        cluster.stop()


def test_kill_9_of_the_orgs_master_mid_batch_loses_nothing(own_cluster):
    async def main():
        env = ClusterEnv(seeds(own_cluster), FakeProvider(duration=0.2))
        not_dialed_requeues(env)  # before start(): the servicer's methods are bound there
        await env.start()
        # An org whose master is not one of the clients' seed nodes.
        seed_ports = {n.port for n in own_cluster.nodes[:2]}
        org = next(o for o in env.orgs if int(env.redis.get_node_from_key(keys.org_marker(o)).port) not in seed_ports)
        try:
            await env.state.set_org_limit(org, 4)
            ids = await env.org_batch(org, "A", 60, limit=3)
            await env.state.mark_org(org, 1)
            dialers = [env.dialer(), env.dialer(prefetch_seconds=1.0)]
            await wait_until(lambda: len(env.service.finished) >= 10, what="some outcomes")
            node = env.redis.get_node_from_key(keys.org_marker(org))
            victim = next(n for n in own_cluster.nodes if n.port == int(node.port))
            assert any(v == victim for v in own_cluster.masters())
            os.kill(victim.process.pid, signal.SIGKILL)  # calls are live
            victim.process.wait(5)
            t0 = time.monotonic()
            # The replica is promoted: every live node names a live master
            # for the org's slot (a kill is noticed after the node timeout).
            promoted = await asyncio.to_thread(own_cluster.wait_promoted, key_slot(keys.org_marker(org).encode()), 30)
            assert promoted is not victim
            print(f"promoted {promoted.port} after {time.monotonic() - t0:.1f}s")
            epoch, rebuilt = 1, False
            while not all(v["status"] == "final" for v in env.service.contacts.values()):
                try:
                    if await reconcile_org(env, org, epoch, "A", org_limit=4, batch_limit=3):
                        epoch, rebuilt = epoch + 1, True
                        print("rebuilt at", len(env.service.finished), "epoch", epoch)
                except Exception as exc:  # noqa: BLE001 - the client's slot map is still moving
                    print("reconcile retry:", repr(exc))
                await asyncio.sleep(0.5)
                if int(time.monotonic() - t0) % 10 == 0:
                  with contextlib.suppress(Exception):
                    print("t", int(time.monotonic() - t0), len(env.service.finished), len(env.provider.calls),
                          [d.metrics.registry.get_sample_value("batchcalls_dialer_claims_total", {"result": "no_marker"})
                           for d in dialers], await env.state.org_markers([org]))
                    print("not final:", {c: (v, [(aid[:6], a) for aid, a in env.service.attempts.items() if a["contact"] == c])
                                         for c, v in env.service.contacts.items() if v["status"] == "dialing"},
                          "held:", [list(d.held_leases) if hasattr(d, "held_leases") else None for d in dialers])
                assert time.monotonic() - t0 < 40, f"stuck at {len(env.service.finished)}/{len(ids)}"
            print(f"failover + rebuild + rest of the batch: {time.monotonic() - t0:.1f}s, rebuilt={rebuilt}")
            assert rebuilt  # the promoted replica's new replication id was noticed
            check_carrier(env, ids, org, org_limit=4, batch_limit=3)
        finally:
            try:
                await env.close()
            except Exception as exc:  # noqa: BLE001 # pragma: no cover
                print("close:", repr(exc))

    run(main())


def test_reconciler_bumps_the_epoch_and_rebuilds_an_org_whose_marker_is_stale(stack) -> None:
    """``background.rebuild_stale_orgs`` against the real Postgres (the
    session stack; on a cluster ``reconcile`` runs it every pass): a missing
    or stale marker bumps ``organizations.redis_epoch`` and writes
    ``<new epoch>:<replid>`` after rebuilding the org; a current one is left."""
    from sqlalchemy import select

    from server.adapters.db.schema import organizations
    from server.service import background

    org = stack.new_org(concurrency_limit=5)
    state = stack.ctx.redis_state

    async def epoch() -> int:
        async with stack.ctx.engine.connect() as conn:
            return int((await conn.execute(
                select(organizations.c.redis_epoch).where(organizations.c.id == org.org_id))).scalar_one())

    async def scenario() -> list:
        out = []
        await background.rebuild_stale_orgs(stack.ctx)  # every org gets a current marker
        e1 = await epoch()
        marker, replid = (await state.org_markers([org.org_id]))[org.org_id]
        out.append(marker == f"{e1}:{replid}")
        out.append(org.org_id in await background.rebuild_stale_orgs(stack.ctx))  # current: left alone
        await state.redis.set(keys.org_marker(org.org_id), f"{e1}:someothernodesreplid")  # a failover
        await state.redis.hdel(keys.org_config(org.org_id), "limit")  # ... that lost a write
        out.append(org.org_id in await background.rebuild_stale_orgs(stack.ctx))
        e2 = await epoch()
        marker, replid = (await state.org_markers([org.org_id]))[org.org_id]
        out += [e2 == e1 + 1, marker == f"{e2}:{replid}",
                await state.redis.hget(keys.org_config(org.org_id), "limit")]
        return out

    assert stack.run(scenario()) == [True, False, True, True, True, b"5"]
