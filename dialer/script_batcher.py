"""Group commit of Redis calls: ``ScriptBatcher``.

The lease scripts run many times a second under load (a claim, an attach,
an end_call and a release per call), and each is cheap next to its round
trip. ``ScriptBatcher`` sends every call queued while a round trip is in
flight together in the next one, on a connection of its own; each caller
awaits its own reply. A pipeline is only a transport: every script still
runs atomically on its own (docs/design.md §8).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["ScriptBatcher"]


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
