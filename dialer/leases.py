"""Client side of the lease scripts (``server/adapters/redis/lua``).

A lease is one concurrency slot: a member (the lease id) of the
organization's lease zset AND of the batch's lease zset, scored by its
expiry in epoch milliseconds, plus an info hash that tells a reaper what
the lease guards (see ``server.adapters.redis.keys.lease_info``).

- ``claim``        claim.lua: both limits checked, one due contact taken, a
                   fencing token drawn, the lease added to both zsets.
- ``attach``       attach.lua: the granted attempt is written on the lease,
                   only while the lease is held (the dialer dials only then).
- ``end_call``     end_call.lua: the call is over at the provider; the slots
                   are given back at once and the lease waits in the org's
                   ended zset (no slot) until its outcome is recorded.
- ``renew_many``   renew.lua per lease, pipelined (ZADD XX: never re-creates;
                   renews an ended lease in the ended zset).
- ``release``      release.lua: ZREM from both slot zsets and the ended zset
                   + DEL info, optionally re-queueing the contact.
- ``list_expired`` ZRANGEBYSCORE -inf now on the org zset + HGETALL infos;
  ``list_expired_ended`` the same on the org's ended zset.

Why a lease may give its slots back before FinishAttempt is answered
(``end_call``): the limits count calls live at the provider (DESIGN.md §5,
invariant 3), and the call is over. The contact itself stays DIALING /
CONNECTED with its attempt open in Postgres, out of the ready queue, until
FinishAttempt; only the release after it re-queues it; so StartAttempt's
conditional update refuses any other claim of it meanwhile (invariant 2).

The dialer reuses the Redis key layout and scripts of ``server.adapters.redis``
(pure data + Lua, no database code).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from server.adapters.redis import keys
from server.adapters.redis.scripts import Scripts

#: Safety TTL of a lease info hash (refreshed by every renew). Far above any
#: call length: a reaper needs the info as long as the lease is in the zsets.
DEFAULT_INFO_TTL_MS = 24 * 3600 * 1000

MISS_REASONS = ("org_unconfigured", "inactive", "org_full", "batch_full", "empty", "not_due")


def _s(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return str(value)


@dataclass(frozen=True)
class Claim:
    """A contact taken from a batch's ready queue under a fresh lease."""

    org_id: str
    batch_id: str
    contact_id: str
    fencing_token: int
    lease_id: str
    provider_call_id: str
    due_ms: int
    claimed_ms: int


@dataclass(frozen=True)
class ClaimMiss:
    """No claim: ``reason`` is one of MISS_REASONS; ``next_due_ms`` for not_due."""

    reason: str
    next_due_ms: int | None = None


@dataclass(frozen=True)
class LeaseRecord:
    """One lease as a reaper sees it."""

    org_id: str
    lease_id: str
    expiry_ms: int
    info: dict[str, str] = field(default_factory=dict)

    @property
    def batch_id(self) -> str:
        return self.info.get("batch", "")

    @property
    def contact_id(self) -> str:
        return self.info.get("contact", "")

    @property
    def fencing_token(self) -> int:
        return int(self.info.get("token") or 0)

    @property
    def dialer_id(self) -> str:
        return self.info.get("dialer", "")

    @property
    def attempt_id(self) -> str:
        return self.info.get("attempt_id", "")

    @property
    def provider_call_id(self) -> str:
        return self.info.get("provider_call_id", "")

    @property
    def claimed_ms(self) -> int:
        return int(float(self.info.get("claimed_ms") or 0))

    @property
    def started_ms(self) -> int:
        return int(float(self.info.get("started_ms") or self.info.get("claimed_ms") or 0))

    @property
    def max_call_ms(self) -> int:
        return int(float(self.info.get("max_call_ms") or 0))

    @property
    def trunk_json(self) -> str:
        return self.info.get("trunk", "")

    @property
    def ended_ms(self) -> int:
        """When its dialer learned that the call was over (end_call.lua); 0
        while the call may be live."""
        return int(float(self.info.get("ended_ms") or 0))


class LeaseClient:
    """Lease operations of one dialer against one Redis (or Redis Cluster)."""

    def __init__(
        self,
        redis: Any,
        *,
        dialer_id: str,
        lease_ttl_ms: int,
        clock: Callable[[], float] = time.time,
        info_ttl_ms: int = DEFAULT_INFO_TTL_MS,
    ) -> None:
        self.redis = redis
        self.scripts = Scripts(redis)
        self.dialer_id = dialer_id
        self.lease_ttl_ms = int(lease_ttl_ms)
        self.info_ttl_ms = int(info_ttl_ms)
        self._clock = clock

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    # -- global, single-key reads -------------------------------------------------

    async def state_present(self) -> bool:
        return bool(await self.redis.exists(keys.STATE_MARKER))

    async def active_orgs(self) -> set[str]:
        return {_s(m) for m in await self.redis.smembers(keys.ACTIVE_ORGS)}

    async def lease_orgs(self) -> set[str]:
        return {_s(m) for m in await self.redis.smembers(keys.LEASE_ORGS)}

    async def note_released_unattached(self, org_id: str, lease_id: str) -> None:
        """Tombstone for a lease released without a grant recorded on it: if
        the server granted an attempt under it anyway (the reply was lost),
        its reconciler closes that attempt as never dialed."""
        await self.redis.zadd(keys.released_unattached(org_id), {lease_id: self.now_ms()})

    async def note_lease_orgs(self, org_ids: Iterable[str]) -> None:
        org_ids = list(org_ids)
        if org_ids:
            await self.redis.sadd(keys.LEASE_ORGS, *org_ids)

    async def _lease_count(self, org_id: str) -> int:
        """Slot-holding leases + ended leases awaiting their outcome."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zcard(keys.org_leases(org_id))
            pipe.zcard(keys.org_ended(org_id))
            held, ended = await pipe.execute()
        return int(held) + int(ended)

    async def forget_lease_org_if_empty(self, org_id: str) -> bool:
        """SREM an org from LEASE_ORGS when its lease zset and its ended zset
        are both empty (re-added at once if a claim raced in). An ended lease
        whose dialer died must still be found by a reaper, so it keeps its
        org in LEASE_ORGS. Returns True when forgotten."""
        if await self._lease_count(org_id):
            return False
        await self.redis.srem(keys.LEASE_ORGS, org_id)
        if await self._lease_count(org_id):
            await self.redis.sadd(keys.LEASE_ORGS, org_id)
            return False
        return True

    # -- round-robin ring ----------------------------------------------------------

    async def rotate_ring(self, org_id: str) -> list[str]:
        """Rotate the org's ring of running batches by one (LMOVE on itself)
        and return its order starting at the new head, so each pass (of any
        dialer) starts at a different batch."""
        ring = keys.org_running(org_id)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.lmove(ring, ring, "LEFT", "RIGHT")
            pipe.lrange(ring, 0, -1)
            _, members = await pipe.execute()
        return [_s(m) for m in members]

    # -- leases --------------------------------------------------------------------

    async def claim(
        self,
        org_id: str,
        batch_id: str,
        *,
        lease_id: str | None = None,
        provider_call_id: str | None = None,
    ) -> Claim | ClaimMiss:
        lease_id = lease_id or uuid.uuid4().hex
        provider_call_id = provider_call_id or uuid.uuid4().hex
        now = self.now_ms()
        reply = await self.scripts.claim(
            keys=[
                keys.org_config(org_id),
                keys.org_leases(org_id),
                keys.batch_meta(org_id, batch_id),
                keys.batch_leases(org_id, batch_id),
                keys.batch_ready(org_id, batch_id),
                keys.fence_counter(org_id),
                keys.lease_info(org_id, lease_id),
            ],
            args=[now, self.lease_ttl_ms, lease_id, batch_id, self.dialer_id, provider_call_id, self.info_ttl_ms],
        )
        status = _s(reply[0])
        if status == "ok":
            return Claim(
                org_id=org_id,
                batch_id=batch_id,
                contact_id=_s(reply[1]),
                fencing_token=int(reply[2]),
                lease_id=lease_id,
                provider_call_id=provider_call_id,
                due_ms=int(float(_s(reply[3]))),
                claimed_ms=now,
            )
        if status == "not_due":
            return ClaimMiss(status, int(float(_s(reply[1]))))
        return ClaimMiss(status)

    async def attach(
        self,
        org_id: str,
        lease_id: str,
        *,
        attempt_id: str,
        started_ms: int,
        max_call_ms: int,
        trunk_json: str,
    ) -> bool:
        reply = await self.scripts.attach(
            keys=[keys.org_leases(org_id), keys.lease_info(org_id, lease_id)],
            args=[lease_id, attempt_id, int(started_ms), int(max_call_ms), trunk_json, self.info_ttl_ms],
        )
        return int(reply) == 1

    async def end_call(self, org_id: str, batch_id: str, lease_id: str) -> bool:
        """The call under this lease is over at the provider: free its slots
        now, keep it (no slot) in the org's ended zset until its release.
        True when ended (or already), False when the lease is not held (lost
        or released): then the slots are freed by the release, as before."""
        now = self.now_ms()
        reply = await self.scripts.end_call(
            keys=self._end_call_keys(org_id, batch_id, lease_id),
            args=[lease_id, now, now + self.lease_ttl_ms, self.info_ttl_ms],
        )
        return int(reply) == 1

    @staticmethod
    def _end_call_keys(org_id: str, batch_id: str, lease_id: str) -> list[str]:
        return [
            keys.org_leases(org_id),
            keys.batch_leases(org_id, batch_id),
            keys.org_ended(org_id),
            keys.lease_info(org_id, lease_id),
        ]

    async def renew_many(self, leases: Iterable[tuple[str, str, str]]) -> dict[str, bool]:
        """Renew ``(org_id, batch_id, lease_id)`` leases to now + ttl, in one
        pipeline. Returns lease id -> still held."""
        leases = list(leases)
        if not leases:
            return {}
        expiry = self.now_ms() + self.lease_ttl_ms
        async with self.redis.pipeline(transaction=False) as pipe:
            for org_id, batch_id, lease_id in leases:
                await self.scripts.renew(
                    keys=[
                        keys.org_leases(org_id),
                        keys.batch_leases(org_id, batch_id),
                        keys.lease_info(org_id, lease_id),
                        keys.org_ended(org_id),
                    ],
                    args=[lease_id, expiry, self.info_ttl_ms],
                    client=pipe,
                )
            replies = await pipe.execute()
        return {lease_id: int(r) == 1 for (_, _, lease_id), r in zip(leases, replies)}

    async def renew(self, org_id: str, batch_id: str, lease_id: str) -> bool:
        return (await self.renew_many([(org_id, batch_id, lease_id)]))[lease_id]

    async def release(
        self,
        org_id: str,
        batch_id: str,
        lease_id: str,
        *,
        requeue_contact: str = "",
        requeue_due_ms: int = 0,
        requeue_mode: str = "nx",
        only_unattached: bool = False,
    ) -> int:
        """1 released (from the slot zsets or the ended zset), 0 already
        gone, -1 refused (only_unattached and an attempt is attached)."""
        reply = await self.scripts.release(
            keys=[
                keys.org_leases(org_id),
                keys.batch_leases(org_id, batch_id),
                keys.lease_info(org_id, lease_id),
                keys.batch_meta(org_id, batch_id),
                keys.batch_ready(org_id, batch_id),
                keys.org_ended(org_id),
            ],
            args=[
                lease_id,
                "1" if only_unattached else "0",
                requeue_contact,
                int(requeue_due_ms),
                "set" if requeue_mode == "set" else "nx",
            ],
        )
        return int(reply)

    async def drop_ended(self, org_id: str, lease_id: str) -> None:
        """Forget an ended lease that has nothing left to close (no info or
        no attempt): it holds no slot, so only the ended zset and the info
        hash are cleared."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrem(keys.org_ended(org_id), lease_id)
            pipe.delete(keys.lease_info(org_id, lease_id))
            await pipe.execute()

    async def lease_present(self, org_id: str, lease_id: str) -> bool:
        return await self.redis.zscore(keys.org_leases(org_id), lease_id) is not None

    async def list_expired(self, org_id: str, *, limit: int = 500) -> list[LeaseRecord]:
        """Slot-holding leases of the org whose expiry is before now, with
        their info."""
        return await self._list_expired(org_id, keys.org_leases(org_id), limit)

    async def list_expired_ended(self, org_id: str, *, limit: int = 500) -> list[LeaseRecord]:
        """Ended leases (call over, outcome not recorded, no slot) of the org
        whose expiry is before now: their dialer died before FinishAttempt
        was answered."""
        return await self._list_expired(org_id, keys.org_ended(org_id), limit)

    async def _list_expired(self, org_id: str, zset: str, limit: int) -> list[LeaseRecord]:
        now = self.now_ms()
        members = await self.redis.zrangebyscore(zset, "-inf", f"({now}", start=0, num=limit, withscores=True)
        if not members:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for lease_id, _ in members:
                pipe.hgetall(keys.lease_info(org_id, _s(lease_id)))
            infos = await pipe.execute()
        return [
            LeaseRecord(
                org_id=org_id,
                lease_id=_s(lease_id),
                expiry_ms=int(score),
                info={_s(k): _s(v) for k, v in (info or {}).items()},
            )
            for (lease_id, score), info in zip(members, infos)
        ]

    async def org_usage(self, org_id: str) -> tuple[int, int | None]:
        """(leases in use, org limit or None)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zcard(keys.org_leases(org_id))
            pipe.hget(keys.org_config(org_id), "limit")
            used, limit = await pipe.execute()
        return int(used), (int(_s(limit)) if limit is not None else None)

    # -- locks ---------------------------------------------------------------------

    async def try_lock(self, key: str, token: str, ttl_ms: int) -> bool:
        return bool(await self.redis.set(key, token, nx=True, px=int(ttl_ms)))

    async def unlock(self, key: str, token: str) -> bool:
        return int(await self.scripts.unlock(keys=[key], args=[token])) == 1
