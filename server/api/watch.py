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
``finally`` closes the subscription.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections import deque
from datetime import datetime, timezone
from typing import Any, AsyncIterator

from batchcalls.v1 import batch_service_pb2 as pb
from server.api import convert
from server.domain.ids import contact_name

log = logging.getLogger(__name__)

PROGRESS_INTERVAL = 0.05
IDLE_REFRESH = 5.0
POLL_INTERVAL = 1.0  # when the subscription is lost (Redis down)
DRAIN_QUIET = 0.15  # final status seen: forward events until this long quiet …
DRAIN_MAX = 2.0  # … but no longer than this
SYNC_TIMEOUT = 3.0
SYNC_RETRY = 0.05
QUEUE_MAX = 10_000
FINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})
_FINAL_ENUMS = frozenset(convert.batch_status(s) for s in FINAL_STATUSES)


class _Subscription:
    """Reads the batch channel into a deque on a task of its own (no
    ``wait_for`` on a queue: a timeout can never swallow an event)."""

    def __init__(self, redis_state: Any, org_id: str, batch_id: str) -> None:
        self.redis_state = redis_state
        self.org_id = org_id
        self.batch_id = batch_id
        self.items: deque[bytes] = deque()
        self.arrived = asyncio.Event()
        self.token = secrets.token_hex(8)
        self.synced = asyncio.Event()
        self.closed = False
        self.error: BaseException | None = None
        self.dropped = 0
        self.idle_refresh = IDLE_REFRESH
        self._task: asyncio.Task[None] | None = None

    def _is_own_sync(self, data: bytes) -> bool:
        if self.synced.is_set() or self.token.encode() not in data:
            return False
        try:
            event = json.loads(data)
        except ValueError:
            return False
        return event.get("type") == "watch_sync" and event.get("token") == self.token

    async def _run(self) -> None:
        sub = self.redis_state.subscribe(self.org_id, self.batch_id)
        try:
            async for data in sub:
                if self._is_own_sync(data):
                    self.synced.set()
                    continue
                if len(self.items) >= QUEUE_MAX:
                    # A client that cannot keep up loses contact events; the
                    # progress stays right (it is re-read from Postgres).
                    self.items.popleft()
                    self.dropped += 1
                self.items.append(data)
                self.arrived.set()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported to the stream loop
            self.error = exc
        finally:
            self.closed = True
            self.arrived.set()
            await sub.aclose()

    async def start(self) -> None:
        """Subscribes and returns once the subscription is live (our sync
        token came back), or after SYNC_TIMEOUT (then we still try)."""
        self._task = asyncio.create_task(self._run(), name=f"watch-{self.batch_id}")
        sync = json.dumps({"type": "watch_sync", "token": self.token}).encode()
        deadline = time.monotonic() + SYNC_TIMEOUT
        while not self.synced.is_set() and not self.closed:
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
                await asyncio.wait_for(self.synced.wait(), min(SYNC_RETRY, remaining))
            except asyncio.TimeoutError:
                pass

    async def next(self, timeout: float) -> bytes | None:
        """The next event, waiting at most ``timeout`` seconds; None if none."""
        if not self.items and timeout > 0 and not self.closed:
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), timeout)
            except asyncio.TimeoutError:
                pass
        return self.items.popleft() if self.items else None

    async def close(self) -> None:
        task = self._task
        if task is None:
            return
        if not task.done():
            task.cancel()
        try:
            await task
        except (asyncio.CancelledError, Exception):  # noqa: BLE001
            pass


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


async def watch_batch(servicer: Any, principal: Any, batch_id: str) -> AsyncIterator[pb.WatchBatchResponse]:
    ctx = servicer.ctx
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
            data = await sub.next(wake - now)
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
        await sub.close()
