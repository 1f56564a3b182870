"""server/api/streams.py on a real Redis (the session's embedded one): the
watchers of a batch share one subscription, the last one out unsubscribes,
a slow listener is closed instead of growing, and the stream caps count."""

from __future__ import annotations

import asyncio
import json
import secrets

import pytest

from contract import keys
from server.adapters.redis.state import RedisState
from server.api.streams import StreamHub, StreamLimitExceeded


async def _numsub(r, channel: str) -> int:
    counts = dict(await r.pubsub_numsub(channel))
    return int(counts.get(channel.encode(), counts.get(channel, 0)))


async def _wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def test_every_watched_batch_shares_one_connection(embedded):
    """Streams of three batches (two watchers each) ride ONE pub/sub
    connection of the process, each message reaching only its batch's
    watchers."""
    import redis.asyncio as aioredis

    async def main():
        r = aioredis.Redis.from_url(embedded.redis_url)
        state = RedisState(r)
        hub = StreamHub(state)
        org = f"org_{secrets.token_hex(4)}"
        batches = ["B1", "B2", "B3"]

        async def pubsub_clients() -> int:
            return sum(1 for c in await r.client_list() if int(c.get("sub", 0)) > 0)

        before = await pubsub_clients()
        try:
            listeners = {b: [hub.join(org, b, secrets.token_hex(4)) for _ in range(2)] for b in batches}

            async def all_subscribed():
                return all([await _numsub(r, keys.batch_events(org, b)) == 1 for b in batches])

            await _wait_for(all_subscribed)
            assert await pubsub_clients() - before == 1
            await state.publish(org, "B2", b'{"type": "batch", "b": 2}')
            for lst in listeners["B2"]:
                await asyncio.wait_for(lst.arrived.wait(), 5)
                assert list(lst.items) == [b'{"type": "batch", "b": 2}']
            assert not any(lst.items for b in ("B1", "B3") for lst in listeners[b])
            for b in batches:
                for lst in listeners[b]:
                    await hub.leave(lst)

            async def none_subscribed():
                return all([await _numsub(r, keys.batch_events(org, b)) == 0 for b in batches])

            await _wait_for(none_subscribed)
            assert hub.subscribed() == 0
        finally:
            await r.aclose()

    asyncio.run(main())


def test_watchers_of_a_batch_share_one_subscription_and_the_last_unsubscribes(embedded):
    import redis.asyncio as aioredis

    async def main():
        r = aioredis.Redis.from_url(embedded.redis_url)
        state = RedisState(r)
        hub = StreamHub(state)
        org, batch = f"org_{secrets.token_hex(4)}", "B1"
        channel = keys.batch_events(org, batch)
        try:
            listeners = [hub.join(org, batch, secrets.token_hex(4)) for _ in range(5)]

            async def subscribed():
                return await _numsub(r, channel) == 1

            await _wait_for(subscribed)
            # One subscriber connection for the five streams.
            assert await _numsub(r, channel) == 1 and hub.subscribed() == 1
            # A sync token reaches only its owner; an event reaches all.
            await state.publish(org, batch, json.dumps({"type": "watch_sync", "token": listeners[0].token}).encode())
            await state.publish(org, batch, b'{"type": "batch"}')
            await asyncio.wait_for(listeners[0].synced.wait(), 5)
            for lst in listeners:
                await asyncio.wait_for(lst.arrived.wait(), 5)
                assert list(lst.items)[-1] == b'{"type": "batch"}'
            assert not any(lst.synced.is_set() for lst in listeners[1:])
            for lst in listeners[:-1]:
                await hub.leave(lst)
            assert await _numsub(r, channel) == 1  # one watcher left
            await hub.leave(listeners[-1])

            async def unsubscribed():
                return await _numsub(r, channel) == 0

            await _wait_for(unsubscribed)
            assert hub.subscribed() == 0
        finally:
            await r.aclose()

    asyncio.run(main())


def test_a_listener_that_does_not_read_is_closed_not_grown(embedded):
    import redis.asyncio as aioredis

    async def main():
        r = aioredis.Redis.from_url(embedded.redis_url)
        state = RedisState(r)
        hub = StreamHub(state)
        org, batch = f"org_{secrets.token_hex(4)}", "B2"
        try:
            slow = hub.join(org, batch, "slow", queue_max=3)
            fast = hub.join(org, batch, "fast", queue_max=100)

            async def subscribed():
                return await _numsub(r, keys.batch_events(org, batch)) == 1

            await _wait_for(subscribed)
            for i in range(5):
                await state.publish(org, batch, json.dumps({"type": "batch", "i": i}).encode())

            async def fast_has_all():
                return len(fast.items) == 5

            await _wait_for(fast_has_all)
            assert slow.closed and slow.overflowed and len(slow.items) == 0
            assert not fast.closed
            await hub.leave(slow)
            await hub.leave(fast)
        finally:
            await r.aclose()

    asyncio.run(main())


def test_stream_caps_per_key_and_per_org():
    hub = StreamHub(redis_state=None)
    hub.admit("o1", "k1", 2, 3)
    hub.admit("o1", "k1", 2, 3)
    with pytest.raises(StreamLimitExceeded) as err:
        hub.admit("o1", "k1", 2, 3)
    assert err.value.reason == "WATCH_STREAMS_PER_KEY"
    hub.admit("o1", "k2", 2, 3)
    with pytest.raises(StreamLimitExceeded) as err:
        hub.admit("o1", "k3", 2, 3)
    assert err.value.reason == "WATCH_STREAMS_PER_ORG"
    hub.admit("o2", "k9", 2, 3)  # another organization is not affected
    hub.release("o1", "k1")
    hub.admit("o1", "k3", 2, 3)  # a slot freed
    hub.admit("o1", "k3", 0, 0)  # 0 = no cap
