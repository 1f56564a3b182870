"""Client side of the lease scripts (``contract/lua``).

A lease is one concurrency slot: a member (the lease id) of the
organization's lease zset AND of the batch's lease zset, scored by its
expiry in epoch milliseconds, plus an info hash that tells a reaper what
the lease guards (see ``contract.keys.lease_info``).

- ``claim_many``   claim.lua: both limits checked, up to N due contacts of
                   one batch taken, a fencing token drawn for each, each
                   lease added to both zsets (``claim``: N = 1).
- ``begin_org_round`` one round trip: rotate the org's ring, read it, the
                   org's slots in use and limit, and note the org in
                   LEASE_ORGS (before any of its claims); ``claim_context``
                   does the same for the orgs of the previous round in the
                   round trip that reads the marker and ACTIVE_ORGS.
- ``attach``       attach.lua: the granted attempt is written on the lease,
                   only while the lease is held (the dialer dials only then).
- ``end_call``     end_call.lua: the call is over at the provider; the slots
                   are given back at once and the lease waits in the org's
                   ended zset (no slot) until its outcome is recorded. It
                   returns the start of the org's next claim round (ring
                   rotated, free slots), so the freed slot is refilled with
                   no other round trip before the claim.
- ``renew_many``   renew.lua per lease, pipelined (ZADD XX: never re-creates;
                   renews an ended lease in the ended zset).
- ``release``      release.lua: ZREM from both slot zsets and the ended zset
                   + DEL info, optionally re-queueing the contact.
- ``list_expired`` ZRANGEBYSCORE -inf now on the org zset + HGETALL infos;
  ``list_expired_ended`` the same on the org's ended zset.

Why a lease may give its slots back before FinishAttempt is answered
(``end_call``): the limits count calls live at the provider (docs/design.md §5,
invariant 3), and the call is over. The contact itself stays DIALING /
CONNECTED with its attempt open in Postgres, out of the ready queue, until
FinishAttempt; only the release after it re-queues it; so StartAttempt's
conditional update refuses any other claim of it meanwhile (invariant 2).

Round trips: ``claim_many``, ``attach``, ``end_call``, ``release``,
``renew_many`` and the claim rounds' plain commands (``claim_context``,
``begin_org_round``) go through a ``ScriptBatcher``, a group commit on a
connection of its own: while one round trip is in flight, new calls
accumulate and leave together in the next one; each caller awaits its own
reply. Under load one round trip serves many calls; idle, a call costs one
round trip as before. Each script keeps its own guarantees (attach only
while held, release semantics, re-queue modes): a pipeline is only a
transport, every script still runs atomically on its own.

The dialer reuses the Redis key layout and scripts of ``server.adapters.redis``
(pure data + Lua, no database code).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from contract import keys
from contract.lease import LEASE_INFO_TTL_MS, LeaseRecord
from contract.scripts import Scripts

#: Safety TTL of a lease info hash (refreshed by every renew). Far above any
#: call length: a reaper needs the info as long as the lease is in the zsets.
DEFAULT_INFO_TTL_MS = LEASE_INFO_TTL_MS

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
    #: A reservation (claim.lua "reserve"): no slot until ``activate``.
    reserved: bool = False


@dataclass(frozen=True)
class ClaimMiss:
    """No claim: ``reason`` is one of MISS_REASONS; ``next_due_ms`` for not_due."""

    reason: str
    next_due_ms: int | None = None


@dataclass(frozen=True)
class ClaimBatch:
    """What one claim.lua call gave: the claims (maybe none), why it stopped
    (``"ok"``: all N asked for were claimed, else a MISS_REASONS word), the
    due time of the next contact for ``"not_due"``, and the org's free slots
    left after these claims."""

    claims: list[Claim]
    stop: str
    next_due_ms: int | None
    org_free: int


@dataclass(frozen=True)
class OrgRound:
    """The start of one claim round over an organization: its ring of
    running batches (rotated by one), and its free slots (None when the org
    has no limit configured: state not built)."""

    ring: list[str]
    org_free: int | None
    #: end_call only: what activating the reservation handed the freed slot
    #: answered ("ok", "org_full", ...; "" when none was handed it).
    activation: str = ""


class _Item:
    """One queued request of a ScriptBatcher: a script call (one EVALSHA,
    ``script`` set) or a group of plain commands (``script`` None)."""

    __slots__ = ("script", "commands", "future", "lazy")

    def __init__(self, script: Any, commands: list[tuple[Any, ...]], future: asyncio.Future, lazy: bool) -> None:
        self.script = script
        self.commands = commands
        self.future = future
        self.lazy = lazy


class ScriptBatcher:
    """Group commit of Redis calls over one connection of its own.

    ``call(script, keys, args)`` queues an EVALSHA, ``commands([...])`` a
    group of plain commands; if no round trip is in flight one leaves at the
    next turn of the event loop with everything queued by then; while one is
    in flight, new calls wait and leave together in the next. Every caller
    gets its own reply (or exception). Each script still runs atomically on
    its own: the pipeline is only a transport.

    Scripts go out as plain EVALSHA (no SCRIPT EXISTS per pipeline as
    redis-py's registered scripts do in a pipeline); a NOSCRIPT reply (a
    restarted or flushed server) loads the script and sends those calls
    again. The round trip is written and read on a connection the batcher
    keeps (it never has two round trips in flight), with redis-py's
    connection API but not its Pipeline, whose bookkeeping costs as much CPU
    as the round trip itself; a connection error drops the connection and
    the round trip is sent once more on a new one (as redis-py's retry does).

    ``lazy=True`` is for calls nobody waits on to free a slot (a release
    whose slots end_call already gave back, heartbeats): they start no
    round trip of their own but ride along with the next one, or leave after
    ``linger_seconds`` at most, so under load they cost no round trip.
    """

    def __init__(self, redis: Any, *, max_items: int = 512, linger_seconds: float = 0.02) -> None:
        self._redis = redis
        self.max_items = max_items
        self.linger_seconds = linger_seconds
        self._pending: list[_Item] = []
        self._urgent = 0  # pending calls that are not lazy
        self._forced = False  # the linger expired: send the lazy calls too
        self._flushing = False
        self._task: asyncio.Task | None = None  # a reference, so it is not collected
        self._linger: asyncio.TimerHandle | None = None
        self._conn: Any = None
        self.pipelines = 0  # round trips sent (tests, diagnostics)

    async def call(self, script: Any, keys_: Sequence[str], args: Sequence[Any], *, lazy: bool = False) -> Any:
        """EVALSHA ``script`` with ``keys_`` and ``args`` in the next round
        trip; its reply (or its error raised here)."""
        return await self._queue(script, [("EVALSHA", script.sha, len(keys_), *keys_, *args)], lazy)

    async def commands(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Plain commands (tuples of arguments) in the next round trip; one
        raw reply per command (an error reply as an exception instance)."""
        return await self._queue(None, list(commands), False)

    async def _queue(self, script: Any, commands: list[tuple[Any, ...]], lazy: bool) -> Any:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append(_Item(script, commands, future, lazy))
        if lazy:
            if self._linger is None:
                self._linger = loop.call_later(self.linger_seconds, self._linger_expired)
        else:
            self._urgent += 1
            self._start()
        return await future

    def _linger_expired(self) -> None:
        self._linger = None
        self._forced = True
        self._start()

    def _start(self) -> None:
        """Start the flush loop unless it runs (it sends what is pending
        when its round trip returns)."""
        if not self._flushing and self._pending:
            self._flushing = True
            self._task = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        try:
            while self._pending and (self._urgent > 0 or self._forced):
                group = self._pending[: self.max_items]
                del self._pending[: self.max_items]
                self._urgent -= sum(1 for item in group if not item.lazy)
                if not self._pending:
                    self._forced = False
                    if self._linger is not None:  # the lazy calls leave now
                        self._linger.cancel()
                        self._linger = None
                group = [item for item in group if not item.future.done()]  # callers that gave up
                if group:
                    await self._send(group)
        except BaseException as exc:  # pragma: no cover - cancelled at loop shutdown
            for item in self._pending:
                if not item.future.done():
                    item.future.set_exception(exc if isinstance(exc, Exception) else RuntimeError("batcher stopped"))
            self._pending.clear()
            self._urgent = 0
            raise
        finally:
            self._flushing = False
        if self._pending and self._linger is None:  # lazy calls only: wait for company
            self._linger = asyncio.get_running_loop().call_later(self.linger_seconds, self._linger_expired)

    async def _send(self, group: list[_Item], *, retried: bool = False) -> None:
        commands = [c for item in group for c in item.commands]
        try:
            replies = await self._round_trip(commands)
        except Exception as exc:  # the connection failed: every call of the group fails
            for item in group:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        again = []
        i = 0
        for item in group:
            n = len(item.commands)
            mine, i = replies[i: i + n], i + n
            if item.future.done():
                continue
            if item.script is None:
                item.future.set_result(mine)
                continue
            reply = mine[0]
            if isinstance(reply, NoScriptError) and not retried:
                again.append(item)
            elif isinstance(reply, Exception):
                item.future.set_exception(reply)
            else:
                item.future.set_result(reply)
        if again:
            try:
                for script in {id(item.script): item.script for item in again}.values():
                    script.sha = await self._redis.script_load(script.script)
            except Exception as exc:
                for item in again:
                    if not item.future.done():
                        item.future.set_exception(exc)
                return
            for item in again:
                item.commands = [("EVALSHA", item.script.sha, *item.commands[0][2:])]
            await self._send(again, retried=True)

    async def _round_trip(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Write every command, read every reply (an error reply stays in the
        list as its exception), on the batcher's connection."""
        self.pipelines += 1
        for attempt in (0, 1):
            if self._conn is None:
                self._conn = await self._redis.connection_pool.get_connection()
            conn = self._conn
            try:
                await conn.send_packed_command(conn.pack_commands(commands), check_health=False)
                replies: list[Any] = []
                for _ in commands:
                    try:
                        replies.append(await conn.read_response())
                    except ResponseError as exc:
                        replies.append(exc)
                return replies
            except (RedisConnectionError, RedisTimeoutError, OSError):
                await self._drop_connection()
                if attempt:
                    raise
            except BaseException:
                await self._drop_connection()  # cut mid-reply: its stream position is unknown
                raise
        raise AssertionError("unreachable")

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.disconnect()
            finally:
                await self._redis.connection_pool.release(conn)


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
        self.batcher = ScriptBatcher(redis)
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
            ],
            [now, self.lease_ttl_ms, batch_id, self.dialer_id, self.info_ttl_ms, n,
             "reserve" if reserve else "slot", *lease_ids, *provider_call_ids],
        )
        stop = _s(reply[0])
        next_due = int(float(_s(reply[1]))) if stop == "not_due" and reply[1] not in (b"", "") else None
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
    ) -> bool:
        reply = await self.batcher.call(
            self.scripts.attach,
            [keys.org_leases(org_id), keys.lease_info(org_id, lease_id), keys.org_reserved(org_id)],
            [lease_id, attempt_id, int(started_ms), int(max_call_ms), trunk_json, self.info_ttl_ms],
        )
        return int(reply) == 1

    async def activate(self, org_id: str, batch_id: str, lease_id: str) -> str:
        """A reservation takes its org and batch slots (activate.lua): "ok"
        (dial now), "org_full" / "batch_full" (wait), "inactive" / "lost" /
        "org_unconfigured" (do not dial)."""
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
            ],
            [lease_id, self.now_ms() + self.lease_ttl_ms, self.info_ttl_ms, self.now_ms(), batch_id],
        )
        return _s(reply)

    async def end_call(
        self, org_id: str, batch_id: str, lease_id: str, *, then_activate: tuple[str, str] | None = None
    ) -> OrgRound | None:
        """The call under this lease is over at the provider: free its slots
        now, keep it (no slot) in the org's ended zset until its release.
        Returns the start of the org's next claim round (ring rotated by
        one, free slots; ``org_free`` None when the org has no limit
        configured) when ended (or already), None when the lease is not
        held (lost or released): then the slots are freed by the release,
        as before. ``then_activate=(lease id, batch id)``: hand the freed
        slot to that reservation in the same round trip (``activation``
        says whether it took it)."""
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
                *(
                    [
                        keys.batch_meta(org_id, then_activate[1]),
                        keys.batch_leases(org_id, then_activate[1]),
                        keys.org_reserved(org_id),
                        keys.lease_info(org_id, then_activate[0]),
                    ]
                    if then_activate
                    else []
                ),
            ],
            [lease_id, now, now + self.lease_ttl_ms, self.info_ttl_ms,
             *(then_activate if then_activate else ("", ""))],
        )
        if int(reply[0]) != 1:
            return None
        free = int(reply[1])
        return OrgRound([_s(m) for m in reply[3:]], free if free >= 0 else None, _s(reply[2]))

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
        requeue_mode: str = "nx",
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
            ],
            [
                lease_id,
                "1" if only_unattached else "0",
                requeue_contact,
                int(requeue_due_ms),
                "set" if requeue_mode == "set" else "nx",
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
