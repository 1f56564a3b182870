"""WatchBatch bounds through a real server (issue 14 item 4; docs/design.md
§7): N streams of one batch share one Redis subscription, the per-key and
per-organization caps answer RESOURCE_EXHAUSTED with an ErrorInfo reason,
a stream ends at its maximum lifetime, a revoked key's open stream ends,
DNC parsing runs off the event loop; the Redis and Postgres clients the
server builds carry their timeouts."""

from __future__ import annotations

import threading
import time

import grpc
import pytest
from batchcalls.v1 import organization_service_pb2 as org_pb2
from batchcalls.v1 import organization_service_pb2_grpc as org_grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from tests.integration.test_watch import Watcher, numsub
from tests.support.drive import create_batch
from tests.support.stack import Stack

CSV = "phone\n+14155557401\n+14155557402\n"


def _stack(embedded, stack, overrides) -> Stack:
    s = Stack(database_url=embedded.database_url, redis_url=embedded.redis_url, service_token=stack.service_token)
    s.env = {k: v for k, v in stack.env.items() if k not in ("BATCHCALLS_SERVER_ADDR", "BATCHCALLS_GRPC_ADDR")}
    s.start_server({**overrides, "scheduler_interval_seconds": 3600.0, "reconcile_interval_seconds": 3600.0})
    return s


@pytest.fixture(scope="module")
def capped(embedded, stack):
    s = _stack(embedded, stack, {"watch_max_per_key": 2, "watch_max_per_org": 3, "watch_key_check_seconds": 0.3})
    yield s
    s.stop()


@pytest.fixture(scope="module")
def short_lived(embedded, stack):
    s = _stack(embedded, stack, {"watch_max_seconds": 1.0})
    yield s
    s.stop()


def _error_info(err: grpc.RpcError) -> error_details_pb2.ErrorInfo:
    status = rpc_status.from_call(err)
    assert status is not None, "no rich status details"
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    raise AssertionError("no ErrorInfo in the status details")


def _subscriber_connections(s: Stack) -> int:
    async def q():
        clients = await s.ctx.redis_state.redis.client_list()
        return sum(1 for c in clients if int(c.get("sub", 0)) + int(c.get("ssub", 0) or 0) > 0)

    return s.run(q())


def test_watchers_of_one_batch_use_one_subscription(stack):
    org = stack.new_org()
    bid = create_batch(stack, org, CSV).batch_id
    before = _subscriber_connections(stack)
    watchers = [Watcher(stack, org, bid, role) for role in ("owner", "admin", "member", "owner", "admin")]
    try:
        for w in watchers:
            assert w.first.wait(10) and w.error is None
        assert numsub(stack, org, bid) == 1
        # One subscriber connection for the five streams (not five).
        assert _subscriber_connections(stack) - before == 1
    finally:
        for w in watchers:
            w.close()
    deadline = time.monotonic() + 5
    while numsub(stack, org, bid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert numsub(stack, org, bid) == 0


def test_per_key_and_per_org_caps_answer_resource_exhausted(capped):
    org = capped.new_org()
    bid = create_batch(capped, org, CSV).batch_id
    open_ = [Watcher(capped, org, bid, "owner") for _ in range(2)]
    try:
        for w in open_:
            assert w.first.wait(10) and w.error is None
        third = Watcher(capped, org, bid, "owner")
        assert third.ended.wait(10)
        assert third.error is not None and third.error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        info = _error_info(third.error)
        assert info.reason == "WATCH_STREAMS_PER_KEY" and info.metadata["limit"] == "2"
        # Another key of the organization: one more fits (org cap 3) …
        admin = Watcher(capped, org, bid, "admin")
        open_.append(admin)
        assert admin.first.wait(10) and admin.error is None and admin.kinds() == ["snapshot"]
        # … then the organization's cap.
        member = Watcher(capped, org, bid, "member")
        assert member.ended.wait(10)
        assert member.error is not None and member.error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert _error_info(member.error).reason == "WATCH_STREAMS_PER_ORG"
        # A closed stream frees its slot.
        open_.pop(0).close()
        deadline = time.monotonic() + 5
        while True:
            again = Watcher(capped, org, bid, "owner")
            again.first.wait(10)
            if again.error is None or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert again.error is None and again.kinds()[0] == "snapshot"
        open_.append(again)
    finally:
        for w in open_:
            w.close()


def test_revoking_the_key_ends_its_open_stream(capped):
    org = capped.new_org()
    bid = create_batch(capped, org, CSV).batch_id
    with capped.channel() as ch:
        orgs = org_grpc.OrganizationServiceStub(ch)
        made = orgs.CreateApiKey(org_pb2.CreateApiKeyRequest(display_name="watcher", role=2), metadata=org.md())
    md = [("authorization", f"Bearer {made.secret}")]

    class _Org:
        def md(self, role="owner"):
            return md

    w = Watcher(capped, _Org(), bid)
    try:
        assert w.first.wait(10) and w.error is None
        time.sleep(0.5)
        assert not w.ended.is_set()
        with capped.channel() as ch:
            org_grpc.OrganizationServiceStub(ch).DeleteApiKey(
                org_pb2.DeleteApiKeyRequest(name=made.api_key.name), metadata=org.md())
        assert w.ended.wait(5), "the revoked key's stream stayed open"
        assert w.error is not None and w.error.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        w.close()


def test_a_stream_ends_at_its_maximum_lifetime(short_lived):
    org = short_lived.new_org()
    bid = create_batch(short_lived, org, CSV).batch_id
    channel = short_lived.channel()
    from batchcalls.v1 import batch_service_pb2 as bpb
    from batchcalls.v1 import batch_service_pb2_grpc as bgrpc

    call = bgrpc.BatchServiceStub(channel).WatchBatch(bpb.WatchBatchRequest(name=f"batches/{bid}"), metadata=org.md())
    started = time.monotonic()
    kinds = [m.WhichOneof("event") for m in call]  # ends OK, no exception
    elapsed = time.monotonic() - started
    assert kinds[0] == "snapshot"
    assert 0.8 <= elapsed < 5, elapsed
    assert call.code() == grpc.StatusCode.OK
    assert ("batchcalls-stream-end", "max-lifetime") in tuple(call.trailing_metadata() or ())
    channel.close()


def test_dnc_numbers_are_parsed_off_the_event_loop(stack, monkeypatch):
    from server.service import organizations

    threads: list[str] = []
    real = organizations._normalize_many

    def spy(numbers, field):
        threads.append(threading.current_thread().name)
        return real(numbers, field)

    monkeypatch.setattr(organizations, "_normalize_many", spy)
    org = stack.new_org()
    numbers = [f"+1415{n:07d}" for n in range(2_000_000, 2_010_000)]  # 10,000
    with stack.channel() as ch:
        orgs = org_grpc.OrganizationServiceStub(ch)
        done = orgs.AddDoNotCallNumbers.future(
            org_pb2.AddDoNotCallNumbersRequest(phone_numbers=numbers, reason="test"), metadata=org.md())
        # A cheap call answers while the numbers are parsed.
        t0 = time.monotonic()
        orgs.GetOrganization(org_pb2.GetOrganizationRequest(), metadata=org.md())
        cheap = time.monotonic() - t0
        assert done.result(60).added_count == 10_000
        orgs.RemoveDoNotCallNumbers(org_pb2.RemoveDoNotCallNumbersRequest(phone_numbers=numbers[:10]),
                                    metadata=org.md())
    assert len(threads) == 2
    assert "batchcalls-server" not in threads, threads  # never the server's loop thread
    assert cheap < 5.0


def test_server_clients_carry_timeouts(stack):
    from sqlalchemy import text

    pool = stack.ctx.redis_state.redis.connection_pool
    assert pool.connection_kwargs.get("socket_timeout") == 5.0
    assert pool.connection_kwargs.get("socket_connect_timeout") == 5.0

    async def show():
        async with stack.ctx.engine.connect() as conn:
            return (await conn.execute(text("SHOW statement_timeout"))).scalar_one()

    assert stack.run(show()) == "30s"


def test_migrations_engine_has_no_statement_timeout(embedded):
    from sqlalchemy import create_engine, text

    from server.adapters.db.engine import normalize_url

    engine = create_engine(normalize_url(embedded.database_url))
    with engine.connect() as conn:
        assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "0"
    engine.dispose()
