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
live at a cancel finish and are recorded; the watcher sees them). A batch
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
from datetime import datetime, timezone
from typing import Any, AsyncIterator

from batchcalls.v1 import batch_service_pb2 as pb
from server.api import convert
from server.domain.ids import contact_name

log = logging.getLogger(__name__)

PROGRESS_INTERVAL = 0.05
IDLE_REFRESH = 5.0
POLL_INTERVAL = 1.0  # when the subscription is lost (Redis down)
SYNC_TIMEOUT = 3.0
SYNC_RETRY = 0.05
QUEUE_MAX = 10_000
FINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})
_FINAL_ENUMS = frozenset(convert.batch_status(s) for s in FINAL_STATUSES)
_CLOSED = object()


class _Subscription:
    """Reads the batch channel into a queue on a task of its own."""

    def __init__(self, redis_state: Any, org_id: str, batch_id: str) -> None:
        self.redis_state = redis_state
        self.org_id = org_id
        self.batch_id = batch_id
        self.queue: asyncio.Queue[Any] = asyncio.Queue(QUEUE_MAX)
        self.token = secrets.token_hex(8)
        self.synced = asyncio.Event()
        self.error: BaseException | None = None
        self.overflowed = False
        self.idle_refresh = IDLE_REFRESH
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        sub = self.redis_state.subscribe(self.org_id, self.batch_id)
        try:
            async for data in sub:
                if not self.synced.is_set() and self.token.encode() in data:
                    try:
                        event = json.loads(data)
                    except ValueError:
                        event = {}
                    if event.get("type") == "watch_sync" and event.get("token") == self.token:
                        self.synced.set()
                        continue
                try:
                    self.queue.put_nowait(data)
                except asyncio.QueueFull:
                    # A watcher that cannot keep up: drop contact events but
                    # keep the progress right (the re-read carries the counters).
                    self.overflowed = True
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported to the stream loop
            self.error = exc
        finally:
            await sub.aclose()
            if not self.queue.full():
                self.queue.put_nowait(_CLOSED)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"watch-{self.batch_id}")
        sync = json.dumps({"type": "watch_sync", "token": self.token}).encode()
        deadline = time.monotonic() + SYNC_TIMEOUT
        while not self.synced.is_set():
            if self._task.done():
                break
            try:
                await self.redis_state.publish(self.org_id, self.batch_id, sync)
            except Exception as exc:  # noqa: BLE001 - Redis down: watch by polling
                log.warning("watch of %s: cannot publish sync (%s); polling", self.batch_id, exc)
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                log.warning("watch of %s: subscription not confirmed within %.1fs", self.batch_id, SYNC_TIMEOUT)
                return
            try:
                await asyncio.wait_for(self.synced.wait(), min(SYNC_RETRY, remaining))
            except asyncio.TimeoutError:
                pass

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
        snapshot = await servicer._batch_msg(principal, batch_id)  # NOT_FOUND across organizations
        yield pb.WatchBatchResponse(snapshot=snapshot)
        if _is_over(snapshot):
            return
        last_sent = _comparable(snapshot)
        last_time = time.monotonic()
        dirty = False
        while True:
            now = time.monotonic()
            if dirty:
                timeout = max(0.0, last_time + PROGRESS_INTERVAL - now)
            else:
                timeout = max(0.0, last_time + sub.idle_refresh - now)
            item: Any = None
            if timeout > 0 or not sub.queue.empty():
                try:
                    item = await asyncio.wait_for(sub.queue.get(), timeout) if timeout > 0 else sub.queue.get_nowait()
                except asyncio.TimeoutError:
                    item = None
            if item is _CLOSED:
                if sub.error is not None:
                    log.warning("watch of %s: subscription lost (%s); polling", batch_id, sub.error)
                # Without events, fall back to polling the batch.
                sub = _Polling(sub)
                item = None
            if item is not None:
                try:
                    event = json.loads(item)
                except ValueError:
                    event = {}
                kind = event.get("type")
                if kind == "contact":
                    yield pb.WatchBatchResponse(contact_change=contact_change(batch_id, event))
                    dirty = True
                elif kind == "batch":
                    dirty = True
                # other types (watch_sync of other watchers) are ignored
            now = time.monotonic()
            due_progress = dirty and now >= last_time + PROGRESS_INTERVAL
            idle = not dirty and now >= last_time + sub.idle_refresh
            if not (due_progress or idle):
                continue
            batch = await servicer._batch_msg(principal, batch_id)
            last_time = time.monotonic()
            dirty = False
            current = _comparable(batch)
            if current != last_sent:
                last_sent = current
                yield pb.WatchBatchResponse(progress=batch)
            if _is_over(batch):
                return
    finally:
        await sub.close()


class _Polling:
    """Stands in for a lost subscription: no events, the idle refresh polls."""

    def __init__(self, previous: _Subscription) -> None:
        self.previous = previous
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.error = None
        self.idle_refresh = POLL_INTERVAL

    async def close(self) -> None:
        await self.previous.close()
