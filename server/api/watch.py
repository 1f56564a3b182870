"""WatchBatch: a snapshot of the batch, then its live changes.

Order of operations, so that nothing is missed:

1. Subscribe to the batch's Redis channel, and wait until the subscription
   is live (a sync token published on the channel comes back to us).
2. Read the snapshot from Postgres and send it. Every change committed after
   that read is published after its commit, so it reaches us as an event.
3. Forward events: each contact event becomes a ``ContactChange`` at once
   (no database read on that path); any event marks the progress dirty and
   the batch is re-read and sent as ``progress``, coalesced to at most one
   message per ``PROGRESS_INTERVAL`` (leading edge: the first change after a
   quiet period goes out at once; later ones wait for the interval and the
   latest state is sent). A progress identical to the last one sent is
   skipped.

The stream ends after the progress that shows a final status (COMPLETED,
FAILED, CANCELLED) once no call of the batch is still in progress (calls
live at a cancel finish and are recorded; the watcher sees them). As the
re-read can be ahead of events still on their way, the stream first keeps
forwarding events until the channel has been quiet for ``DRAIN_QUIET``
(at most ``DRAIN_MAX``), then sends the final progress and ends. A batch
already final at the snapshot ends the stream right after the snapshot.

Events are best effort (``server.service.events``): when the channel is
quiet for ``IDLE_REFRESH`` the batch is re-read anyway, so a lost event
delays a watcher, never strands it. A client that reconnects gets a fresh
snapshot. When the client goes away, grpc cancels this generator and the
``finally`` leaves the batch's channel.

The subscription is shared: every stream of this process rides one Redis
pub/sub connection (one subscription per watched batch on a cluster;
``server.api.streams``, the hub), each with its own bounded queue. Streams are capped per key and per organization, live at
most ``watch_max_seconds`` and end when their key is revoked or expired
(docs/design.md §7).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from datetime import datetime, timezone
from typing import Any, AsyncIterator

from batchcalls.v1 import batch_service_pb2 as pb
from server.api import convert
from server.api.streams import QUEUE_MAX, Listener, StreamLimitExceeded, hub_for
from server.domain.ids import contact_name

log = logging.getLogger(__name__)

PROGRESS_INTERVAL = 0.05
IDLE_REFRESH = 5.0
POLL_INTERVAL = 1.0  # when the subscription is lost (Redis down)
DRAIN_QUIET = 0.15  # final status seen: forward events until this long quiet …
DRAIN_MAX = 2.0  # … but no longer than this
SYNC_TIMEOUT = 3.0
SYNC_RETRY = 0.05
FINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})
_FINAL_ENUMS = frozenset(convert.batch_status(s) for s in FINAL_STATUSES)


class _Subscription:
    """This stream's listener on the batch channel, shared through the
    process's hub (server.api.streams): one pub/sub connection for the
    process, one channel subscription per watched batch, not per stream. The hub's reader task fills our bounded deque
    (no ``wait_for`` on a queue: a timeout can never swallow an event)."""

    def __init__(self, redis_state: Any, org_id: str, batch_id: str) -> None:
        self.redis_state = redis_state
        self.org_id = org_id
        self.batch_id = batch_id
        self.token = secrets.token_hex(8)
        self.idle_refresh = IDLE_REFRESH
        self._hub = hub_for(redis_state)
        self._listener: Listener | None = None

    @property
    def items(self) -> Any:
        return self._listener.items if self._listener is not None else ()

    @property
    def closed(self) -> bool:
        return self._listener is None or self._listener.closed

    @property
    def overflowed(self) -> bool:
        return self._listener is not None and self._listener.overflowed

    @property
    def synced(self) -> asyncio.Event:
        if self._listener is None:
            ev = asyncio.Event()
            return ev
        return self._listener.synced

    @property
    def error(self) -> BaseException | None:
        return self._listener.error if self._listener is not None else None

    async def start(self) -> None:
        """Joins the channel and returns once the subscription is live (our
        sync token came back), or after SYNC_TIMEOUT (then we still try)."""
        self._listener = listener = self._hub.join(self.org_id, self.batch_id, self.token, QUEUE_MAX)
        sync = json.dumps({"type": "watch_sync", "token": self.token}).encode()
        deadline = time.monotonic() + SYNC_TIMEOUT
        while not listener.synced.is_set() and not listener.closed:
            try:
                await self.redis_state.publish(self.org_id, self.batch_id, sync)
            except Exception as exc:  # noqa: BLE001 - Redis down: watch by polling
                log.warning("watch of %s: cannot publish sync (%s)", self.batch_id, exc)
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                log.warning("watch of %s: subscription not confirmed within %.1fs", self.batch_id, SYNC_TIMEOUT)
                return
            try:
                await asyncio.wait_for(listener.synced.wait(), min(SYNC_RETRY, remaining))
            except asyncio.TimeoutError:
                pass

    async def next(self, timeout: float) -> bytes | None:
        """The next event, waiting at most ``timeout`` seconds; None if none."""
        listener = self._listener
        if listener is None:
            return None
        if not listener.items and timeout > 0 and not listener.closed:
            listener.arrived.clear()
            try:
                await asyncio.wait_for(listener.arrived.wait(), timeout)
            except asyncio.TimeoutError:
                pass
        return listener.items.popleft() if listener.items else None

    async def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            await self._hub.leave(listener)


class _SharedReads:
    """Single-flight batch reads shared by the watchers of one batch in this
    process: 20 watchers woken by the same event cost one read, not 20.

    A watcher asks for a read that started no earlier than ``not_before``
    (the instant it received the first event it has not reflected yet).
    Every event is published after its commit, so such a read sees it."""

    KEEP = 1.0  # seconds a finished read stays reusable

    def __init__(self) -> None:
        self._reads: dict[tuple[int, str, str], tuple[float, asyncio.Future[Any]]] = {}

    async def read(self, servicer: Any, principal: Any, batch_id: str, not_before: float) -> Any:
        loop = asyncio.get_running_loop()
        key = (id(loop), principal.org_id, batch_id)
        hit = self._reads.get(key)
        if hit is None or hit[0] < not_before:
            started = time.monotonic()
            task = asyncio.ensure_future(servicer._batch_msg(principal, batch_id))
            hit = (started, task)
            self._reads[key] = hit
            task.add_done_callback(lambda t, k=key, h=hit: self._finished(loop, k, h, t))
        return await asyncio.shield(hit[1])

    def _finished(self, loop: asyncio.AbstractEventLoop, key: Any, entry: Any, task: asyncio.Future[Any]) -> None:
        if not task.cancelled():
            task.exception()  # retrieved: a failed read is re-raised to every waiter
        loop.call_later(self.KEEP, self._forget, key, entry)

    def _forget(self, key: Any, entry: Any) -> None:
        if self._reads.get(key) is entry:
            del self._reads[key]


_shared = _SharedReads()


def contact_change(batch_id: str, event: dict[str, Any]) -> pb.ContactChange:
    contact_id = str(event.get("contact_id", ""))
    when = event.get("time")
    change = pb.ContactChange(
        contact=contact_name(batch_id, contact_id),
        contact_id=contact_id,
        status=convert.contact_status(str(event.get("status") or "")),
        outcome=convert.call_outcome(str(event.get("outcome") or "")),
        attempts=int(event.get("attempts") or 0),
        phone_number_masked=str(event.get("phone_masked") or ""),
    )
    if isinstance(when, (int, float)):
        change.event_time.CopyFrom(convert.ts(datetime.fromtimestamp(float(when), tz=timezone.utc)))
    return change


def _is_over(batch: Any) -> bool:
    """Final status and no call of the batch still live."""
    return batch.status in _FINAL_ENUMS and batch.stats.dialing + batch.stats.connected == 0


def _comparable(batch: Any) -> bytes:
    return batch.SerializeToString(deterministic=True)


def _setting(ctx: Any, name: str, default: float) -> float:
    return float(getattr(ctx.settings, name, default))


async def _key_still_valid(ctx: Any, context: Any) -> None:
    """Re-authenticates the stream's API key (revoked or expired: raises
    Unauthenticated/PermissionDenied, which ends the stream)."""
    from server.api.auth import principal as authenticate
    from server.domain.errors import DomainError

    try:
        await authenticate(ctx, context)
    except DomainError:
        raise
    except Exception as exc:  # noqa: BLE001 - Postgres hiccup: check again next time
        log.warning("watch: cannot re-check the API key (%s)", exc)


async def watch_batch(servicer: Any, principal: Any, batch_id: str,
                      context: Any = None) -> AsyncIterator[pb.WatchBatchResponse]:
    """The stream. Bounds (docs/design.md §7): at most ``watch_max_per_key``
    / ``watch_max_per_org`` open streams in this process (RESOURCE_EXHAUSTED
    beyond), each lasts at most ``watch_max_seconds`` (then it ends OK with
    trailing metadata ``batchcalls-stream-end: max-lifetime``; reconnect
    for a fresh snapshot), and with ``context`` its key is re-checked every
    ``watch_key_check_seconds`` (revoked or expired: UNAUTHENTICATED)."""
    ctx = servicer.ctx
    hub = hub_for(ctx.redis_state)
    key_id = getattr(principal, "key_id", "") or ""
    hub.admit(principal.org_id, key_id,
              int(_setting(ctx, "watch_max_per_key", 10)), int(_setting(ctx, "watch_max_per_org", 50)))
    started = time.monotonic()
    max_seconds = _setting(ctx, "watch_max_seconds", 3600.0)
    ends_at = started + max_seconds if max_seconds > 0 else float("inf")
    check_every = _setting(ctx, "watch_key_check_seconds", 30.0)
    next_check = started + check_every if (check_every > 0 and context is not None) else float("inf")
    sub = _Subscription(ctx.redis_state, principal.org_id, batch_id)
    try:
        await sub.start()
        # NOT_FOUND across organizations (the read is keyed by the caller's org).
        snapshot = await _shared.read(servicer, principal, batch_id, time.monotonic())
        yield pb.WatchBatchResponse(snapshot=snapshot)
        if _is_over(snapshot):
            return
        last_sent = _comparable(snapshot)
        last_kind = "snapshot"
        last_time = time.monotonic()
        dirty = False
        dirty_since = 0.0
        polling = False
        closing_at: float | None = None  # drain until then, then the final progress
        closing_limit = 0.0
        while True:
            now = time.monotonic()
            if closing_at is not None:
                wake = closing_at
            elif dirty:
                wake = last_time + PROGRESS_INTERVAL
            else:
                wake = last_time + sub.idle_refresh
            wake = min(wake, ends_at, next_check)
            data = await sub.next(wake - now)
            if sub.overflowed:
                raise StreamLimitExceeded(
                    "WATCH_STREAM_TOO_SLOW",
                    f"the stream fell more than {QUEUE_MAX} events behind; reconnect for a fresh snapshot")
            now = time.monotonic()
            if now >= next_check:
                await _key_still_valid(ctx, context)
                next_check = time.monotonic() + check_every
            if now >= ends_at:
                if context is not None:
                    context.set_trailing_metadata((("batchcalls-stream-end", "max-lifetime"),))
                log.info("watch of %s: maximum stream lifetime (%.0fs) reached", batch_id, max_seconds)
                return
            if sub.closed and not sub.items and not polling:
                # Events lost (Redis down): poll the batch instead.
                polling = True
                sub.idle_refresh = POLL_INTERVAL
                log.warning("watch of %s: subscription ended (%s); polling", batch_id, sub.error)
            if data is not None:
                try:
                    event = json.loads(data)
                except ValueError:
                    event = {}
                kind = event.get("type") if isinstance(event, dict) else None
                if kind == "contact":
                    yield pb.WatchBatchResponse(contact_change=contact_change(batch_id, event))
                    last_kind = "contact"
                if kind in ("contact", "batch"):
                    if not dirty:
                        dirty, dirty_since = True, time.monotonic()
                    if closing_at is not None:
                        closing_at = min(time.monotonic() + DRAIN_QUIET, closing_limit)
                # other types (the sync tokens of other watchers) are ignored
            now = time.monotonic()
            if closing_at is not None:
                if now < closing_at:
                    continue
                batch = await _shared.read(servicer, principal, batch_id, time.monotonic())
                if _comparable(batch) != last_sent or last_kind != "progress":
                    yield pb.WatchBatchResponse(progress=batch)
                return
            if not ((dirty and now >= last_time + PROGRESS_INTERVAL) or (not dirty and now >= last_time + sub.idle_refresh)):
                continue
            batch = await _shared.read(servicer, principal, batch_id, dirty_since if dirty else now)
            last_time = time.monotonic()
            dirty = False
            current = _comparable(batch)
            if current != last_sent:
                last_sent = current
                last_kind = "progress"
                yield pb.WatchBatchResponse(progress=batch)
            if _is_over(batch):
                # Postgres may be ahead of the events still in flight: forward
                # those (until the channel is quiet) before the final progress.
                closing_at = last_time + DRAIN_QUIET
                closing_limit = last_time + DRAIN_MAX
    finally:
        try:
            await sub.close()
        finally:
            hub.release(principal.org_id, key_id)
