"""Issue 15 item 4: background work runs exactly once across server
replicas. The leader lease (server/service/leader.py) on the embedded Redis,
then three in-process replicas (the session server and two more) on one
PostgreSQL and Redis: a scheduled batch starts once (one RUNNING
transition, one event) and the reconciler rebuilds Redis once after the
state marker is lost, and once after a FLUSHALL (which takes the lease key
too)."""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import redis as sync_redis
from batchcalls.v1 import batch_service_pb2 as pb
from batchcalls.v1 import resources_pb2 as res
from google.protobuf.timestamp_pb2 import Timestamp

from contract import keys
from server.domain.batch_rules import BatchStatus
from server.service import events, lifecycle
from server.service.leader import LeaderLease
from tests.support.api import stub
from tests.support.dialing import create, wait_status
from tests.support.stack import Stack


def test_leader_lease_one_holder_and_failover(embedded):
    import redis.asyncio as aioredis

    async def scenario() -> None:
        r = aioredis.from_url(embedded.redis_url)
        key = f"bc:test-lease-{uuid.uuid4().hex}"
        try:
            a = LeaderLease(r, key, 0.5, holder="a")
            b = LeaderLease(r, key, 0.5, holder="b")
            assert await a.try_hold() and a.held
            assert not await b.try_hold() and not b.held
            assert await a.try_hold(), "the holder renews"
            # a dies without releasing (kill -9): b takes over once the TTL lapses.
            t0 = time.monotonic()
            while not await b.try_hold():
                await asyncio.sleep(0.02)
            assert 0.3 < time.monotonic() - t0 < 1.0
            assert not await a.try_hold() and not a.held, "a lapsed holder does not take it back"
            await a.release()  # not ours: must not delete b's lease
            assert (await r.get(key)) == b"b"
            await b.release()  # a clean stop frees it at once
            assert await a.try_hold()
        finally:
            await r.delete(key)
            await r.aclose()

    asyncio.run(scenario())


def test_leader_lease_held_lapses_without_redis():
    """Cut off from Redis, a holder stops acting as leader within the TTL."""
    now = [0.0]

    class DeadRedis:
        def register_script(self, _src):
            async def call(**_kw):
                raise ConnectionError("redis away")
            return call

    class OkRedis:
        def register_script(self, _src):
            async def call(**_kw):
                return 1
            return call

    lease = LeaderLease(OkRedis(), "k", 3.0, monotonic=lambda: now[0])
    assert asyncio.run(lease.try_hold())
    lease.redis = None
    lease._acquire = DeadRedis().register_script("")
    now[0] = 2.0
    assert asyncio.run(lease.try_hold()), "still within the TTL"
    now[0] = 3.1
    assert not asyncio.run(lease.try_hold()) and not lease.held


@pytest.fixture()
def replicas(embedded, stack):
    """Two more server replicas in-process (own loop thread each) on the
    session stack's PostgreSQL and Redis: three in all."""
    started: list[Stack] = []
    for _ in range(2):
        s = Stack(database_url=embedded.database_url, redis_url=embedded.redis_url,
                  service_token=secrets.token_urlsafe(24))
        s.env = {"DATABASE_URL": s.database_url, "REDIS_URL": s.redis_url,
                 "BATCHCALLS_SERVICE_TOKEN": s.service_token}
        s.start_server({"scheduler_interval_seconds": 0.1, "reconcile_interval_seconds": 0.5,
                        "leader_ttl_seconds": 1.0, "validation_workers": 1})
        started.append(s)
    yield [stack, *started]
    for s in started:
        s.stop()


def test_scheduler_and_rebuild_run_once_across_replicas(stack, replicas, monkeypatch):
    lock = threading.Lock()
    transitions: Counter[str] = Counter()
    published: list[tuple[str, str]] = []
    rebuilds: list[int] = []

    real_try_start = lifecycle.try_start
    real_publish = events.publish

    async def counting_try_start(ctx, org_id, batch_id, **kw):
        new = await real_try_start(ctx, org_id, batch_id, **kw)
        if new == BatchStatus.RUNNING.value:
            with lock:
                transitions[batch_id] += 1
        return new

    async def counting_publish(ctx, org_id, batch_id, *evs):
        with lock:
            published.extend((batch_id, e.get("status", "")) for e in evs if e.get("type") == "batch")
        return await real_publish(ctx, org_id, batch_id, *evs)

    monkeypatch.setattr(lifecycle, "try_start", counting_try_start)
    monkeypatch.setattr(events, "publish", counting_publish)
    for i, replica in enumerate(replicas):
        state = replica.ctx.redis_state
        real_rebuild = state.rebuild

        async def counting_rebuild(*a, _real=real_rebuild, _i=i, **kw):
            with lock:
                rebuilds.append(_i)
            return await _real(*a, **kw)

        monkeypatch.setattr(state, "rebuild", counting_rebuild)

    # --- the scheduler: one RUNNING transition, one event ----------------------
    org = stack.new_org(concurrency_limit=2)
    ts = Timestamp()
    ts.FromDatetime(datetime.now(UTC) + timedelta(seconds=1.5))
    batch = create(stack, org, ["+14155550100", "+14155550101"], scheduled_start_time=ts)
    assert batch.status == res.BATCH_STATUS_SCHEDULED
    wait_status(stack, org, batch.name, {res.BATCH_STATUS_RUNNING}, timeout=20)
    time.sleep(1.5)  # every replica had several ticks past the instant
    running = [s for b, s in published if b == batch.batch_id and s == BatchStatus.RUNNING.value]
    print(f"\nscheduler: RUNNING transitions {transitions[batch.batch_id]}, RUNNING events {len(running)}")
    assert transitions[batch.batch_id] == 1
    assert len(running) == 1

    # --- the reconciler: one rebuild after the marker is lost ------------------
    r = sync_redis.Redis.from_url(stack.redis_url)
    try:
        for loss in ("marker deleted", "flushall"):
            rebuilds.clear()
            if loss == "flushall":
                r.flushall()
            else:
                r.delete(keys.STATE_MARKER)
            deadline = time.monotonic() + 20
            while not r.exists(keys.STATE_MARKER):
                assert time.monotonic() < deadline, "no replica rebuilt Redis"
                time.sleep(0.05)
            time.sleep(1.5)  # the other replicas' ticks (and lease TTLs) pass
            print(f"rebuild after {loss}: {len(rebuilds)} rebuild(s), by replica {rebuilds}")
            assert len(rebuilds) == 1, rebuilds
        with stack.channel() as ch:
            stub(ch).CancelBatch(pb.CancelBatchRequest(name=batch.name), metadata=org.md())
    finally:
        r.close()
