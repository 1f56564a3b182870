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


class FakeChannel:
    """Just enough of grpc.aio.Channel for DialerServiceStub: records the
    method names called and answers with the empty response."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def unary_unary(self, method: str, request_serializer=None, response_deserializer=None, **_: object):
        name = method.rsplit("/", 1)[-1]

        async def call(request, metadata=None, timeout=None):
            self.calls.append(name)
            from batchcalls.v1 import dialer_service_pb2 as pb

            if name == "FinishAttempt":
                return pb.FinishAttemptResponse()
            return pb.MarkAnsweredResponse()

        return call


def test_an_answer_report_lingers_and_is_dropped_when_the_outcome_goes_first() -> None:
    from datetime import datetime, timezone

    from batchcalls.v1 import dialer_service_pb2 as pb
    from dialer.server_client import ServerClient

    async def main() -> None:
        channel = FakeChannel()
        client = ServerClient(channel, "token", answer_linger_seconds=0.05)
        now = datetime.now(timezone.utc)
        # A short call: answered, then over before the linger ends.
        assert await client.mark_answered("att_short", 1, now) is True
        assert channel.calls == []
        status, _ = await client.finish_once(pb.FinishAttemptRequest(attempt_id="att_short", fencing_token=1))
        assert status == "ok"
        await asyncio.sleep(0.1)
        assert channel.calls == ["FinishAttempt"]  # no MarkAnswered for it, ever
        # A long call: the answer goes out once the linger is over.
        await client.mark_answered("att_long", 2, now)
        for _ in range(200):  # the answer linger, then the answers' own linger
            if len(channel.calls) == 2:
                break
            await asyncio.sleep(0.01)
        assert channel.calls == ["FinishAttempt", "MarkAnswered"]

    asyncio.run(main())


def test_linger_gathers_requests_that_arrive_close_together() -> None:
    async def main() -> None:
        rec = Recorder()
        rec.gate.set()
        c = Coalescer(rec.send, max_in_flight=1, linger_seconds=0.02)
        first = asyncio.ensure_future(c.submit(1))
        await settle()
        assert rec.calls == []  # waiting for company
        second = asyncio.ensure_future(c.submit(2))
        assert await first == 10 and await second == 20
        assert rec.calls == [[1, 2]]

    asyncio.run(main())


def test_an_urgent_request_skips_the_linger_and_takes_the_lingering_ones_along() -> None:
    """A watched batch's outcome (dialer.watched) goes at once; outcomes
    already lingering go with it rather than wait out the linger."""

    async def main() -> None:
        rec = Recorder()
        rec.gate.set()
        c = Coalescer(rec.send, max_items=10, max_in_flight=1, linger_seconds=600.0)
        lingering = asyncio.ensure_future(c.submit(1))
        await settle()
        assert rec.calls == []  # waits for company, up to 10 minutes
        urgent = asyncio.ensure_future(c.submit(2, urgent=True))
        assert await asyncio.wait_for(asyncio.gather(lingering, urgent), 5) == [10, 20]
        assert rec.calls == [[1, 2]]

    asyncio.run(main())


def test_the_linger_also_holds_for_a_group_gathered_during_a_call_in_flight() -> None:
    """Under load the requests that arrive while a call is in flight must
    still wait out the linger for company (from the first of them), not
    leave the moment that call returns: otherwise groups shrink to what
    arrives in one round trip and the server pays a transaction per few
    outcomes."""

    async def main() -> None:
        rec = Recorder()
        loop = asyncio.get_running_loop()
        c = Coalescer(rec.send, max_items=10, max_in_flight=1, linger_seconds=0.2)
        first = asyncio.ensure_future(c.submit(1, urgent=True))
        await settle()
        assert rec.calls == [[1]]
        t_second = loop.time()
        second = asyncio.ensure_future(c.submit(2))
        await settle()
        rec.gate.set()  # the call in flight returns now
        assert await first == 10
        await settle()
        assert rec.calls == [[1]]  # 2 keeps lingering
        third = asyncio.ensure_future(c.submit(3))
        assert await asyncio.gather(second, third) == [20, 30]
        assert rec.calls == [[1], [2, 3]]
        assert loop.time() - t_second >= 0.2 - 0.005  # its linger, counted from its arrival

    asyncio.run(main())
