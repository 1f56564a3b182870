"""dialer.server_client.Coalescer: group commit of requests to the server."""

from __future__ import annotations

import asyncio

import pytest

from dialer.server_client import Coalescer


async def settle() -> None:
    """Let every ready task run (submit, then the flush it starts)."""
    for _ in range(5):
        await asyncio.sleep(0)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[list[int]] = []
        self.gate = asyncio.Event()

    async def send(self, items: list[int]) -> list[object]:
        self.calls.append(list(items))
        await self.gate.wait()
        return [ValueError(f"bad {i}") if i < 0 else i * 10 for i in items]


def test_idle_sends_at_once_and_load_coalesces() -> None:
    async def main() -> None:
        rec = Recorder()
        c = Coalescer(rec.send, max_items=3, max_in_flight=1)
        first = asyncio.ensure_future(c.submit(1))
        await settle()
        assert rec.calls == [[1]]  # nothing in flight: sent alone, at once
        rest = [asyncio.ensure_future(c.submit(i)) for i in (2, 3, 4, 5)]
        await settle()
        assert rec.calls == [[1]]  # waiting for the call in flight
        rec.gate.set()
        assert await first == 10
        assert await asyncio.gather(*rest) == [20, 30, 40, 50]
        assert rec.calls == [[1], [2, 3, 4], [5]]  # max_items per call

    asyncio.run(main())


def test_item_errors_stay_with_their_item_and_call_errors_reach_all() -> None:
    async def main() -> None:
        rec = Recorder()
        rec.gate.set()
        c = Coalescer(rec.send, max_in_flight=1)
        results = await asyncio.gather(*(c.submit(i) for i in (1, -2, 3)), return_exceptions=True)
        assert results[0] == 10 and results[2] == 30
        assert isinstance(results[1], ValueError)

        async def broken(items: list[int]) -> list[int]:
            raise ConnectionError("server gone")

        c2 = Coalescer(broken)
        results = await asyncio.gather(*(c2.submit(i) for i in (1, 2)), return_exceptions=True)
        assert all(isinstance(r, ConnectionError) for r in results)
        # The coalescer recovers: the next request is sent again.
        c2._send = rec.send
        assert await c2.submit(4) == 40

    asyncio.run(main())


def test_a_caller_that_gave_up_is_not_sent() -> None:
    async def main() -> None:
        rec = Recorder()
        c = Coalescer(rec.send, max_in_flight=1)
        first = asyncio.ensure_future(c.submit(1))
        await settle()
        gone = asyncio.ensure_future(c.submit(2))
        kept = asyncio.ensure_future(c.submit(3))
        await settle()
        gone.cancel()
        rec.gate.set()
        assert await first == 10 and await kept == 30
        with pytest.raises(asyncio.CancelledError):
            await gone
        assert rec.calls == [[1], [3]]

    asyncio.run(main())
