"""A leader lease in Redis: one server replica at a time runs the
background duties (server/service/background.py).

``SET key holder NX PX ttl`` takes the lease; the holder renews it every
``ttl / 3`` from its own task (so a long duty does not let it lapse) and
deletes it on a clean stop (so another replica takes over at once, not one
TTL later). A replica that dies (kill -9) holds it at most ``ttl`` more.
``held`` is true only while the last successful renewal is younger than
the TTL by this process's monotonic clock, so a replica cut off from Redis
stops acting as leader before another one can take over (a margin of one
renewal interval against clock drift). Renew and release are
compare-and-set Lua scripts on one key: a replica never extends or deletes
another's lease. One key, single-key commands: Redis Cluster safe.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

_ACQUIRE_OR_RENEW = """
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if cur then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def default_holder() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class LeaderLease:
    def __init__(self, redis: Any, key: str, ttl_seconds: float, *, holder: str = "",
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        if ttl_seconds <= 0:
            raise ValueError("leader lease ttl must be > 0")
        self.redis = redis
        self.key = key
        self.ttl_seconds = ttl_seconds
        self.holder = holder or default_holder()
        self._monotonic = monotonic
        self._renewed_at: float | None = None
        self._acquire = redis.register_script(_ACQUIRE_OR_RENEW)
        self._release = redis.register_script(_RELEASE)

    @property
    def held(self) -> bool:
        return self._renewed_at is not None and self._monotonic() - self._renewed_at < self.ttl_seconds

    async def try_hold(self) -> bool:
        """Take the lease if free, renew it if ours; True while we hold it."""
        t0 = self._monotonic()
        was = self.held
        try:
            got = int(await self._acquire(keys=[self.key], args=[self.holder, int(self.ttl_seconds * 1000)]))
        except Exception as exc:  # noqa: BLE001 - Redis away: keep what we had until it lapses
            log.warning("leader lease %s not renewed: %r", self.key, exc)
            return self.held
        if got:
            self._renewed_at = t0  # measured from before the call: conservative
        else:
            self._renewed_at = None
        if got and not was:
            log.info("leader lease %s taken by %s", self.key, self.holder)
        elif was and not got:
            log.warning("leader lease %s lost by %s", self.key, self.holder)
        return bool(got)

    async def keep(self, stop: asyncio.Event) -> None:
        """Try to take / renew every ttl/3 until ``stop``; then release."""
        try:
            while not stop.is_set():
                await self.try_hold()
                try:
                    await asyncio.wait_for(stop.wait(), timeout=self.ttl_seconds / 3)
                except TimeoutError:
                    pass
        finally:
            await self.release()

    async def release(self) -> None:
        if self._renewed_at is None:
            return
        self._renewed_at = None
        try:
            await self._release(keys=[self.key], args=[self.holder])
        except Exception as exc:  # noqa: BLE001 - it lapses by itself
            log.warning("leader lease %s not released: %r", self.key, exc)
