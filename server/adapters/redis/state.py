"""Server-side Redis state: organization/batch config, ready queues, the
round-robin ring, progress pub/sub, and the rebuild after a data loss.

Redis is advisory; Postgres decides (docs/design.md §5). Layout in ``keys``; the
Lua scripts in ``lua/`` (see ``scripts``). Times are epoch seconds in this
API and epoch milliseconds inside Redis.

Gating after a data loss: claim.lua refuses while the organization's config
hash (its limit) is missing ("org_unconfigured") and while a batch's meta is
missing ("inactive"). ``rebuild`` therefore writes, per organization, the
leases of in-flight attempts and the fence floor FIRST, then batch meta and
ready queues, then the ring, and the org config LAST; the state marker after
every organization. So even a dialer that missed the marker check cannot
claim a slot that an in-flight call still holds.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from contract import keys
from contract.lease import LEASE_INFO_TTL_MS
from contract.resp import pack_zadd_same_score
from contract.scripts import Scripts

if TYPE_CHECKING:  # pragma: no cover
    import redis.asyncio
    import redis.asyncio.cluster

#: ZADD members per command and commands per pipeline when loading queues.
ZADD_CHUNK = 1000
PIPELINE_COMMANDS = 20
#: Script calls in flight at once where a pipeline cannot carry them
#: (cluster). Each holds a connection of the client's pool (redis-py's
#: default: 100) for its round trip, so this stays well under it: at 100, a
#: pass over a session's many organizations beside the server's other Redis
#: work ran out of connections (MaxConnectionsError in CI).
CLUSTER_SCRIPT_CONCURRENCY = 32


def _s(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


@dataclass(frozen=True)
class InflightLease:
    """An attempt open in Postgres (contact DIALING/CONNECTED)."""

    lease_id: str
    batch_id: str
    contact_id: str
    attempt_id: str
    fencing_token: int
    dialer_id: str
    provider_call_id: str
    started_at: float  # epoch s
    max_call_seconds: int
    trunk_json: str  # serialized TrunkSettings (json of dataclasses.asdict)


@dataclass(frozen=True)
class BatchSnapshot:
    batch_id: str
    concurrency_limit: int
    max_call_seconds: int
    ready: list[tuple[str, float]] = field(default_factory=list)  # (contact_id, due epoch s)
    inflight: list[InflightLease] = field(default_factory=list)


@dataclass(frozen=True)
class OrgSnapshot:
    org_id: str
    concurrency_limit: int
    max_fencing_token: int
    running: list[BatchSnapshot] = field(default_factory=list)
    # Open attempts of batches no longer running (paused/cancelled): their leases still count.
    inflight_other: list[InflightLease] = field(default_factory=list)


def is_cluster(redis: Any) -> bool:
    """Whether ``redis`` is redis-py's (asyncio) cluster client."""
    try:
        from redis.asyncio.cluster import RedisCluster
    except ImportError:  # pragma: no cover
        return False
    return isinstance(redis, RedisCluster)


def _default_lease_ttl() -> float:
    try:
        return float(os.environ.get("BATCHCALLS_LEASE_TTL_SECONDS", "") or 10.0)
    except ValueError:
        return 10.0


class RedisState:
    def __init__(
        self,
        redis: redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster,
        clock: Callable[[], float] = time.time,
        *,
        lease_ttl_seconds: float | None = None,
    ) -> None:
        self.redis = redis
        #: redis-py's RedisCluster (REDIS_CLUSTER_URL): progress goes through
        #: sharded pub/sub, and scripts are never pipelined (docs/redis.md).
        self.cluster = is_cluster(redis)
        if hasattr(clock, "now") and callable(getattr(clock, "now")):
            clock_obj = clock
            clock = lambda: clock_obj.now().timestamp()  # noqa: E731 - server.domain.clock.Clock
        self._clock = clock
        self.lease_ttl_seconds = _default_lease_ttl() if lease_ttl_seconds is None else float(lease_ttl_seconds)
        self.scripts = Scripts(redis)

    # -- trunk pacing (docs/pacing.md) -------------------------------------------------

    async def trunk_pacing(self, org_id: str, trunk_ids: Iterable[str]) -> dict[str, dict[str, str]]:
        """Raw pacing fields (``rate``, ``until``, ``streak``, ``last_pb``)
        of the organization's trunks, as the dialers' pace scripts write them
        at ``keys.trunk_pace``; a trunk without state is left out."""
        trunk_ids = list(dict.fromkeys(trunk_ids))
        if not trunk_ids:
            return {}
        names = ("rate", "until", "streak", "last_pb")
        async with self.redis.pipeline(transaction=False) as pipe:
            for trunk_id in trunk_ids:
                pipe.hmget(keys.trunk_pace(org_id, trunk_id), list(names))
            rows = await pipe.execute()
        out: dict[str, dict[str, str]] = {}
        for trunk_id, row in zip(trunk_ids, rows):
            fields = {n: _s(v) for n, v in zip(names, row) if v not in (None, b"", "")}
            if fields:
                out[trunk_id] = fields
        return out

    # -- configuration ---------------------------------------------------------------

    async def set_org_limit(self, org_id: str, limit: int) -> None:
        await self.redis.hset(keys.org_config(org_id), "limit", int(limit))

    async def org_limits(self, org_ids: Iterable[str]) -> dict[str, str]:
        """The organizations' limits as Redis holds them now ("" = none)."""
        org_ids = list(org_ids)
        if not org_ids:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for org_id in org_ids:
                pipe.hget(keys.org_config(org_id), "limit")
            values = await pipe.execute()
        return {o: (_s(v) if v is not None else "") for o, v in zip(org_ids, values)}

    async def repair_org_limit(self, org_id: str, read_before: str | None, limit: int) -> bool:
        """Write ``limit`` only if Redis still holds ``read_before`` (what
        it held before the snapshot ``limit`` comes from was taken): a newer
        value written meanwhile by UpdateOrganization wins. ``read_before``
        None (the org was not known then): only if no limit is set."""
        expected = "" if read_before is None else read_before
        reply = await self.scripts.set_if_unchanged(
            keys=[keys.org_config(org_id)], args=["limit", expected, str(int(limit))]
        )
        return int(reply) == 1

    async def set_batch_limit(self, org_id: str, batch_id: str, limit: int) -> None:
        """Changes the live-call limit of an active (running or paused) batch;
        a no-op for a batch that is not active (its meta is written on
        activation)."""
        await self.scripts.set_if_exists(keys=[keys.batch_meta(org_id, batch_id)], args=["limit", int(limit)])

    async def activate_batch(
        self,
        org_id: str,
        batch_id: str,
        *,
        concurrency_limit: int,
        max_call_seconds: int,
        ready: Iterable[tuple[str, float]],
    ) -> None:
        """Batch RUNNING: meta, ready queue (chunked pipelines), ring (no
        duplicates), active orgs."""
        await self.redis.hset(
            keys.batch_meta(org_id, batch_id),
            mapping={"limit": int(concurrency_limit), "max_call_ms": int(max_call_seconds) * 1000},
        )
        await self._zadd_chunks(keys.batch_ready(org_id, batch_id), ready, nx=False)
        await self.scripts.ring_add(keys=[keys.org_running(org_id)], args=[batch_id])
        await self.redis.sadd(keys.ACTIVE_ORGS, org_id)

    async def deactivate_batch(self, org_id: str, batch_id: str, *, discard_queue: bool) -> None:
        """Pause (``discard_queue=False``): out of the ring, queue and meta
        kept. Cancel/complete/fail/delete (True): also delete the ready queue
        and meta. Leases of calls in progress are untouched. The org leaves
        ACTIVE_ORGS when its ring is empty, and is put in LEASE_ORGS first."""
        remaining = await self.scripts.deactivate(
            keys=[keys.org_running(org_id), keys.batch_ready(org_id, batch_id), keys.batch_meta(org_id, batch_id)],
            args=[batch_id, "1" if discard_queue else "0"],
        )
        if int(remaining) == 0:
            # Leases of the org's calls in progress outlive its last running
            # batch: make sure the reapers keep watching it (they forget it
            # once it holds no lease, neither slot-holding nor ended).
            await self.redis.sadd(keys.LEASE_ORGS, org_id)
            await self.redis.srem(keys.ACTIVE_ORGS, org_id)
            # A concurrent activate_batch may have pushed to the ring between
            # the script and the SREM: re-check so the org is not forgotten.
            if await self.redis.llen(keys.org_running(org_id)):
                await self.redis.sadd(keys.ACTIVE_ORGS, org_id)

    # -- ready queues --------------------------------------------------------------------

    async def enqueue(self, org_id: str, batch_id: str, contact_id: str, due: float) -> None:
        await self.redis.zadd(keys.batch_ready(org_id, batch_id), {contact_id: _ms(due)})

    async def enqueue_items(self, items: Iterable[tuple[str, str, str, float]]) -> None:
        """ZADD (org id, batch id, contact id, due epoch s) items, of any
        batches, in one pipelined round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for org_id, batch_id, contact_id, due in items:
            pipe.zadd(keys.batch_ready(org_id, batch_id), {contact_id: _ms(due)})
        await pipe.execute()

    async def enqueue_many(
        self, org_id: str, batch_id: str, items: Iterable[tuple[str, float]], *, only_missing: bool = False
    ) -> int:
        """ZADD (NX with ``only_missing``) in chunked pipelines; returns how many were added."""
        return await self._zadd_chunks(keys.batch_ready(org_id, batch_id), items, nx=only_missing)

    @property
    def can_fill_ahead(self) -> bool:
        """Whether ``fill_ready`` + ``discard_ready_if_inactive`` may be used
        (a WATCH transaction guards the discard; not on a cluster client)."""
        return not self.cluster

    async def fill_ready(self, org_id: str, batch_id: str, contact_ids: Sequence[int], due: float) -> None:
        """ZADD ``contact_ids``, all due at ``due``, to the batch's ready queue
        (``ZADD_CHUNK`` members per command): CreateBatch's queue, filled
        while Postgres copies the contacts.

        The commands are packed here, one score for all, and written in one
        round trip on a connection of the client's pool, as redis-py's
        pipeline does with the ones it packs: its packing re-copies a command's
        buffer for every argument (up to 6 KB each time), which was ~15 of
        the ~20 ms a queue of 10,000 contacts cost; this is ~2 ms. On a
        cluster client, ``enqueue_many``'s chunked pipelines.

        Nothing can claim from the queue before the batch is activated
        (claim.lua answers "inactive" without the batch's meta, and the batch
        is not in the ring); if it is not activated, the caller removes it
        with ``discard_ready_if_inactive``."""
        if not contact_ids:
            return
        if self.cluster:  # not reached from CreateBatch (can_fill_ahead)
            await self.enqueue_many(org_id, batch_id, ((str(c), due) for c in contact_ids))
            return
        key = keys.batch_ready(org_id, batch_id)
        score = str(_ms(due))
        chunks = [contact_ids[i:i + ZADD_CHUNK] for i in range(0, len(contact_ids), ZADD_CHUNK)]
        await self._send_packed(b"".join(pack_zadd_same_score(key, score, chunk) for chunk in chunks), len(chunks))

    async def _send_packed(self, payload: bytes, replies: int) -> None:
        """Write already packed commands on one pooled connection and read
        their ``replies`` (an error reply raises; the connection is then
        dropped, its other replies unread)."""
        pool = self.redis.connection_pool
        conn = await pool.get_connection()
        try:
            await conn.send_packed_command(payload)
            for _ in range(replies):
                await conn.read_response()
        except BaseException:
            await conn.disconnect()
            raise
        finally:
            await pool.release(conn)

    async def discard_ready_if_inactive(self, org_id: str, batch_id: str) -> bool:
        """Delete the batch's ready queue unless the batch is active (its meta
        exists: an activation, which writes the meta first, has begun).
        Atomic against a concurrent activation (WATCH on the meta). Returns
        whether the queue was deleted."""
        from redis.exceptions import WatchError

        meta = keys.batch_meta(org_id, batch_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(meta)
                if await pipe.exists(meta):
                    return False
                pipe.multi()
                pipe.delete(keys.batch_ready(org_id, batch_id))
                await pipe.execute()
                return True
            except WatchError:
                return False

    async def dequeue(self, org_id: str, batch_id: str, contact_id: str) -> None:
        await self.redis.zrem(keys.batch_ready(org_id, batch_id), contact_id)

    async def ready_contacts(self, org_id: str, batch_id: str) -> set[str]:
        return {_s(m) for m in await self.redis.zrange(keys.batch_ready(org_id, batch_id), 0, -1)}

    async def leased_contacts(self, org_id: str, batch_id: str) -> set[str]:
        """Contacts currently under a lease of this batch: claimed, in call,
        or with their call over but its outcome not yet recorded (the org's
        ended zset, filtered by the lease's batch). The repair pass leaves
        them out of the ready queue: their dialer's release re-queues them
        if the outcome calls for it. Reservations (granted ahead, no slot
        yet: the org's reserved zset) count too."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrange(keys.batch_leases(org_id, batch_id), 0, -1)
            pipe.zrange(keys.org_ended(org_id), 0, -1)
            pipe.zrange(keys.org_reserved(org_id), 0, -1)
            held, ended, reserved = await pipe.execute()
        lease_ids = [_s(m) for m in held]
        ended_ids = [_s(m) for m in ended] + [_s(m) for m in reserved]
        if not lease_ids and not ended_ids:
            return set()
        async with self.redis.pipeline(transaction=False) as pipe:
            for lease_id in lease_ids:
                pipe.hmget(keys.lease_info(org_id, lease_id), "contact", "batch")
            for lease_id in ended_ids:
                pipe.hmget(keys.lease_info(org_id, lease_id), "contact", "batch")
            infos = await pipe.execute()
        out: set[str] = set()
        for i, (contact, batch) in enumerate(infos):
            if contact is None:
                continue
            if i >= len(lease_ids) and (batch is None or _s(batch) != batch_id):
                continue  # an ended or reserved lease of another batch
            out.add(_s(contact))
        return out

    async def slots_in_use(self, org_id: str, batch_id: str | None = None) -> int:
        """Leases holding a concurrency slot (calls live or about to be)."""
        key = keys.org_leases(org_id) if batch_id is None else keys.batch_leases(org_id, batch_id)
        return int(await self.redis.zcard(key))

    async def ended_awaiting_outcome(self, org_id: str) -> int:
        """Leases whose call is over but whose outcome is not yet recorded
        (they hold no slot; see ``keys.org_ended``)."""
        return int(await self.redis.zcard(keys.org_ended(org_id)))

    async def _zadd_chunks(self, key: str, items: Iterable[tuple[str, float]], *, nx: bool) -> int:
        added = 0
        chunk: dict[str, int] = {}
        pipe = self.redis.pipeline(transaction=False)
        queued = 0

        async def flush_pipe() -> int:
            nonlocal pipe, queued
            if not queued:
                return 0
            results = await pipe.execute()
            pipe = self.redis.pipeline(transaction=False)
            queued = 0
            return sum(int(r) for r in results)

        for contact_id, due in items:
            chunk[contact_id] = _ms(due)
            if len(chunk) >= ZADD_CHUNK:
                pipe.zadd(key, chunk, nx=nx)
                queued += 1
                chunk = {}
                if queued >= PIPELINE_COMMANDS:
                    added += await flush_pipe()
        if chunk:
            pipe.zadd(key, chunk, nx=nx)
            queued += 1
        added += await flush_pipe()
        return added

    # -- events --------------------------------------------------------------------------

    # On a cluster, classic PUBLISH is broadcast to every node of the
    # cluster; Redis 7's sharded pub/sub (SPUBLISH/SSUBSCRIBE) keeps a
    # channel on the shard of its slot, and a batch's channel carries the
    # org's hash tag, so it lives with the org's keys (docs/redis.md).

    async def publish(self, org_id: str, batch_id: str, payload: bytes) -> None:
        channel = keys.batch_events(org_id, batch_id)
        if self.cluster:
            await self.redis.spublish(channel, payload)
        else:
            await self.redis.publish(channel, payload)

    async def publish_many(self, messages: Iterable[tuple[str, str, bytes]]) -> None:
        """PUBLISH (SPUBLISH on a cluster) (org id, batch id, payload)
        messages in one pipelined round trip (one per node on a cluster)."""
        pipe = self.redis.pipeline(transaction=False)
        for org_id, batch_id, payload in messages:
            channel = keys.batch_events(org_id, batch_id)
            if self.cluster:
                pipe.spublish(channel, payload)
            else:
                pipe.publish(channel, payload)
        await pipe.execute()

    async def subscribe(self, org_id: str, batch_id: str) -> AsyncIterator[bytes]:
        """Async generator over the batch's pub/sub messages (sharded on a
        cluster); unsubscribes and closes its connection when the consumer
        stops (aclose/break)."""
        channel = keys.batch_events(org_id, batch_id)
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        try:
            if self.cluster:
                # The channel's node comes from the slots cache: fill it
                # first (a no-op once the client is initialized).
                await self.redis.initialize()
                await pubsub.ssubscribe(channel)
                if not pubsub.node_pubsub_mapping:
                    raise RuntimeError(f"no cluster node serves {channel!r}")
            else:
                await pubsub.subscribe(channel)
            while True:
                if self.cluster:
                    message = await pubsub.get_sharded_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is None:
                        # get_sharded_message returns at once while no node
                        # connection exists yet (or after one was dropped).
                        if not pubsub.node_pubsub_mapping:
                            await asyncio.sleep(0.05)
                        continue
                else:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is None:
                    continue
                if message.get("type") not in ("message", "smessage"):
                    continue
                data = message["data"]
                yield data if isinstance(data, bytes) else str(data).encode("utf-8")
        finally:
            try:
                await asyncio.shield(self._close_pubsub(pubsub, channel, self.cluster))
            except Exception:  # pragma: no cover - best effort
                pass

    @staticmethod
    async def _close_pubsub(pubsub: Any, channel: str, sharded: bool = False) -> None:
        try:
            if sharded:
                await pubsub.sunsubscribe(channel)
            else:
                await pubsub.unsubscribe(channel)
        finally:
            await pubsub.aclose()

    # -- watched batches -------------------------------------------------------------------

    async def mark_watched(self, batches: Iterable[tuple[str, str]], ttl_seconds: float) -> None:
        """Marks (org id, batch id) batches as watched (a WatchBatch stream
        is open on them) for ``ttl_seconds``, in one pipelined round trip
        (server.api.streams refreshes the marks while the streams last)."""
        pipe = self.redis.pipeline(transaction=False)
        queued = 0
        for org_id, batch_id in batches:
            pipe.set(keys.batch_watched(org_id, batch_id), b"1", px=max(1, _ms(ttl_seconds)))
            queued += 1
        if queued:
            await pipe.execute()

    async def watched_batches(self, batches: Iterable[tuple[str, str]]) -> list[bool]:
        """Whether each (org id, batch id) has a watcher on some replica
        (its marker is live): what a group commit of outcomes asks before
        it lingers."""
        items = list(batches)
        if not items:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for org_id, batch_id in items:
            pipe.exists(keys.batch_watched(org_id, batch_id))
        return [bool(n) for n in await pipe.execute()]

    # -- marker & rebuild ------------------------------------------------------------------

    async def state_present(self) -> bool:
        return bool(await self.redis.exists(keys.STATE_MARKER))

    async def mark_present(self) -> None:
        await self.redis.set(keys.STATE_MARKER, repr(self._clock()))

    # -- per-organization markers (Redis Cluster: failover without loss) -------------------

    async def org_markers(self, org_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
        """org id -> (its marker, "" if none; the replication id of the node
        holding its slot now). The marker is current when it equals
        ``f"{postgres epoch}:{replid}"`` (``keys.org_marker``)."""
        org_ids = list(dict.fromkeys(org_ids))
        out: dict[str, tuple[str, str]] = {}
        for i in range(0, len(org_ids), CLUSTER_SCRIPT_CONCURRENCY):
            chunk = org_ids[i:i + CLUSTER_SCRIPT_CONCURRENCY]
            replies = await asyncio.gather(*(
                self.scripts.org_marker(keys=[keys.org_marker(o)], args=["get"]) for o in chunk
            ))
            for org_id, (marker, replid) in zip(chunk, replies):
                out[org_id] = (_s(marker), _s(replid))
        return out

    async def mark_org(self, org_id: str, epoch: int) -> str:
        """Write the org's marker: ``<epoch>:<replid of the slot's node>``.
        Only after the org's state was (re)built from Postgres."""
        return _s(await self.scripts.org_marker(keys=[keys.org_marker(org_id)], args=["set", int(epoch)]))

    async def rebuild_orgs(
        self, orgs: Iterable[OrgSnapshot], epochs: dict[str, int], *, limits_before: dict[str, str] | None = None
    ) -> None:
        """Rebuild these organizations from Postgres snapshots on a Redis
        that may hold a stale copy of their state (a replica promoted by a
        failover holds a prefix of the master's writes), then write each
        org's marker with its new epoch LAST. Claims in these orgs are
        refused meanwhile (their marker is missing or names another node).

        On top of ``rebuild`` (leases of in-flight attempts restored, fence
        floor raised, meta, ring, config): ready entries of contacts that
        Postgres no longer counts as waiting (a claim whose ZREM was lost;
        their attempt is open or they are final) are removed, and contacts
        under a lease Redis still holds (claimed, StartAttempt pending) are
        not re-queued: their holder's release does it."""
        orgs = list(orgs)
        pruned: list[OrgSnapshot] = []
        for org in orgs:
            batches: list[BatchSnapshot] = []
            for b in org.running:
                waiting = {c for c, _ in b.ready}
                ready_key = keys.batch_ready(org.org_id, b.batch_id)
                stale = [c for c in await self.ready_contacts(org.org_id, b.batch_id) if c not in waiting]
                for i in range(0, len(stale), ZADD_CHUNK):
                    await self.redis.zrem(ready_key, *stale[i:i + ZADD_CHUNK])
                leased = await self.leased_contacts(org.org_id, b.batch_id)
                batches.append(BatchSnapshot(
                    batch_id=b.batch_id, concurrency_limit=b.concurrency_limit,
                    max_call_seconds=b.max_call_seconds,
                    ready=[(c, due) for c, due in b.ready if c not in leased], inflight=b.inflight,
                ))
            pruned.append(OrgSnapshot(org_id=org.org_id, concurrency_limit=org.concurrency_limit,
                                      max_fencing_token=org.max_fencing_token, running=batches,
                                      inflight_other=org.inflight_other))
        await self.rebuild(pruned, limits_before=limits_before, epochs=epochs, global_marker=False)

    async def rebuild(
        self,
        orgs: Iterable[OrgSnapshot],
        *,
        limits_before: dict[str, str] | None = None,
        epochs: dict[str, int] | None = None,
        global_marker: bool = True,
    ) -> None:
        """Rebuild Redis from Postgres snapshots after a data loss, then set
        the marker (with ``epochs``, each org's marker after its state; the
        global marker unless ``global_marker`` is False). Idempotent: leases are added with ZADD NX (never twice),
        the fence counter is only raised, ring adds skip present ids.

        Every attempt open in Postgres gets a slot-holding lease back, also
        one whose call had already ended (its dialer freed the slot with
        end_call.lua before FinishAttempt): Redis lost the ended zset with
        the rest, so nothing tells a live call from an ended one. That is
        conservative: the slot comes back free with the dialer's release
        after FinishAttempt (release.lua removes the lease from every zset),
        or with a reaper's once the dialer is gone. A lease still in the
        ended zset (a rebuild without a data loss) is left as it is."""
        now_ms = _ms(self._clock())
        expiry_ms = now_ms + _ms(self.lease_ttl_seconds)
        for org in orgs:
            org_id = org.org_id
            # 1. leases of in-flight attempts + fence floor (before anything
            #    that lets a claim through).
            inflight = [lease for b in org.running for lease in b.inflight] + list(org.inflight_other)
            if inflight:
                restores = [
                    (
                        [
                            keys.org_leases(org_id),
                            keys.batch_leases(org_id, lease.batch_id),
                            keys.lease_info(org_id, lease.lease_id),
                            keys.org_ended(org_id),
                        ],
                        [lease.lease_id, expiry_ms, LEASE_INFO_TTL_MS, *self._lease_fields(lease)],
                    )
                    for lease in inflight
                ]
                if self.cluster:
                    # redis-py's cluster pipeline refuses EVALSHA: one call
                    # each, a bounded number at a time (they are independent,
                    # ZADD NX).
                    for i in range(0, len(restores), CLUSTER_SCRIPT_CONCURRENCY):
                        await asyncio.gather(*(
                            self.scripts.restore_lease(keys=k, args=a)
                            for k, a in restores[i:i + CLUSTER_SCRIPT_CONCURRENCY]
                        ))
                else:
                    async with self.redis.pipeline(transaction=False) as pipe:
                        for k, a in restores:
                            await self.scripts.restore_lease(keys=k, args=a, client=pipe)
                        await pipe.execute()
                await self.redis.sadd(keys.LEASE_ORGS, org_id)
            max_token = max([org.max_fencing_token, *(lease.fencing_token for lease in inflight)])
            await self.scripts.fence_floor(keys=[keys.fence_counter(org_id)], args=[int(max_token) + 1])
            # 2. batch meta + ready queues, 3. ring.
            for batch in org.running:
                await self.redis.hset(
                    keys.batch_meta(org_id, batch.batch_id),
                    mapping={"limit": int(batch.concurrency_limit), "max_call_ms": int(batch.max_call_seconds) * 1000},
                )
                await self._zadd_chunks(keys.batch_ready(org_id, batch.batch_id), batch.ready, nx=False)
                await self.scripts.ring_add(keys=[keys.org_running(org_id)], args=[batch.batch_id])
            # 4. org config last: it gates claim.lua. With ``limits_before``
            #    (read before the snapshot), a limit changed meanwhile wins.
            if limits_before is None:
                await self.set_org_limit(org_id, org.concurrency_limit)
            else:
                await self.repair_org_limit(org_id, limits_before.get(org_id), org.concurrency_limit)
            if org.running:
                await self.redis.sadd(keys.ACTIVE_ORGS, org_id)
            # 5. the org's marker (Redis Cluster), after everything else.
            if epochs is not None and org_id in epochs:
                await self.mark_org(org_id, epochs[org_id])
        if global_marker:
            await self.mark_present()

    @staticmethod
    def _lease_fields(lease: InflightLease) -> list[Any]:
        started_ms = _ms(lease.started_at)
        return [
            "batch", lease.batch_id,
            "contact", lease.contact_id,
            "token", int(lease.fencing_token),
            "dialer", lease.dialer_id,
            "provider_call_id", lease.provider_call_id,
            "claimed_ms", started_ms,
            "started_ms", started_ms,
            "due_ms", started_ms,
            "attempt_id", lease.attempt_id,
            "max_call_ms", int(lease.max_call_seconds) * 1000,
            "trunk", lease.trunk_json,
            "restored", 1,
        ]
