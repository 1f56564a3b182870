"""A call to the server that grpc never completes (not even at its
deadline) fails as DEADLINE_EXCEEDED a margin after the deadline, so a
claim waiting on it is released instead of holding its lease for good."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from dialer.server_client import CALL_WATCHDOG_MARGIN_SECONDS, ServerClient


class LostCall:
    """An awaitable call whose completion never comes."""

    def __init__(self) -> None:
        self.cancelled = False

    def __await__(self):
        return asyncio.sleep(3600).__await__()

    def cancel(self) -> bool:
        self.cancelled = True
        return True


def test_a_lost_completion_fails_as_deadline_exceeded_after_the_margin(monkeypatch):
    monkeypatch.setattr("dialer.server_client.CALL_WATCHDOG_MARGIN_SECONDS", 0.05)
    client = ServerClient.__new__(ServerClient)
    client._timeout = 0.05

    async def main() -> tuple[grpc.aio.AioRpcError, LostCall, float]:
        call = LostCall()
        t0 = asyncio.get_running_loop().time()
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await client._bounded(call)
        return info.value, call, asyncio.get_running_loop().time() - t0

    err, call, took = asyncio.run(main())
    assert err.code() is grpc.StatusCode.DEADLINE_EXCEEDED and "watchdog" in err.details()
    assert call.cancelled
    assert took >= 0.09


def test_an_answered_call_returns_its_reply():
    client = ServerClient.__new__(ServerClient)
    client._timeout = 5.0

    async def answered() -> str:
        return "reply"

    assert asyncio.run(client._bounded(answered())) == "reply"
    assert CALL_WATCHDOG_MARGIN_SECONDS > 0


class DeafCall(LostCall):
    """A lost call that does not even end when cancelled (its completion,
    cancellation included, never comes): the watchdog must not wait for it."""

    def __await__(self):
        async def forever() -> None:
            while True:
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    continue

        return forever().__await__()


def test_a_lost_call_that_ignores_its_cancellation_still_fails_after_the_margin(monkeypatch):
    monkeypatch.setattr("dialer.server_client.CALL_WATCHDOG_MARGIN_SECONDS", 0.05)
    client = ServerClient.__new__(ServerClient)
    client._timeout = 0.05

    async def main() -> tuple[grpc.aio.AioRpcError, DeafCall]:
        call = DeafCall()
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await asyncio.wait_for(client._bounded(call), 5)  # the test's own bound
        return info.value, call

    # Not asyncio.run: its shutdown would wait for the deaf call, forever.
    loop = asyncio.new_event_loop()
    try:
        err, call = loop.run_until_complete(main())
    finally:
        loop.close()
    assert err.code() is grpc.StatusCode.DEADLINE_EXCEEDED and call.cancelled
