"""Group commit of Redis calls: ``ScriptBatcher``.

The lease scripts run many times a second under load (a claim, an attach,
an end_call and a release per call), and each is cheap next to its round
trip. ``ScriptBatcher`` sends every call queued while a round trip is in
flight together in the next one, on a connection of its own; each caller
awaits its own reply. A pipeline is only a transport: every script still
runs atomically on its own (docs/design.md §8).

On a Redis Cluster (a ``redis.asyncio.cluster.RedisCluster`` client) the
round trip is split by node: each command goes to the master of its first
key's slot (every script call's keys are of one organization, one slot),
one pipeline per node on a connection of that node, all nodes at once
(docs/redis.md, "The dialer on a cluster").
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MovedError,
    NoScriptError,
    RedisClusterException,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from contract.resp import pack_commands

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
    as the round trip itself, and packed by ``contract.resp.pack_commands``
    (one join for the whole pipeline, not redis-py's per argument); a connection error drops the connection and
    the round trip is sent once more on a new one (as redis-py's retry does).

    ``lazy=True`` is for calls nobody waits on to free a slot (a release
    whose slots end_call already gave back, heartbeats): they start no
    round trip of their own but ride along with the next one, or leave after
    ``linger_seconds`` at most, so under load they cost no round trip.

    On a ``RedisCluster`` (``_send_cluster``) each command of a round trip
    goes to the master that serves its first key's slot (for EVALSHA the
    first of its KEYS; for plain commands the first argument, which every
    command queued here has as its key), one pipeline per master, the
    masters' pipelines concurrently; replies are put back in order. A
    command's error reply is handled per command: NOSCRIPT (a master that
    restarted, was flushed or newly promoted) resends it after a SCRIPT
    LOAD in the same pipeline to that master; MOVED, CLUSTERDOWN and a
    master's connection error refresh the slot map and resend; ASK resends
    to the named node after ASKING; TRYAGAIN resends after a short pause.
    A connection error or CLUSTERDOWN also pauses before the resend
    (``CLUSTER_DOWN_PAUSE_SECONDS``, doubled each pass: a dead master is
    replaced after about the cluster's node timeout). Up to
    ``CLUSTER_ATTEMPTS`` passes, then the error goes to the caller, always
    as a ``RedisError`` (redis-py's ``RedisClusterException``s of a slot
    map in flux, e.g. ``SlotNotCoveredError``, become ``ClusterDownError``)
    so the callers' Redis error handling (retry with back-off) covers it.
    Commands of one organization go to one master in their queued order, so
    a claim round's LMOVE still precedes its LRANGE; nothing is ordered
    across masters (nothing needs it).
    """

    #: passes of a cluster round trip (first send + resends).
    CLUSTER_ATTEMPTS = 3
    #: pause before the resend after a master's connection error or
    #: CLUSTERDOWN, doubled on each pass.
    CLUSTER_DOWN_PAUSE_SECONDS = 0.05

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
        self.cluster = isinstance(redis, RedisCluster)
        # Chosen once: the single-Redis path pays nothing for the cluster's.
        self._send_group = self._send_cluster if self.cluster else self._send

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
                    await self._send_group(group)
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
                await _write(conn, pack_commands(commands))
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

    # -- Redis Cluster -------------------------------------------------------------

    def _node_of(self, command: tuple[Any, ...]) -> Any:
        """The master serving the slot of ``command``'s first key."""
        name = command[0]
        if name == "EVALSHA" or name == "EVAL":
            if int(command[2]) < 1:
                return self._redis.get_default_node()
            key = command[3]
        else:
            key = command[1]
        return self._redis.get_node_from_key(key)

    async def _send_cluster(self, group: list[_Item]) -> None:
        """``_send`` on a cluster: see the class docstring."""
        cluster = self._redis
        try:
            await cluster.initialize()  # a no-op once the slot map is known
        except Exception as exc:
            exc = _as_redis_error(exc)
            for item in group:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        self.pipelines += 1
        replies: list[list[Any]] = [[None] * len(item.commands) for item in group]
        # (item, command, ASK target or None, SCRIPT LOAD first)
        todo: list[tuple[int, int, Any, bool]] = [
            (i, j, None, False) for i, item in enumerate(group) for j in range(len(item.commands))
        ]
        for attempt in range(self.CLUSTER_ATTEMPTS):
            last = attempt == self.CLUSTER_ATTEMPTS - 1
            by_node: dict[str, tuple[Any, list[tuple[int, int, Any, bool]]]] = {}
            for ref in todo:
                i, j, ask, _ = ref
                try:
                    node = ask if ask is not None else self._node_of(group[i].commands[j])
                except Exception as exc:  # a slot no master serves (cluster down)
                    if last:
                        replies[i][j] = _as_redis_error(exc)
                        continue
                    node = None
                if node is None:
                    by_node.setdefault("", (None, []))[1].append(ref)
                else:
                    by_node.setdefault(node.name, (node, []))[1].append(ref)
            unrouted = by_node.pop("", (None, []))[1]
            outcomes = await asyncio.gather(
                *(self._node_round_trip(node, group, refs) for node, refs in by_node.values()),
                return_exceptions=True,
            )
            todo = list(unrouted)
            refresh = bool(unrouted)
            pause = False
            down = bool(unrouted)  # a master unreachable: back off before resending
            for (node, refs), outcome in zip(by_node.values(), outcomes):
                if isinstance(outcome, BaseException):
                    if isinstance(outcome, (RedisConnectionError, RedisTimeoutError, OSError)) and not last:
                        todo += [(i, j, None, False) for i, j, _, _ in refs]  # the node may be gone
                        refresh = down = True
                        continue
                    if not isinstance(outcome, Exception):
                        raise outcome  # cancelled
                    for i, j, _, _ in refs:
                        replies[i][j] = outcome
                    continue
                for (i, j, ask, _), reply in zip(refs, outcome):
                    if not isinstance(reply, ResponseError) or last:
                        replies[i][j] = reply
                    elif isinstance(reply, NoScriptError) and group[i].script is not None:
                        todo.append((i, j, ask, True))
                    elif isinstance(reply, (MovedError, ClusterDownError)):
                        todo.append((i, j, None, False))
                        refresh = True
                        down = down or isinstance(reply, ClusterDownError)
                    elif isinstance(reply, AskError):
                        target = cluster.get_node(host=reply.host, port=reply.port)
                        todo.append((i, j, target, False))
                        refresh = refresh or target is None
                    elif isinstance(reply, TryAgainError):
                        todo.append((i, j, ask, False))
                        pause = True
                    else:
                        replies[i][j] = reply
            if not todo:
                break
            if down:
                # A master is down and maybe not replaced yet (a failover
                # takes about the node timeout): give it a moment, longer on
                # each pass. The callers retry after that with back-off.
                await asyncio.sleep(self.CLUSTER_DOWN_PAUSE_SECONDS * 2**attempt)
            if refresh:
                try:
                    await cluster.nodes_manager.initialize()
                except Exception:  # the next pass tries with the map it has
                    pass
            if pause:
                await asyncio.sleep(0.05)
        for item, mine in zip(group, replies):
            if item.future.done():
                continue
            if item.script is None:
                item.future.set_result(mine)
            elif isinstance(mine[0], Exception):
                item.future.set_exception(mine[0])
            else:
                item.future.set_result(mine[0])

    async def _node_round_trip(
        self, node: Any, group: list[_Item], refs: list[tuple[int, int, Any, bool]]
    ) -> list[Any]:
        """One pipeline to one cluster node: for each ref its command (after
        SCRIPT LOAD of its script when it was missing there, after ASKING
        when redirected by ASK); the command's reply (an error reply as its
        exception) per ref."""
        commands: list[tuple[Any, ...]] = []
        loaded: set[str] = set()
        for i, _, _, load in refs:
            script = group[i].script
            if load and script.sha not in loaded:
                loaded.add(script.sha)
                commands.append(("SCRIPT", "LOAD", script.script))
        wanted: list[int] = []
        for i, j, ask, _ in refs:
            if ask is not None:
                commands.append(("ASKING",))
            wanted.append(len(commands))
            commands.append(group[i].commands[j])
        conn = node.acquire_connection()
        try:
            should_reconnect = getattr(conn, "should_reconnect", None)  # redis-py >= 7: maintenance
            if should_reconnect is not None and should_reconnect():
                await conn.disconnect()
            await _write(conn, pack_commands(commands))
            replies: list[Any] = []
            for _ in commands:
                try:
                    replies.append(await conn.read_response())
                except ResponseError as exc:
                    replies.append(exc)
        except BaseException:
            try:
                await conn.disconnect()  # its stream position is unknown
            finally:
                node.release(conn)
            raise
        node.release(conn)
        return [replies[k] for k in wanted]


async def _write(conn: Any, data: bytes) -> None:
    """``conn.send_packed_command(data)`` without its per-write task: with a
    socket timeout redis-py wraps every write in ``asyncio.wait_for``, a new
    task per round trip, though a write that fits the socket's buffer never
    waits. Here the bytes go to the transport at once and only a write that
    did not leave (a full buffer) waits, under the socket timeout. Errors
    are redis-py's (the connection dropped, ConnectionError / TimeoutError),
    which the callers already handle."""
    writer = getattr(conn, "_writer", None)
    if not conn.is_connected or writer is None or writer.transport.is_closing():
        await conn.send_packed_command(data, check_health=False)
        return
    try:
        writer.write(data)
        if writer.transport.get_write_buffer_size():
            async with asyncio.timeout(conn.socket_timeout):
                await writer.drain()
    except TimeoutError:
        await conn.disconnect(nowait=True)
        raise RedisTimeoutError("Timeout writing to socket") from None
    except OSError as exc:
        await conn.disconnect(nowait=True)
        raise RedisConnectionError(f"Error while writing to socket: {exc!r}") from exc
    except BaseException:
        await conn.disconnect(nowait=True)
        raise


def _as_redis_error(exc: Exception) -> Exception:
    """redis-py raises ``RedisClusterException`` (not a ``RedisError``) for
    a slot no node serves or no reachable startup node, both passing states
    of a failover: as a ``ClusterDownError`` the callers retry it like any
    Redis error."""
    if isinstance(exc, RedisClusterException):
        err = ClusterDownError(f"{type(exc).__name__}: {exc}")
        err.__cause__ = exc
        return err
    return exc
