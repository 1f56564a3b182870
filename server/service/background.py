"""Background duties of the server: the scheduler (SCHEDULED -> RUNNING at
the instant; PENDING batches held for credits) and the reconciler (rebuilds
Redis from Postgres after a data loss, repairs missing queue entries).

With several server replicas these duties run on one of them at a time:
the holder of the leader lease ``contract.keys.SCHEDULER_LOCK`` (a Redis key
with a TTL, renewed every TTL/3: server/service/leader.py). Per duty:

- scheduler tick: elected; also safe if two ran at once (``try_start``
  moves a batch out of SCHEDULED / PENDING under its row lock in Postgres,
  compare-and-set on the status: one RUNNING transition, one event);
- reconciler rebuild (marker lost): elected, so one replica rebuilds, not
  every replica that sees the marker missing;
- reconciler repair (every reconcile interval): elected; its writes are
  idempotent (ZADD NX, compare-and-set limits) should a lapsed leader
  overlap the next one for one tick;
- reapers: not here; the dialers run them, one per organization at a time
  under ``reaper_lock`` (dialer/reaper.py).

Everything else the server runs is per request (WatchBatch streams, exports).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import asdict
from typing import Any

from sqlalchemy import func, select

from server.adapters.db.schema import attempts, batches, contacts, organizations, phone_numbers
from server.adapters.redis.state import BatchSnapshot, InflightLease, OrgSnapshot
from server.domain.batch_rules import BatchStatus
from server.domain.contact_rules import WAITING_VALUES
from server.service import lifecycle
from server.service.context import ServiceContext

log = logging.getLogger(__name__)


async def scheduler_tick(ctx: ServiceContext) -> int:
    """Starts every batch whose time has come; returns how many started."""
    now = ctx.clock.now()
    async with ctx.engine.connect() as conn:
        due = (
            await conn.execute(
                select(batches.c.org_id, batches.c.id, batches.c.status).where(
                    (
                        (batches.c.status == BatchStatus.SCHEDULED.value) & (batches.c.scheduled_at <= now)
                    )
                    | (batches.c.status == BatchStatus.PENDING.value)
                )
            )
        ).all()
    started = 0
    for org_id, batch_id, status in due:
        new = await lifecycle.try_start(ctx, org_id, batch_id, from_statuses=(status,))
        started += new == BatchStatus.RUNNING.value
    return started


def trunk_json(number: Any) -> str:
    from contract.trunk import DEFAULT_TRUNK_CPS, TrunkSettings

    trunk = TrunkSettings(
        kind=number.trunk_kind or "",
        host=number.trunk_host,
        port=number.trunk_port,
        transport=number.trunk_transport,
        username=number.trunk_username,
        # No password: this JSON goes into Redis (the lease's trunk field) for
        # a reaper's status query, which needs no SIP credentials (docs/design.md §7).
        caller_id_format=number.caller_id_format,
        simulation=dict(number.simulation or {}),
        calls_per_second=float(getattr(number, "calls_per_second", None) or DEFAULT_TRUNK_CPS),
    )
    return json.dumps(asdict(trunk))


async def snapshot(ctx: ServiceContext) -> list[OrgSnapshot]:
    """Everything Redis should hold, read from Postgres."""
    now = ctx.clock.now()
    async with ctx.engine.connect() as conn:
        # What batches may use: the limit minus the reserve (issue 13).
        orgs = (await conn.execute(select(
            organizations.c.id,
            (organizations.c.concurrency_limit - organizations.c.reserved_concurrency).label("concurrency_limit"),
        ))).all()
        running = (
            await conn.execute(select(batches).where(batches.c.status == BatchStatus.RUNNING.value))
        ).all()
        open_attempts = (
            await conn.execute(
                select(attempts, batches.c.max_call_seconds, batches.c.from_number_id)
                .join(batches, batches.c.id == attempts.c.batch_id)
                .where(attempts.c.ended_at.is_(None))
            )
        ).all()
        numbers = {
            r.id: r
            for r in (
                await conn.execute(
                    select(phone_numbers).where(
                        phone_numbers.c.id.in_({a.from_number_id for a in open_attempts} or {""})
                    )
                )
            ).all()
        }
        waiting: dict[str, list[tuple[str, float]]] = {}
        if running:
            rows = await conn.execute(
                select(contacts.c.batch_id, contacts.c.id, contacts.c.next_attempt_at).where(
                    contacts.c.batch_id.in_([b.id for b in running]),
                    contacts.c.status.in_(WAITING_VALUES),
                )
            )
            for r in rows:
                waiting.setdefault(r.batch_id, []).append((str(r.id), (r.next_attempt_at or now).timestamp()))
        max_token = dict(
            (
                await conn.execute(select(attempts.c.org_id, func.max(attempts.c.fence_token)).group_by(attempts.c.org_id))
            ).all()
        )
    leases: dict[str, list[InflightLease]] = {}
    for a in open_attempts:
        number = numbers.get(a.from_number_id)
        leases.setdefault(a.batch_id, []).append(
            InflightLease(
                lease_id=a.lease_id,
                batch_id=a.batch_id,
                contact_id=str(a.contact_id),
                attempt_id=a.id,
                fencing_token=a.fence_token,
                dialer_id=a.dialer_id,
                provider_call_id=a.provider_call_id,
                started_at=a.started_at.timestamp(),
                max_call_seconds=a.max_call_seconds,
                trunk_json=trunk_json(number) if number is not None else "{}",
            )
        )
    running_ids = {b.id for b in running}
    batch_org = {a.batch_id: a.org_id for a in open_attempts}
    out: list[OrgSnapshot] = []
    for org_id, limit in orgs:
        org_running = [
            BatchSnapshot(
                batch_id=b.id,
                concurrency_limit=b.concurrency_limit,
                max_call_seconds=b.max_call_seconds,
                ready=waiting.get(b.id, []),
                inflight=leases.get(b.id, []),
            )
            for b in running
            if b.org_id == org_id
        ]
        # Open attempts of paused or cancelled batches still hold slots.
        other = [
            lease
            for batch_id, items in leases.items()
            if batch_id not in running_ids and batch_org[batch_id] == org_id
            for lease in items
        ]
        out.append(
            OrgSnapshot(
                org_id=org_id,
                concurrency_limit=limit,
                max_fencing_token=int(max_token.get(org_id) or 0),
                running=org_running,
                inflight_other=other,
            )
        )
    return out


async def reconcile(ctx: ServiceContext, *, force: bool = False) -> str:
    """Rebuild Redis if its data is gone; otherwise add missing queue entries.

    The rebuild restores every attempt open in Postgres as a slot-holding
    lease, also one whose call had already ended when Redis lost its data
    (its dialer had freed the slot with end_call.lua and was waiting for
    FinishAttempt): Redis cannot tell them apart any more, and holding the
    slot until the dialer's release (or a reaper's) is the conservative
    choice: the limits hold, the slot comes back one FinishAttempt later.
    The repair pass skips contacts under a lease, ended ones included
    (``RedisState.leased_contacts``): their release re-queues them.

    Returns "rebuilt", "repaired" or "ok"."""
    state = ctx.redis_state
    if force or not await state.state_present():
        lock = await state.try_lock_rebuild() if hasattr(state, "try_lock_rebuild") else True
        if not lock:
            return "ok"
        limits_before = await _limits_before_snapshot(ctx)
        orgs = await snapshot(ctx)
        epochs = await _org_epochs(ctx) if getattr(state, "cluster", False) else None
        await state.rebuild(orgs, limits_before=limits_before, epochs=epochs)
        log.warning("redis state rebuilt from postgres (%d organizations)", len(orgs))
        return "rebuilt"
    if getattr(state, "cluster", False) and await rebuild_stale_orgs(ctx):
        return "rebuilt"
    repaired = await close_orphan_attempts(ctx)
    limits_before = await _limits_before_snapshot(ctx)
    for org in await snapshot(ctx):
        await state.repair_org_limit(org.org_id, limits_before.get(org.org_id), org.concurrency_limit)
        for b in org.running:
            leased = await state.leased_contacts(org.org_id, b.batch_id)
            await state.activate_batch(
                org.org_id, b.batch_id, concurrency_limit=b.concurrency_limit,
                max_call_seconds=b.max_call_seconds, ready=[],
            )
            missing = [(c, due) for c, due in b.ready if c not in leased]
            repaired += await state.enqueue_many(org.org_id, b.batch_id, missing, only_missing=True)
    return "repaired" if repaired else "ok"


async def _org_epochs(ctx: ServiceContext) -> dict[str, int]:
    async with ctx.engine.connect() as conn:
        return {r.id: int(r.redis_epoch) for r in await conn.execute(
            select(organizations.c.id, organizations.c.redis_epoch))}


async def rebuild_stale_orgs(ctx: ServiceContext) -> list[str]:
    """Redis Cluster, failover without loss (docs/recovery.md): every
    organization whose marker (``bc:{org}:marker``) is missing or is not
    ``<its Postgres redis_epoch>:<replication id of its slot's node>`` (a
    promoted replica, which may have missed the last writes, or an org never
    built) gets its epoch bumped in Postgres and its queues and leases
    rebuilt from a Postgres snapshot taken after the bump, the new marker
    written last. Claims in it are refused until then (claim.lua)."""
    state = ctx.redis_state
    epochs = await _org_epochs(ctx)
    markers = await state.org_markers(epochs)
    stale = [o for o, e in epochs.items() if markers[o][0] != f"{e}:{markers[o][1]}"]
    if not stale:
        return []
    bumped: dict[str, int] = {}
    async with ctx.engine.begin() as conn:
        for org_id in stale:
            bumped[org_id] = int((await conn.execute(
                organizations.update().where(organizations.c.id == org_id)
                .values(redis_epoch=organizations.c.redis_epoch + 1).returning(organizations.c.redis_epoch)
            )).scalar_one())
    limits_before = await _limits_before_snapshot(ctx)
    orgs = [o for o in await snapshot(ctx) if o.org_id in bumped]
    await state.rebuild_orgs(orgs, bumped, limits_before=limits_before)
    log.warning("redis state of %d organization(s) rebuilt from postgres (marker missing or stale): %s",
                len(orgs), ", ".join(sorted(bumped)))
    return sorted(bumped)


async def _limits_before_snapshot(ctx: ServiceContext) -> dict[str, str]:
    """Organization limits as Redis holds them BEFORE a snapshot is taken:
    the repair and the rebuild then overwrite only a value nobody changed
    meanwhile (compare-and-set), so an UpdateOrganization landing during the
    snapshot keeps its new limit."""
    async with ctx.engine.connect() as conn:
        known = [r.id for r in await conn.execute(select(organizations.c.id))]
    return await ctx.redis_state.org_limits(known)


async def close_orphan_attempts(ctx: ServiceContext) -> int:
    """Closes, as never dialed, attempts granted under leases that a reaper
    released unattached (their dialer died between the grant and recording
    it on the lease: attach.lua refuses once the lease is gone, so no call
    can ever be placed under them)."""
    from sqlalchemy import select

    from contract import keys
    from server.service.dialing import FinishInput, finish_attempt

    redis = ctx.redis_state.redis
    async with ctx.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(attempts.c.id, attempts.c.org_id, attempts.c.lease_id, attempts.c.fence_token)
                .where(attempts.c.ended_at.is_(None))
            )
        ).all()
    by_org: dict[str, list[Any]] = {}
    for r in rows:
        by_org.setdefault(r.org_id, []).append(r)
    closed = 0
    for org_id, items in by_org.items():
        released = {
            m.decode() if isinstance(m, bytes) else m
            for m in await redis.zrange(keys.released_unattached(org_id), 0, -1)
        }
        for r in items:
            if r.lease_id not in released:
                continue
            try:
                await finish_attempt(
                    ctx, FinishInput(attempt_id=r.id, token=r.fence_token, outcome="not_dialed",
                                     closed_by="reconciler", detail="lease released before the call was placed"),
                )
                closed += 1
                log.warning("closed attempt %s: its lease was released before any call", r.id)
            except Exception as exc:  # closed meanwhile: fine
                log.info("attempt %s not closed: %s", r.id, exc)
        # Forget tombstones older than a day.
        cutoff_ms = (ctx.clock.now().timestamp() - 86400) * 1000
        await redis.zremrangebyscore(keys.released_unattached(org_id), "-inf", cutoff_ms)
    return closed


async def run_forever(ctx: ServiceContext, stop: asyncio.Event) -> None:
    """The loop every replica runs; only the holder of the leader lease does
    the duties (the module docstring)."""
    from contract import keys
    from server.service.leader import LeaderLease

    lease = LeaderLease(ctx.redis_state.redis, keys.SCHEDULER_LOCK,
                        getattr(ctx.settings, "leader_ttl_seconds", 5.0))
    keeper = asyncio.create_task(lease.keep(stop), name="leader-lease")
    try:
        await _duties(ctx, stop, lease)
    finally:
        stop.set()
        await keeper


async def _duties(ctx: ServiceContext, stop: asyncio.Event, lease: Any) -> None:
    last_reconcile = 0.0
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        try:
            # Checked in Redis every tick, not only by the keeper: after a
            # data loss (FLUSHALL takes the lease key too) at most one
            # replica passes this check before it rebuilds.
            if not await lease.try_hold():
                # Not the leader: the first tick after taking the lease reconciles.
                last_reconcile = 0.0
            elif not await ctx.redis_state.state_present():
                await reconcile(ctx)
                last_reconcile = loop.time()
            if lease.held:
                await scheduler_tick(ctx)
            if lease.held and loop.time() - last_reconcile >= ctx.settings.reconcile_interval_seconds:
                await reconcile(ctx)
                last_reconcile = loop.time()
        except Exception:
            log.exception("background duty failed; retrying")
        try:
            await asyncio.wait_for(stop.wait(), timeout=ctx.settings.scheduler_interval_seconds)
        except asyncio.TimeoutError:
            pass
