"""WatchBatch against the real stack: snapshot first, then contact changes
and coalesced progress while the batch is driven; the stream ends when the
batch is final; cancelled clients release their subscription."""

from __future__ import annotations

import threading
import time

import grpc

from batchcalls.v1 import batch_service_pb2 as bpb, batch_service_pb2_grpc as bgrpc, resources_pb2 as res
from contract import keys
from tests.support.drive import create_batch, drive_batch

FINAL = (res.BATCH_STATUS_COMPLETED, res.BATCH_STATUS_FAILED, res.BATCH_STATUS_CANCELLED)


class Watcher:
    """Consumes a WatchBatch stream on a thread, timestamping messages."""

    def __init__(self, stack, org, batch_id, role="owner"):
        self.channel = stack.channel()
        self.call = bgrpc.BatchServiceStub(self.channel).WatchBatch(
            bpb.WatchBatchRequest(name=f"batches/{batch_id}"), metadata=org.md(role)
        )
        self.messages: list[tuple[float, bpb.WatchBatchResponse]] = []
        self.error: grpc.RpcError | None = None
        self.ended = threading.Event()
        self.first = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            for msg in self.call:
                self.messages.append((time.monotonic(), msg))
                self.first.set()
        except grpc.RpcError as exc:
            self.error = exc
        finally:
            self.first.set()
            self.ended.set()

    def kinds(self):
        return [m.WhichOneof("event") for _, m in self.messages]

    def close(self):
        self.call.cancel()
        self.ended.wait(5)
        self.channel.close()


def numsub(stack, org, batch_id) -> int:
    channel = keys.batch_events(org.org_id, batch_id)

    async def q():
        return dict(await stack.ctx.redis_state.redis.pubsub_numsub(channel))

    counts = stack.run(q())
    return int(counts.get(channel.encode(), counts.get(channel, 0)))


def test_snapshot_changes_progress_and_end(stack):
    org = stack.new_org()
    n = 6
    batch = create_batch(stack, org, "name,phone\n" + "".join(f"w{i},+1415555{7100 + i}\n" for i in range(n)),
                         max_attempts=2)
    bid = batch.batch_id
    w = Watcher(stack, org, bid, role="member")
    assert w.first.wait(10)
    _, first = w.messages[0]
    assert first.WhichOneof("event") == "snapshot"
    assert first.snapshot.batch_id == bid and first.snapshot.stats.pending == n
    # w0 needs a retry; the others answer at once.
    result = drive_batch(stack, org, bid, lambda c: "no_answer" if c.display_name == "w0" and c.attempts == 0 else "completed",
                         duration=10.0)
    assert result.batch_status == res.BATCH_STATUS_COMPLETED
    assert w.ended.wait(10), "stream did not end at completion"
    assert w.error is None
    kinds = w.kinds()
    assert kinds[0] == "snapshot" and kinds.count("snapshot") == 1
    changes = [m.contact_change for _, m in w.messages if m.WhichOneof("event") == "contact_change"]
    attempts = len(result.finished)
    assert attempts == n + 1
    # Every attempt: DIALING, then CONNECTED if answered, then its end.
    answered = sum(1 for f in result.finished if f.outcome == "completed")
    assert len(changes) == 2 * attempts + answered
    by_contact: dict[str, list[int]] = {}
    for c in changes:
        by_contact.setdefault(c.contact_id, []).append(c.status)
        assert c.contact == f"batches/{bid}/contacts/{c.contact_id}"
        assert "••" in c.phone_number_masked and c.phone_number_masked.startswith("+1415")
        assert c.HasField("event_time")
    retried = [s for s in by_contact.values() if len(s) == 5]
    assert retried == [[res.CONTACT_STATUS_DIALING, res.CONTACT_STATUS_QUEUED, res.CONTACT_STATUS_DIALING,
                        res.CONTACT_STATUS_CONNECTED, res.CONTACT_STATUS_COMPLETED]]
    ends = [c for c in changes if c.status == res.CONTACT_STATUS_COMPLETED]
    assert all(c.outcome == res.CALL_OUTCOME_COMPLETED and c.attempts >= 1 for c in ends)
    # The last message is the final progress; it equals GetBatch.
    _, last = w.messages[-1]
    assert last.WhichOneof("event") == "progress"
    assert last.progress.status == res.BATCH_STATUS_COMPLETED
    assert last.progress.stats.completed == n and last.progress.stats.processing == 0
    # Coalesced: at most one progress per ~50 ms (client-side timing, lenient).
    times = [t for t, m in w.messages if m.WhichOneof("event") == "progress"]
    assert len(times) >= 2
    span = times[-1] - times[0]
    assert len(times) <= span / 0.05 + 3
    # Progress never goes backwards.
    done = [m.progress.stats.completed for _, m in w.messages if m.WhichOneof("event") == "progress"]
    assert done == sorted(done)
    w.close()


def test_final_batch_sends_snapshot_and_ends(stack):
    org = stack.new_org()
    batch = create_batch(stack, org, "phone\n+14155557201\n")
    drive_batch(stack, org, batch.batch_id, lambda c: "completed")
    w = Watcher(stack, org, batch.batch_id)
    assert w.ended.wait(10)
    assert w.error is None
    assert w.kinds() == ["snapshot"]
    assert w.messages[0][1].snapshot.status == res.BATCH_STATUS_COMPLETED


def test_not_found_across_organizations(stack):
    org = stack.new_org()
    batch = create_batch(stack, org, "phone\n+14155557301\n")
    other = stack.new_org()
    w = Watcher(stack, other, batch.batch_id)
    assert w.ended.wait(10)
    assert w.error is not None and w.error.code() == grpc.StatusCode.NOT_FOUND
    assert w.messages == []
    # The failed watch left no subscription behind.
    deadline = time.monotonic() + 5
    while numsub(stack, other, batch.batch_id) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert numsub(stack, other, batch.batch_id) == 0


def test_cancel_releases_subscription_and_reconnect_gets_fresh_snapshot(stack):
    org = stack.new_org()
    batch = create_batch(stack, org, "phone\n+14155557401\n+14155557402\n+14155557403\n")
    bid = batch.batch_id
    watchers = [Watcher(stack, org, bid) for _ in range(3)]
    for w in watchers:
        assert w.first.wait(10)
    # The three streams share one subscription (server/api/streams.py).
    assert numsub(stack, org, bid) == 1
    for w in watchers:
        w.close()
    deadline = time.monotonic() + 5
    while numsub(stack, org, bid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert numsub(stack, org, bid) == 0

    drive_batch(stack, org, bid, lambda c: "completed", limit=2)
    again = Watcher(stack, org, bid)
    assert again.first.wait(10)
    snap = again.messages[0][1]
    assert snap.WhichOneof("event") == "snapshot"
    assert snap.snapshot.stats.completed == 2 and snap.snapshot.stats.pending == 1
    # Cancelling the batch ends the stream with the final progress.
    with stack.channel() as ch:
        bgrpc.BatchServiceStub(ch).CancelBatch(bpb.CancelBatchRequest(name=f"batches/{bid}"), metadata=org.md())
    assert again.ended.wait(10)
    assert again.error is None
    last = again.messages[-1][1]
    assert last.WhichOneof("event") == "progress" and last.progress.status == res.BATCH_STATUS_CANCELLED
    assert last.progress.stats.cancelled == 1
    again.close()


def test_cancelled_batch_stream_waits_for_live_calls(stack):
    """A cancel with a call in progress: the stream goes on until that call
    is recorded, then ends."""
    from batchcalls.v1 import dialer_service_pb2 as dpb, dialer_service_pb2_grpc as dgrpc
    from tests.support.drive import list_all_contacts, service_md

    org = stack.new_org()
    batch = create_batch(stack, org, "phone\n+14155557501\n+14155557502\n")
    bid = batch.batch_id
    w = Watcher(stack, org, bid)
    assert w.first.wait(10)
    with stack.channel() as ch, stack.internal_channel() as ich:
        stub = bgrpc.BatchServiceStub(ch)
        dialer = dgrpc.DialerServiceStub(ich)
        c = list_all_contacts(stub, org, bid)[0]
        start = dialer.StartAttempt(
            dpb.StartAttemptRequest(organization_id=org.org_id, batch_id=bid, contact_id=c.contact_id,
                                    fencing_token=7, lease_id="l", dialer_id="t", provider_call_id="p"),
            metadata=service_md(stack),
        )
        stub.CancelBatch(bpb.CancelBatchRequest(name=f"batches/{bid}"), metadata=org.md())
        time.sleep(0.3)
        assert not w.ended.is_set()
        dialer.FinishAttempt(
            dpb.FinishAttemptRequest(attempt_id=start.attempt_id, fencing_token=7, outcome=res.CALL_OUTCOME_BUSY),
            metadata=service_md(stack),
        )
    assert w.ended.wait(10)
    last = w.messages[-1][1]
    assert last.progress.status == res.BATCH_STATUS_CANCELLED
    assert last.progress.stats.dialing == 0 and last.progress.stats.cancelled == 2
    w.close()
