"""Outcomes of a watched batch do not wait for a group commit's linger
(docs/design.md §8): while a batch has a WatchBatch watcher, the server
keeps its watched marker in Redis (server/api/streams.py,
``RedisState.mark_watched``), set as soon as the first watcher arrives; a
group commit of outcomes that reads it sends at once instead of lingering
for company. No wall-clock assertions: the lingers here are 10 minutes
long, so an event that arrives at all arrived without waiting for one."""

from __future__ import annotations

import asyncio
import secrets
import threading
from datetime import datetime, timezone

import grpc

from batchcalls.v1 import (
    batch_service_pb2 as bpb,
    batch_service_pb2_grpc as bgrpc,
    dialer_service_pb2 as dpb,
    dialer_service_pb2_grpc as dgrpc,
    resources_pb2 as res,
)
from server.adapters.redis.state import RedisState
from contract.keys import batch_watched
from server.api.streams import StreamHub, hub_for
from tests.support.drive import create_batch, service_md

LONG = 600.0  # a linger / refresh period no test waits for


async def _eventually(predicate, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


def test_first_watcher_marks_the_batch_at_once_and_the_mark_lapses_after_the_last(embedded):
    """With a refresh period of 200 s the mark still appears as soon as a
    watcher joins (not at the next refresh); a batch nobody watches is not
    marked; after the last watcher leaves, the refresher stops and the mark
    expires on its own."""
    import redis.asyncio as aioredis

    async def main():
        r = aioredis.Redis.from_url(embedded.redis_url)
        state = RedisState(r)
        hub = StreamHub(state)
        hub.watched_ttl = LONG
        org = f"org_{secrets.token_hex(4)}"
        try:
            assert await state.watched_batches([(org, "W"), (org, "U")]) == [False, False]
            listener = hub.join(org, "W", secrets.token_hex(4))
            second = hub.join(org, "W", secrets.token_hex(4))

            async def marked():
                return (await state.watched_batches([(org, "W")]))[0]

            await _eventually(marked)
            assert hub.watched() == [(org, "W")]
            assert await state.watched_batches([(org, "W"), (org, "U")]) == [True, False]
            ttl_ms = await r.pttl(batch_watched(org, "W"))
            assert 0 < ttl_ms <= LONG * 1000
            # A watcher of a second batch marks it at once too (the refresher
            # is asleep for 200 s; the join wakes it).
            other = hub.join(org, "V", secrets.token_hex(4))

            async def both():
                return await state.watched_batches([(org, "W"), (org, "V")]) == [True, True]

            await _eventually(both)
            for lst in (listener, second, other):
                await hub.leave(lst)
            assert hub.watched() == []
            marker = hub._marker
            assert marker is not None
            await asyncio.wait_for(marker, 10)  # nothing watched: the refresher ends
            # Short-lived marks lapse by themselves once nobody refreshes them.
            hub.watched_ttl = 0.2
            again = hub.join(org, "S", secrets.token_hex(4))

            async def s_marked():
                return (await state.watched_batches([(org, "S")]))[0]

            await _eventually(s_marked)
            await asyncio.sleep(0.5)  # beyond one TTL: refreshed meanwhile
            assert await s_marked()
            await hub.leave(again)

            async def s_gone():
                return not await s_marked()

            await _eventually(s_gone)
        finally:
            await r.aclose()

    asyncio.run(main())


def _watch(stack, org, batch_id):
    """A WatchBatch client on a thread: (snapshot seen, outcomes by contact, call)."""
    ch = stack.channel()
    call = bgrpc.BatchServiceStub(ch).WatchBatch(bpb.WatchBatchRequest(name=f"batches/{batch_id}"),
                                                metadata=org.md("member"))
    snapshot = threading.Event()
    outcome: dict[str, threading.Event] = {}
    lock = threading.Lock()

    def run():
        try:
            for msg in call:
                kind = msg.WhichOneof("event")
                if kind == "snapshot":
                    snapshot.set()
                elif kind == "contact_change" and msg.contact_change.outcome != res.CALL_OUTCOME_UNSPECIFIED:
                    with lock:
                        outcome.setdefault(msg.contact_change.contact_id, threading.Event()).set()
        except grpc.RpcError:
            pass
        finally:
            snapshot.set()

    threading.Thread(target=run, daemon=True).start()

    def saw_outcome(contact_id: str, timeout: float) -> bool:
        with lock:
            ev = outcome.setdefault(contact_id, threading.Event())
        return ev.wait(timeout)

    return snapshot, saw_outcome, call, ch


def test_an_outcome_of_a_watched_batch_reaches_the_watcher_without_the_linger(stack):
    """The outcome group commit (dialer.server_client.Coalescer) with a
    10-minute linger: for a batch nobody watches the outcome waits in it;
    once a WatchBatch stream is open on the batch, its marker says so and
    the outcome goes out at once, reaching the watcher as a ContactChange
    with its outcome (published right after the outcome's commit)."""
    from dialer.server_client import Coalescer

    org = stack.new_org()
    batch = create_batch(stack, org, "name,phone\na,+14155557301\nb,+14155557302\n")
    bid = batch.batch_id
    hub = hub_for(stack.ctx.redis_state)
    ttl_before, hub.watched_ttl = hub.watched_ttl, LONG
    ch = stack.internal_channel()
    dialer = dgrpc.DialerServiceStub(ch)
    md = service_md(stack)
    contacts = {c.display_name: c.contact_id for c in bgrpc.BatchServiceStub(stack.channel()).ListContacts(
        bpb.ListContactsRequest(parent=f"batches/{bid}", page_size=25), metadata=org.md()).contacts}

    def start(contact_id: str) -> tuple[str, int]:
        fence = secrets.randbelow(2**40)
        r = dialer.StartAttempt(dpb.StartAttemptRequest(
            organization_id=org.org_id, batch_id=bid, contact_id=contact_id, fencing_token=fence,
            lease_id=f"l-{fence}", dialer_id="test", provider_call_id=f"c-{fence}"), metadata=md)
        assert r.decision == dpb.START_ATTEMPT_DECISION_GRANTED
        return r.attempt_id, fence

    def finish_req(attempt_id: str, fence: int) -> dpb.FinishAttemptRequest:
        from google.protobuf.timestamp_pb2 import Timestamp

        now = Timestamp()
        now.FromDatetime(datetime.now(timezone.utc))
        return dpb.FinishAttemptRequest(attempt_id=attempt_id, fencing_token=fence,
                                        outcome=res.CALL_OUTCOME_COMPLETED, answer_time=now, end_time=now,
                                        duration_seconds=1.0, closed_by="test")

    async def send(reqs):
        # The server side of a group: BatchFinishAttempts, as the dialer's sender does.
        reply = await asyncio.to_thread(dialer.BatchFinishAttempts,
                                        dpb.BatchFinishAttemptsRequest(requests=reqs), metadata=md, timeout=30)
        return [x.response for x in reply.results]

    lingering = {}  # the group commit of this "dialer", created on the server's loop

    async def submit(req) -> asyncio.Future:
        """Where an outcome goes: at once while the batch is watched (its
        marker is live), else into the lingering group (returned unawaited)."""
        if "c" not in lingering:
            lingering["c"] = Coalescer(send, max_in_flight=1, linger_seconds=LONG)
            lingering["now"] = Coalescer(send, max_in_flight=1, linger_seconds=0.0)
        watched = (await stack.ctx.redis_state.watched_batches([(org.org_id, bid)]))[0]
        coalescer = lingering["now"] if watched else lingering["c"]
        return asyncio.ensure_future(coalescer.submit(req))

    # Nobody watches: the first outcome lingers (its group is not sent).
    a_attempt = start(contacts["a"])
    parked = stack.run(submit(finish_req(*a_attempt)))
    assert not parked.done()
    snapshot, saw_outcome, call, wch = _watch(stack, org, bid)
    try:
        assert snapshot.wait(10)

        async def marked():
            return (await stack.ctx.redis_state.watched_batches([(org.org_id, bid)]))[0]

        stack.run(_eventually(marked))
        # Watched: the next outcome goes at once and the watcher sees it,
        # while the unwatched one still sits in its 10-minute linger.
        b_attempt = start(contacts["b"])
        sent = stack.run(submit(finish_req(*b_attempt)))
        assert saw_outcome(contacts["b"], 30), "the watched outcome waited for the linger"

        async def sent_returns():
            return await asyncio.wait_for(sent, 30)

        assert stack.run(sent_returns()).contact_status == res.CONTACT_STATUS_COMPLETED
        assert not parked.done()
    finally:
        hub.watched_ttl = ttl_before
        stack.loop.call_soon_threadsafe(parked.cancel)
        call.cancel()
        wch.close()
        ch.close()


def test_the_dialer_sees_which_of_its_batches_are_watched(embedded):
    """dialer.watched reads the markers of the batches it holds leases in, in
    one round trip: a marked batch is watched, an unmarked or expired one
    not; an empty refresh forgets them all."""
    import redis.asyncio as aioredis

    from dialer.script_batcher import ScriptBatcher
    from dialer.watched import WatchedBatches

    async def main() -> None:
        r = aioredis.from_url(embedded.redis_url)
        try:
            org = f"org_{secrets.token_hex(5)}"
            state = RedisState(r)
            await state.mark_watched([(org, "W")], ttl_seconds=LONG)
            await state.mark_watched([(org, "E")], ttl_seconds=0.05)
            await asyncio.sleep(0.2)  # E's marker has expired
            watched = WatchedBatches(ScriptBatcher(r))
            await watched.refresh([(org, "W"), (org, "U"), (org, "E")])
            assert watched.is_watched(org, "W")
            assert not watched.is_watched(org, "U") and not watched.is_watched(org, "E")
            await watched.refresh([])
            assert not watched.is_watched(org, "W")
            await r.delete(batch_watched(org, "W"))
        finally:
            await r.aclose()

    asyncio.run(main())
