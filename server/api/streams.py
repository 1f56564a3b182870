"""WatchBatch streams: shared Redis subscriptions, caps and per-stream bounds.

One ``StreamHub`` per server process (per RedisState). The watchers of a
batch share ONE subscription to its channel (``RedisState.subscribe``, so a
cluster still goes through sharded pub/sub): the channel is subscribed when
the first watcher of the batch arrives and unsubscribed when the last one
leaves. A reader task fans every message out to the watchers' own bounded
queues; a watcher whose queue is full (a client that does not read) is
closed with ``overflowed`` set, and its stream ends RESOURCE_EXHAUSTED
(reason ``WATCH_STREAM_TOO_SLOW``) instead of growing memory.

The hub also counts open streams per API key and per organization (this
process): over ``watch_max_per_key`` / ``watch_max_per_org`` a new stream is
refused with RESOURCE_EXHAUSTED (reason ``WATCH_STREAMS_PER_KEY`` /
``WATCH_STREAMS_PER_ORG``). docs/design.md §7.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections import deque
from typing import Any

from server.domain.errors import ResourceExhausted

log = logging.getLogger(__name__)

#: Events a watcher may have queued before it counts as too slow.
QUEUE_MAX = 10_000


class StreamLimitExceeded(ResourceExhausted):
    """RESOURCE_EXHAUSTED with an ErrorInfo ``reason`` (server.api.errors)."""

    def __init__(self, reason: str, message: str, metadata: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.metadata = metadata or {}


class Listener:
    """One stream's view of a shared channel: its own bounded deque."""

    def __init__(self, channel: _Channel, token: str, queue_max: int) -> None:
        self._channel = channel
        self.token = token
        self.queue_max = queue_max
        self.items: deque[bytes] = deque()
        self.arrived = asyncio.Event()
        self.synced = asyncio.Event()
        self.closed = False
        self.overflowed = False
        self.error: BaseException | None = None

    def _is_own_sync(self, data: bytes) -> bool:
        if self.synced.is_set() or self.token.encode() not in data:
            return False
        try:
            event = json.loads(data)
        except ValueError:
            return False
        return isinstance(event, dict) and event.get("type") == "watch_sync" and event.get("token") == self.token

    def _push(self, data: bytes) -> None:
        if self.closed:
            return
        if self._is_own_sync(data):
            self.synced.set()
            return
        if len(self.items) >= self.queue_max:
            # Too slow: drop what it holds and close it (the stream ends
            # with a status; the client reconnects and gets a snapshot).
            self.items.clear()
            self.overflowed = True
            self._close(None)
            return
        self.items.append(data)
        self.arrived.set()

    def _close(self, error: BaseException | None) -> None:
        if not self.closed:
            self.closed = True
            self.error = error
            self.arrived.set()


class _Channel:
    def __init__(self, hub: StreamHub, org_id: str, batch_id: str) -> None:
        self.hub = hub
        self.org_id = org_id
        self.batch_id = batch_id
        self.listeners: set[Listener] = set()
        self.task: asyncio.Task[None] | None = None
        self.dead = False  # the subscription ended: joiners need a new one

    async def run(self) -> None:
        sub = self.hub.redis_state.subscribe(self.org_id, self.batch_id)
        error: BaseException | None = None
        try:
            async for data in sub:
                for listener in list(self.listeners):
                    listener._push(data)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported to the streams
            error = exc
        finally:
            self.dead = True
            # The subscription is gone (Redis down, or cancelled by the last
            # leave): a later watcher subscribes afresh.
            if self.hub._channels.get((self.org_id, self.batch_id)) is self:
                del self.hub._channels[(self.org_id, self.batch_id)]
            for listener in list(self.listeners):
                listener._close(error)
            await sub.aclose()


class StreamHub:
    def __init__(self, redis_state: Any) -> None:
        self.redis_state = redis_state
        self._channels: dict[tuple[str, str], _Channel] = {}
        self.per_key: dict[str, int] = {}
        self.per_org: dict[str, int] = {}

    # -- caps --------------------------------------------------------------------

    def admit(self, org_id: str, key_id: str, max_per_key: int, max_per_org: int) -> None:
        """Count a new stream of ``key_id`` (of ``org_id``) or refuse it
        (limits <= 0 are off). Pair with ``release``."""
        if max_per_key > 0 and self.per_key.get(key_id, 0) >= max_per_key:
            raise StreamLimitExceeded(
                "WATCH_STREAMS_PER_KEY",
                f"too many open WatchBatch streams for this API key (at most {max_per_key})",
                {"limit": str(max_per_key)},
            )
        if max_per_org > 0 and self.per_org.get(org_id, 0) >= max_per_org:
            raise StreamLimitExceeded(
                "WATCH_STREAMS_PER_ORG",
                f"too many open WatchBatch streams for this organization (at most {max_per_org})",
                {"limit": str(max_per_org)},
            )
        self.per_key[key_id] = self.per_key.get(key_id, 0) + 1
        self.per_org[org_id] = self.per_org.get(org_id, 0) + 1

    def release(self, org_id: str, key_id: str) -> None:
        for counts, k in ((self.per_key, key_id), (self.per_org, org_id)):
            n = counts.get(k, 0) - 1
            if n > 0:
                counts[k] = n
            else:
                counts.pop(k, None)

    # -- shared subscriptions ----------------------------------------------------

    def join(self, org_id: str, batch_id: str, token: str, queue_max: int = QUEUE_MAX) -> Listener:
        """A listener on the batch's channel; subscribes it if it is the first."""
        key = (org_id, batch_id)
        channel = self._channels.get(key)
        if channel is None or channel.dead or channel.task is None or channel.task.done():
            channel = _Channel(self, org_id, batch_id)
            self._channels[key] = channel
            channel.task = asyncio.create_task(channel.run(), name=f"watch-{batch_id}")
        listener = Listener(channel, token, queue_max)
        channel.listeners.add(listener)
        return listener

    async def leave(self, listener: Listener) -> None:
        """Removes the listener; the last one out unsubscribes the channel."""
        listener._close(listener.error)
        channel = listener._channel
        channel.listeners.discard(listener)
        if channel.listeners or channel.task is None:
            return
        if self._channels.get((channel.org_id, channel.batch_id)) is channel:
            del self._channels[(channel.org_id, channel.batch_id)]
        task = channel.task
        if not task.done():
            task.cancel()
        try:
            await task
        except (asyncio.CancelledError, Exception):  # noqa: BLE001
            pass

    def subscribed(self) -> int:
        """Channels this hub holds a subscription to (tests, metrics)."""
        return len(self._channels)


_hubs: weakref.WeakKeyDictionary[Any, StreamHub] = weakref.WeakKeyDictionary()


def hub_for(redis_state: Any) -> StreamHub:
    """The process's hub of this RedisState (one per server context)."""
    hub = _hubs.get(redis_state)
    if hub is None:
        hub = StreamHub(redis_state)
        _hubs[redis_state] = hub
    return hub
