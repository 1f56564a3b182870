"""Which batches someone is watching right now (a WatchBatch stream open on
some server replica), so their outcomes skip the group commit's linger.

The server keeps ``keys.batch_watched`` alive while a batch has a watcher.
This dialer reads it for the batches it holds leases in, every
``REFRESH_SECONDS``, in one pipelined round trip (EXISTS per batch), and
``ServerClient.finish`` sends a watched batch's outcome at once instead of
waiting up to the FinishAttempt linger for company: an operator watching
sees each outcome as soon as it is durable, and an unwatched campaign keeps
the larger, cheaper groups (docs/design.md §8). A marker seen late (the
first ``REFRESH_SECONDS`` of a watch) or a Redis error only costs the
linger, never an outcome.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from redis.exceptions import RedisClusterException, RedisError

from contract import keys
from dialer.aio import wait_event
from dialer.logging import log_event
from dialer.script_batcher import ScriptBatcher

__all__ = ["REFRESH_SECONDS", "WatchedBatches"]

log = logging.getLogger("dialer.worker")

#: How often the markers of the batches this dialer holds leases in are read.
REFRESH_SECONDS = 0.5


class WatchedBatches:
    """The set of (org id, batch id) this dialer last saw watched."""

    def __init__(self, batcher: ScriptBatcher) -> None:
        self.batcher = batcher
        self._watched: frozenset[tuple[str, str]] = frozenset()

    def is_watched(self, org_id: str, batch_id: str) -> bool:
        return (org_id, batch_id) in self._watched

    async def refresh(self, batches: Iterable[tuple[str, str]]) -> None:
        batches = sorted(set(batches))
        if not batches:
            self._watched = frozenset()
            return
        replies = await self.batcher.commands([("EXISTS", keys.batch_watched(o, b)) for o, b in batches])
        self._watched = frozenset(
            ob for ob, reply in zip(batches, replies) if not isinstance(reply, Exception) and int(reply)
        )

    async def refresh_loop(self, batches: Callable[[], Iterable[tuple[str, str]]], stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.refresh(batches())
            except (RedisError, RedisClusterException, OSError) as exc:
                log_event(log, "watched.redis_error", logging.WARNING, error=repr(exc))
            await wait_event(stop, REFRESH_SECONDS)
