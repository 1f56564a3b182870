"""Client side of the lease scripts (``contract/lua``).

A lease is one concurrency slot: a member (the lease id) of the
organization's lease zset AND of the batch's lease zset, scored by its
expiry in epoch milliseconds, plus an info hash that tells a reaper what
the lease guards (``contract.keys.lease_info``, ``contract.lease``). A
reservation (grant ahead) is a lease in the org's reserved zset instead,
holding no slot until it is activated; an ended lease waits, slot-free, in
the org's ended zset for its outcome (docs/design.md §5, the lease life).

- ``claim_many``   claim.lua: both limits checked, up to N due contacts of
                   one batch taken, a fencing token drawn for each, each
                   lease added to both zsets (``claim``: N = 1); with
                   ``reserve=True`` to the reserved zset instead.
- ``begin_org_round`` one round trip: rotate the org's ring, read it, the
                   org's slots in use and limit, and note the org in
                   LEASE_ORGS (before any of its claims); ``claim_context``
                   does the same for the orgs of the previous round in the
                   round trip that reads the marker and ACTIVE_ORGS.
- ``attach``       attach.lua: the granted attempt is written on the lease,
                   only while the lease is held (the dialer dials only then).
- ``activate``     activate.lua: a reservation takes its slots (both limits
                   checked) right before its call.
- ``end_call``     end_call.lua: the call is over at the provider; the slots
                   are given back at once and the lease waits in the org's
                   ended zset (no slot) until its outcome is recorded. It
                   returns the start of the org's next claim round (ring
                   rotated, free slots), so the freed slot is refilled with
                   no other round trip before the claim, and may hand the
                   slot to a waiting reservation in the same call.
- ``renew_many``   renew.lua per lease, pipelined (ZADD XX: never re-creates;
                   renews the lease wherever it is: slot, ended or reserved
                   zset).
- ``release``      release.lua: ZREM from both slot zsets, the ended zset and
                   the reserved zset + DEL info, optionally re-queueing the
                   contact (``RequeueMode``).
- ``list_expired`` ZRANGEBYSCORE -inf now on the org zset + HGETALL infos;
  ``list_expired_ended`` / ``list_expired_reserved`` the same on the org's
  ended / reserved zset.

Why a lease may give its slots back before FinishAttempt is answered
(``end_call``): the limits count calls live at the provider (docs/design.md §5,
invariant 3), and the call is over. The contact itself stays DIALING /
CONNECTED with its attempt open in Postgres, out of the ready queue, until
FinishAttempt; only the release after it re-queues it; so StartAttempt's
conditional update refuses any other claim of it meanwhile (invariant 2).

Round trips: ``claim_many``, ``attach``, ``activate``, ``end_call``,
``release``, ``renew_many`` and the claim rounds' plain commands
(``claim_context``, ``begin_org_round``) go through a ``ScriptBatcher``
(``dialer.script_batcher``), a group commit on a connection of its own:
while one round trip is in flight, new calls accumulate and leave together
in the next one; each caller awaits its own reply. Under load one round
trip serves many calls; idle, a call costs one round trip. Each script
keeps its own guarantees (attach only while held, release semantics,
re-queue modes): a pipeline is only a transport, every script still runs
atomically on its own.

The key layout, the Lua scripts and the lease record are the Redis
contract shared with the server (``contract``).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from contract import keys
from contract.lease import LEASE_INFO_TTL_MS, LeaseRecord
from contract.scripts import Scripts
from dialer.lease_replies import (
    Activation,
    Claim,
    ClaimBatch,
    ClaimMiss,
    ClaimStop,
    OrgRound,
    RequeueMode,
)
from dialer.script_batcher import ScriptBatcher

__all__ = [
    "Activation",
    "Claim",
    "ClaimBatch",
    "ClaimMiss",
    "ClaimStop",
    "LeaseClient",
    "OrgRound",
    "RequeueMode",
]


def _s(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return str(value)


class LeaseClient:
    """Lease operations of one dialer against one Redis (or Redis Cluster)."""

    def __init__(
        self,
        redis: Any,
        *,
        dialer_id: str,
        lease_ttl_ms: int,
        clock: Callable[[], float] = time.time,
        info_ttl_ms: int = LEASE_INFO_TTL_MS,
        org_markers: bool | None = None,
    ) -> None:
        self.redis = redis
        self.scripts = Scripts(redis)
        self.batcher = ScriptBatcher(redis)
        #: Check the per-org state marker inside claim.lua / activate.lua /
        #: end_call.lua (its key rides along; no extra round trip). On by
        #: default on a Redis Cluster (failover without loss,
        #: docs/recovery.md); a single Redis relies on the global marker.
        self.org_markers = self.batcher.cluster if org_markers is None else bool(org_markers)
        self.dialer_id = dialer_id
        self.lease_ttl_ms = int(lease_ttl_ms)
        self.info_ttl_ms = int(info_ttl_ms)
        self._clock = clock

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    # -- global, single-key reads -------------------------------------------------

    async def state_present(self) -> bool:
        return bool(await self.redis.exists(keys.STATE_MARKER))

    async def claim_context(
        self, known_orgs: Sequence[str] = (), note_orgs: Sequence[str] = ()
    ) -> tuple[bool, set[str], dict[str, OrgRound]]:
        """What a claim round needs first, in one round trip: whether the
        state marker exists, ACTIVE_ORGS, and the start of a round
        (``begin_org_round``, without its SADD) for each of ``known_orgs``
        (the active orgs of the previous round, the usual case); and SADD
        ``note_orgs`` to LEASE_ORGS. An org of ACTIVE_ORGS missing from the
        returned rounds needs its own ``begin_org_round``."""
        known = list(known_orgs)
        commands: list[tuple[Any, ...]] = [("EXISTS", keys.STATE_MARKER), ("SMEMBERS", keys.ACTIVE_ORGS)]
        for org_id in known:
            commands += self._org_round_commands(org_id)
        if note_orgs:
            commands.append(("SADD", keys.LEASE_ORGS, *note_orgs))
        replies = await self.batcher.commands(commands)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        rounds = {org_id: self._org_round(replies[2 + 4 * i: 6 + 4 * i]) for i, org_id in enumerate(known)}
        return bool(replies[0]), {_s(m) for m in replies[1]}, rounds

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
        """Slot-holding leases + ended leases awaiting their outcome +
        reservations (granted ahead, no slot yet)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zcard(keys.org_leases(org_id))
            pipe.zcard(keys.org_ended(org_id))
            pipe.zcard(keys.org_reserved(org_id))
            held, ended, reserved = await pipe.execute()
        return int(held) + int(ended) + int(reserved)

    async def forget_lease_org_if_empty(self, org_id: str) -> bool:
        """SREM an org from LEASE_ORGS when its lease zset, its ended zset
        and its reserved zset are all empty (re-added at once if a claim
        raced in). An ended lease or a reservation whose dialer died must
        still be found by a reaper, so either keeps its org in LEASE_ORGS.
        Returns True when forgotten."""
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

    async def begin_org_round(self, org_id: str) -> OrgRound:
        """One pipeline: rotate the org's ring by one (LMOVE on itself, so
        each round of any dialer starts at another batch), read it, read the
        org's slots in use and limit, and SADD the org to LEASE_ORGS, so a
        reaper watches it before any lease of this round exists (also if
        its batches stop running meanwhile)."""
        replies = await self.batcher.commands([*self._org_round_commands(org_id), ("SADD", keys.LEASE_ORGS, org_id)])
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return self._org_round(replies[:4])

    @staticmethod
    def _org_round_commands(org_id: str) -> list[tuple[Any, ...]]:
        """The four commands of a round's start (see ``_org_round``)."""
        ring = keys.org_running(org_id)
        return [
            ("LMOVE", ring, ring, "LEFT", "RIGHT"),
            ("LRANGE", ring, 0, -1),
            ("ZCARD", keys.org_leases(org_id)),
            ("HGET", keys.org_config(org_id), "limit"),
        ]

    @staticmethod
    def _org_round(replies: Sequence[Any]) -> OrgRound:
        _, members, used, limit = replies
        free = int(_s(limit)) - int(used) if limit is not None else None
        return OrgRound([_s(m) for m in members], free)

    # -- leases --------------------------------------------------------------------

    async def claim(
        self,
        org_id: str,
        batch_id: str,
        *,
        lease_id: str | None = None,
        provider_call_id: str | None = None,
    ) -> Claim | ClaimMiss:
        """One contact under one new lease, or why not."""
        got = await self.claim_many(
            org_id, batch_id, 1,
            lease_ids=[lease_id] if lease_id else None,
            provider_call_ids=[provider_call_id] if provider_call_id else None,
        )
        if got.claims:
            return got.claims[0]
        return ClaimMiss(got.stop, got.next_due_ms)

    async def claim_many(
        self,
        org_id: str,
        batch_id: str,
        n: int,
        *,
        lease_ids: Sequence[str] | None = None,
        provider_call_ids: Sequence[str] | None = None,
        reserve: bool = False,
    ) -> ClaimBatch:
        """Up to ``n`` due contacts of one batch, each under a new lease, in
        one claim.lua call (both limits checked for the group). ``reserve``:
        reservations instead (no slot, at most org-limit of them per org;
        each must go through ``activate`` before its call)."""
        n = max(1, int(n))
        lease_ids = list(lease_ids or [uuid.uuid4().hex for _ in range(n)])
        provider_call_ids = list(provider_call_ids or [uuid.uuid4().hex for _ in range(n)])
        if len(lease_ids) != n or len(provider_call_ids) != n:
            raise ValueError("one lease id and one provider call id per contact")
        now = self.now_ms()
        reply = await self.batcher.call(
            self.scripts.claim,
            [
                keys.org_config(org_id),
                keys.org_leases(org_id),
                keys.batch_meta(org_id, batch_id),
                keys.batch_leases(org_id, batch_id),
                keys.batch_ready(org_id, batch_id),
                keys.fence_counter(org_id),
                keys.org_reserved(org_id),
                *(keys.lease_info(org_id, lease_id) for lease_id in lease_ids),
                *([keys.org_marker(org_id)] if self.org_markers else []),
            ],
            [now, self.lease_ttl_ms, batch_id, self.dialer_id, self.info_ttl_ms, n,
             "reserve" if reserve else "slot", *lease_ids, *provider_call_ids],
        )
        stop = ClaimStop(_s(reply[0]))
        next_due = int(float(_s(reply[1]))) if stop is ClaimStop.NOT_DUE and reply[1] not in (b"", "") else None
        claims = [
            Claim(
                org_id=org_id,
                batch_id=batch_id,
                contact_id=_s(reply[i]),
                fencing_token=int(reply[i + 1]),
                lease_id=lease_ids[j],
                provider_call_id=provider_call_ids[j],
                due_ms=int(float(_s(reply[i + 2]))),
                claimed_ms=now,
                reserved=reserve,
            )
            for j, i in enumerate(range(3, len(reply), 3))
        ]
        return ClaimBatch(claims, stop, next_due, int(reply[2]))

    async def attach(
        self,
        org_id: str,
        lease_id: str,
        *,
        attempt_id: str,
        started_ms: int,
        max_call_ms: int,
        trunk_json: str,
        lazy: bool = False,
    ) -> bool:
        """``lazy``: no slot waits on it (a reservation, dialed only after
        its activate): it rides with the next round trip."""
        reply = await self.batcher.call(
            self.scripts.attach,
            [keys.org_leases(org_id), keys.lease_info(org_id, lease_id), keys.org_reserved(org_id)],
            [lease_id, attempt_id, int(started_ms), int(max_call_ms), trunk_json, self.info_ttl_ms],
            lazy=lazy,
        )
        return int(reply) == 1

    async def activate(self, org_id: str, batch_id: str, lease_id: str, *, lazy: bool = False) -> Activation:
        """A reservation takes its org and batch slots (activate.lua): OK
        (dial now), ORG_FULL / BATCH_FULL (wait), INACTIVE / LOST /
        ORG_UNCONFIGURED (do not dial). ``lazy``: rides with the next round
        trip (the org is known to be full)."""
        reply = await self.batcher.call(
            self.scripts.activate,
            [
                keys.org_config(org_id),
                keys.org_leases(org_id),
                keys.batch_meta(org_id, batch_id),
                keys.batch_leases(org_id, batch_id),
                keys.org_reserved(org_id),
                keys.lease_info(org_id, lease_id),
                keys.org_running(org_id),
                keys.org_waiting(org_id),
                *([keys.org_marker(org_id)] if self.org_markers else []),
            ],
            [lease_id, self.now_ms() + self.lease_ttl_ms, self.info_ttl_ms, self.now_ms(), batch_id],
            lazy=lazy,
        )
        return Activation(_s(reply))

    async def end_call(
        self,
        org_id: str,
        batch_id: str,
        lease_id: str,
        *,
        then_activate: tuple[str, str] | None = None,
        hand_off_scan: int = 0,
        then_pace: tuple[str, list[Any]] | None = None,
    ) -> OrgRound | None:
        """The call under this lease is over at the provider: free its slots
        now, keep it (no slot) in the org's ended zset until its release.
        Returns the start of the org's next claim round (ring rotated by
        one, free slots; ``org_free`` None when the org has no limit
        configured) when ended (or already), None when the lease is not
        held (lost or released) or carries no attempt: then its slots, if
        it still holds any, are freed by its release.
        ``then_activate=(lease id, batch id)``: hand the freed slot to that
        reservation in the same round trip (``activation`` says whether it
        took it); failing that, to the oldest of the org's waiting
        reservations of any dialer, trying at most ``hand_off_scan`` of them
        (``handed_to`` names the one that took it; its dialer is told on
        its hand-off channel). ``then_pace=(trunk id, pace.lua ARGV)``: if
        ``then_activate`` takes the slot, its call's CPS cell is taken in
        the same script (``pace``: pace.lua's answer)."""
        now = self.now_ms()
        reply = await self.batcher.call(
            self.scripts.end_call,
            [
                keys.org_leases(org_id),
                keys.batch_leases(org_id, batch_id),
                keys.org_ended(org_id),
                keys.lease_info(org_id, lease_id),
                keys.org_running(org_id),
                keys.org_config(org_id),
                keys.org_reserved(org_id),
                keys.org_waiting(org_id),
                *([keys.org_marker(org_id)] if self.org_markers else []),
            ],
            [lease_id, now, now + self.lease_ttl_ms, self.info_ttl_ms,
             *(then_activate if then_activate else ("", "")),
             int(hand_off_scan), keys.DIALER_HANDOFFS,
             *((then_pace[0], *then_pace[1]) if then_pace and then_activate else ())],
        )
        if int(reply[0]) != 1:
            return None
        free = int(reply[1])
        pace_status = _s(reply[4])
        return OrgRound([_s(m) for m in reply[7:]], free if free >= 0 else None, Activation(_s(reply[2])),
                        handed_to=_s(reply[3]),
                        pace=(pace_status, int(reply[5]), int(reply[6])) if pace_status else None)

    async def renew_many(self, leases: Iterable[tuple[str, str, str]]) -> dict[str, bool]:
        """Renew ``(org_id, batch_id, lease_id)`` leases to now + ttl, in one
        pipeline. Returns lease id -> still held."""
        leases = list(leases)
        if not leases:
            return {}
        expiry = self.now_ms() + self.lease_ttl_ms
        replies = await asyncio.gather(*(
            self.batcher.call(
                self.scripts.renew,
                [
                    keys.org_leases(org_id),
                    keys.batch_leases(org_id, batch_id),
                    keys.lease_info(org_id, lease_id),
                    keys.org_ended(org_id),
                    keys.org_reserved(org_id),
                ],
                [lease_id, expiry, self.info_ttl_ms],
                lazy=True,
            )
            for org_id, batch_id, lease_id in leases
        ))
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
        requeue_mode: RequeueMode = RequeueMode.KEEP_EXISTING,
        only_unattached: bool = False,
        lazy: bool = False,
    ) -> int:
        """1 released (from the slot zsets or the ended zset), 0 already
        gone, -1 refused (only_unattached and an attempt is attached).
        ``lazy``: no slot waits on this release (end_call gave them back):
        it rides along with the next pipeline (``ScriptBatcher``)."""
        reply = await self.batcher.call(
            self.scripts.release,
            [
                keys.org_leases(org_id),
                keys.batch_leases(org_id, batch_id),
                keys.lease_info(org_id, lease_id),
                keys.batch_meta(org_id, batch_id),
                keys.batch_ready(org_id, batch_id),
                keys.org_ended(org_id),
                keys.org_reserved(org_id),
                keys.org_waiting(org_id),
            ],
            [
                lease_id,
                "1" if only_unattached else "0",
                requeue_contact,
                int(requeue_due_ms),
                RequeueMode.SET.value if requeue_mode == RequeueMode.SET else RequeueMode.KEEP_EXISTING.value,
            ],
            lazy=lazy,
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

    async def list_expired(self, org_id: str, *, limit: int = 500) -> list[LeaseRecord]:
        """Slot-holding leases of the org whose expiry is before now, with
        their info."""
        return await self._list_expired(org_id, keys.org_leases(org_id), limit)

    async def list_expired_ended(self, org_id: str, *, limit: int = 500) -> list[LeaseRecord]:
        """Ended leases (call over, outcome not recorded, no slot) of the org
        whose expiry is before now: their dialer died before FinishAttempt
        was answered."""
        return await self._list_expired(org_id, keys.org_ended(org_id), limit)

    async def list_expired_reserved(self, org_id: str, *, limit: int = 500) -> list[LeaseRecord]:
        """Reservations (granted ahead, never given a slot, so never dialed)
        of the org whose expiry is before now: their dialer died."""
        return await self._list_expired(org_id, keys.org_reserved(org_id), limit)

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

    async def org_usage(self, org_id: str) -> tuple[int, int | None, int]:
        """(slot-holding leases, org limit or None, ended leases awaiting
        their outcome)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zcard(keys.org_leases(org_id))
            pipe.hget(keys.org_config(org_id), "limit")
            pipe.zcard(keys.org_ended(org_id))
            used, limit, ended = await pipe.execute()
        return int(used), (int(_s(limit)) if limit is not None else None), int(ended)

    # -- locks ---------------------------------------------------------------------

    async def try_lock(self, key: str, token: str, ttl_ms: int) -> bool:
        return bool(await self.redis.set(key, token, nx=True, px=int(ttl_ms)))

    async def unlock(self, key: str, token: str) -> bool:
        return int(await self.scripts.unlock(keys=[key], args=[token])) == 1
