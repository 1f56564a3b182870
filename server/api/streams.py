"""WatchBatch streams: shared Redis subscriptions, caps and per-stream bounds.

One ``StreamHub`` per server process (per RedisState). On a single Redis
every watched batch of the process shares ONE pub/sub connection
(``_Mux``): a batch's channel is subscribed on it when the first watcher of
the batch arrives and unsubscribed when the last one leaves, and one reader
task dispatches each message by channel. On a Redis Cluster the channels
live on their organizations' shards (sharded pub/sub), so each watched
batch keeps one subscription of its own (``RedisState.subscribe``); either
way the watchers of one batch share it. A reader task fans every message out to the watchers' own bounded
queues; a watcher whose queue is full (a client that does not read) is
closed with ``overflowed`` set, and its stream ends RESOURCE_EXHAUSTED
(reason ``WATCH_STREAM_TOO_SLOW``) instead of growing memory.

The hub also counts open streams per API key and per organization (this
process): over ``watch_max_per_key`` / ``watch_max_per_org`` a new stream is
refused with RESOURCE_EXHAUSTED (reason ``WATCH_STREAMS_PER_KEY`` /
``WATCH_STREAMS_PER_ORG``). docs/design.md §7.

While a batch has watchers here, the hub keeps the batch's *watched*
marker in Redis (``RedisState.mark_watched``): set when its first watcher
arrives, refreshed every third of ``watched_ttl`` while any stays, left to
expire after the last one goes (another replica's watchers refresh it
too). A group commit of outcomes reads it to flush at once instead of
lingering for company, so an operator sees an outcome as soon as it is
durable, and batches nobody watches keep the throughput of large groups
(docs/design.md §8).
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections import deque
from typing import Any

from contract import keys
from server.domain.errors import ResourceExhausted

log = logging.getLogger(__name__)

#: Events a watcher may have queued before it counts as too slow.
QUEUE_MAX = 10_000
#: Seconds a batch's watched marker lives without a refresh (it is
#: refreshed every third of this while the batch has watchers here).
WATCHED_TTL = 10.0


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
    """One watched batch's channel and its listeners. On a single Redis it
    rides the hub's shared connection (``mux``); on a cluster ``task`` reads
    its own sharded subscription."""

    def __init__(self, hub: StreamHub, org_id: str, batch_id: str) -> None:
        self.hub = hub
        self.org_id = org_id
        self.batch_id = batch_id
        self.name = keys.batch_events(org_id, batch_id)
        self.listeners: set[Listener] = set()
        self.task: asyncio.Task[None] | None = None
        self.mux: _Mux | None = None
        self.dead = False  # the subscription ended: joiners need a new one

    def live(self) -> bool:
        if self.dead:
            return False
        if self.mux is not None:
            return not self.mux.dead
        return self.task is not None and not self.task.done()

    def fail(self, error: BaseException | None) -> None:
        """The subscription is gone: end every listener, forget the channel."""
        self.dead = True
        if self.hub._channels.get((self.org_id, self.batch_id)) is self:
            del self.hub._channels[(self.org_id, self.batch_id)]
        for listener in list(self.listeners):
            listener._close(error)

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
            # The subscription is gone (Redis down, or cancelled by the last
            # leave): a later watcher subscribes afresh.
            self.fail(error)
            await sub.aclose()


class _Mux:
    """One pub/sub connection for every batch channel this process watches
    (single Redis). Subscribing and unsubscribing go out on the same
    connection the reader task reads from; a lock keeps those commands
    apart from each other."""

    def __init__(self, hub: StreamHub) -> None:
        self.hub = hub
        self.pubsub = hub.redis_state.redis.pubsub(ignore_subscribe_messages=True)
        self.channels: dict[str, _Channel] = {}
        self.lock = asyncio.Lock()
        self.connected = asyncio.Event()
        self.dead = False
        self.task: asyncio.Task[None] = asyncio.create_task(self.run(), name="watch-mux")

    async def add(self, channel: _Channel) -> None:
        try:
            async with self.lock:
                await self.pubsub.subscribe(channel.name)
            self.connected.set()
        except Exception as exc:  # noqa: BLE001 - Redis down: the stream ends with it
            self.channels.pop(channel.name, None)
            channel.fail(exc)

    async def remove(self, channel: _Channel) -> None:
        if self.channels.get(channel.name) is channel:
            del self.channels[channel.name]
        try:
            async with self.lock:
                await self.pubsub.unsubscribe(channel.name)
        except Exception:  # noqa: BLE001 - best effort: the connection may be gone
            pass

    async def run(self) -> None:
        error: BaseException | None = None
        try:
            await self.connected.wait()
            while True:
                message = await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if not message or message.get("type") != "message":
                    continue
                name = message["channel"]
                channel = self.channels.get(name.decode() if isinstance(name, bytes) else str(name))
                if channel is None:
                    continue
                data = message["data"]
                data = data if isinstance(data, bytes) else str(data).encode("utf-8")
                for listener in list(channel.listeners):
                    listener._push(data)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported to the streams
            error = exc
        finally:
            # The connection is gone (Redis down, or the hub closed): every
            # stream on it ends; a later watcher gets a new connection.
            self.dead = True
            if self.hub._mux is self:
                self.hub._mux = None
            for channel in list(self.channels.values()):
                channel.fail(error)
            self.channels.clear()
            try:
                await asyncio.shield(self.pubsub.aclose())
            except Exception:  # noqa: BLE001
                pass


class StreamHub:
    def __init__(self, redis_state: Any) -> None:
        self.redis_state = redis_state
        self._channels: dict[tuple[str, str], _Channel] = {}
        self._mux: _Mux | None = None
        self.per_key: dict[str, int] = {}
        self.per_org: dict[str, int] = {}
        self.watched_ttl = WATCHED_TTL
        self._marker: asyncio.Task[None] | None = None
        self._marker_wake = asyncio.Event()

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
        """A listener on the batch's channel; subscribes it if it is the
        first. The subscription completes in the background: a watcher
        knows it is live when its own sync event arrives (server.api.watch)."""
        key = (org_id, batch_id)
        channel = self._channels.get(key)
        if channel is None or not channel.live():
            channel = _Channel(self, org_id, batch_id)
            self._channels[key] = channel
            if getattr(self.redis_state, "cluster", False):
                channel.task = asyncio.create_task(channel.run(), name=f"watch-{batch_id}")
            else:
                if self._mux is None or self._mux.dead:
                    self._mux = _Mux(self)
                channel.mux = self._mux
                self._mux.channels[channel.name] = channel
                channel.task = asyncio.create_task(self._mux.add(channel), name=f"watch-sub-{batch_id}")
        listener = Listener(channel, token, queue_max)
        fresh = not channel.listeners
        channel.listeners.add(listener)
        if fresh:
            self._mark_now()
        return listener

    async def leave(self, listener: Listener) -> None:
        """Removes the listener; the last one out unsubscribes the channel."""
        listener._close(listener.error)
        channel = listener._channel
        channel.listeners.discard(listener)
        if channel.listeners:
            return
        if self._channels.get((channel.org_id, channel.batch_id)) is channel:
            del self._channels[(channel.org_id, channel.batch_id)]
        channel.dead = True
        self._marker_wake.set()  # the marker task ends when nothing is watched any more
        if channel.mux is not None:
            if channel.task is not None and not channel.task.done():
                await asyncio.wait([channel.task])
            await channel.mux.remove(channel)
            return
        task = channel.task
        if task is None:
            return
        if not task.done():
            task.cancel()
        try:
            await task
        except (asyncio.CancelledError, Exception):  # noqa: BLE001
            pass

    def subscribed(self) -> int:
        """Channels this hub holds a subscription to (tests, metrics)."""
        return len(self._channels)

    # -- watched markers -----------------------------------------------------------

    def watched(self) -> list[tuple[str, str]]:
        """(org id, batch id) of every batch with a watcher in this process."""
        return sorted(key for key, channel in self._channels.items() if channel.listeners)

    def _mark_now(self) -> None:
        """A batch got its first watcher here: (re)mark every watched batch
        at once, without waiting for the refresh period."""
        if self._marker is None or self._marker.done():
            self._marker = asyncio.create_task(self._keep_marked(), name="watch-marker")
        else:
            self._marker_wake.set()

    async def _keep_marked(self) -> None:
        """Marks the watched batches, then every ``watched_ttl / 3`` (or at
        once when a batch gets its first watcher) again; ends when no batch
        has a watcher here (their markers then expire)."""
        while True:
            self._marker_wake.clear()
            batches = self.watched()
            if not batches:
                return
            try:
                await self.redis_state.mark_watched(batches, self.watched_ttl)
            except Exception as exc:  # noqa: BLE001 - Redis down: outcomes merely linger
                log.warning("cannot mark %d watched batches: %s", len(batches), exc)
            try:
                await asyncio.wait_for(self._marker_wake.wait(), self.watched_ttl / 3)
            except asyncio.TimeoutError:
                pass


_hubs: weakref.WeakKeyDictionary[Any, StreamHub] = weakref.WeakKeyDictionary()


def hub_for(redis_state: Any) -> StreamHub:
    """The process's hub of this RedisState (one per server context)."""
    hub = _hubs.get(redis_state)
    if hub is None:
        hub = StreamHub(redis_state)
        _hubs[redis_state] = hub
    return hub
