"""Per-API-key rate limit (issue 14 item 4): contract/lua/rate_limit.lua on
real Redis 6.2 and 7 (``redis_url``), and the public listener's interceptor
through a server started with a low limit: RESOURCE_EXHAUSTED with ErrorInfo
and RetryInfo, recovery after the delay, other keys unaffected, the
internal listener (DialerService) never limited."""

from __future__ import annotations

import asyncio
import hashlib
import time

import grpc
import pytest
from batchcalls.v1 import (
    organization_service_pb2 as org_pb2,
)
from batchcalls.v1 import (
    organization_service_pb2_grpc as org_grpc,
)
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from contract import keys
from contract.scripts import Scripts
from tests.support.stack import Stack

S = 1_000_000  # µs


def test_rate_limit_script_admits_the_burst_then_refuses_with_a_delay(redis_url):
    import redis.asyncio as aioredis

    async def main():
        r = aioredis.Redis.from_url(redis_url)
        scripts = Scripts(r)
        key = keys.rate_limit("org_rl", hashlib.sha256(b"key_1").hexdigest())
        other = keys.rate_limit("org_rl", hashlib.sha256(b"key_2").hexdigest())
        await r.delete(key, other)
        now = 1_700_000_000 * S
        interval = S // 2  # 2 a second
        try:
            for _ in range(3):  # burst 3
                assert await scripts.rate_limit(keys=[key], args=[now, interval, 3]) == [1, 0]
            allowed, retry = await scripts.rate_limit(keys=[key], args=[now, interval, 3])
            assert allowed == 0 and retry == interval  # one emission interval
            # Refusals write nothing: the same answer again.
            assert await scripts.rate_limit(keys=[key], args=[now, interval, 3]) == [0, interval]
            # Another key has its own bucket.
            assert (await scripts.rate_limit(keys=[other], args=[now, interval, 3]))[0] == 1
            # After the delay: one more, then refused again.
            later = now + retry
            assert (await scripts.rate_limit(keys=[key], args=[later, interval, 3]))[0] == 1
            assert (await scripts.rate_limit(keys=[key], args=[later, interval, 3]))[0] == 0
            # The key expires once the bucket is full again (no garbage).
            ttl = await r.pttl(key)
            assert 0 < ttl <= 3 * interval // 1000 + 1
            # Idle long enough: the whole burst again.
            idle = later + 10 * S
            for _ in range(3):
                assert (await scripts.rate_limit(keys=[key], args=[idle, interval, 3]))[0] == 1
        finally:
            await r.delete(key, other)
            await r.aclose()

    asyncio.run(main())


@pytest.fixture(scope="module")
def limited(embedded, stack):
    s = Stack(database_url=embedded.database_url, redis_url=embedded.redis_url, service_token=stack.service_token)
    s.env = {k: v for k, v in stack.env.items() if k not in ("BATCHCALLS_SERVER_ADDR", "BATCHCALLS_GRPC_ADDR")}
    s.env["BATCHCALLS_RATE_LIMIT_RPS"] = "2"
    s.env["BATCHCALLS_RATE_LIMIT_BURST"] = "3"
    s.start_server({"scheduler_interval_seconds": 3600.0, "reconcile_interval_seconds": 3600.0})
    yield s
    s.stop()


def _org(s: Stack) -> tuple[list[tuple[str, str]], str]:
    from server.service.organizations import create_organization

    org_id, owner = s.run(create_organization(s.ctx, "rate-limited", concurrency_limit=1, credit_micros=0))
    return [("authorization", f"Bearer {owner}")], org_id


def _details(err: grpc.RpcError) -> tuple[error_details_pb2.ErrorInfo, error_details_pb2.RetryInfo]:
    status = rpc_status.from_call(err)
    assert status is not None
    info, retry = error_details_pb2.ErrorInfo(), error_details_pb2.RetryInfo()
    found = set()
    for d in status.details:
        if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            d.Unpack(info)
            found.add("info")
        elif d.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            d.Unpack(retry)
            found.add("retry")
    assert found == {"info", "retry"}, found
    return info, retry


def test_over_the_limit_answers_resource_exhausted_with_retry_info_and_recovers(limited):
    assert limited.ctx.settings.rate_limit_rps == 2 and limited.ctx.settings.rate_limit_burst == 3
    md, _ = _org(limited)
    other_md, _ = _org(limited)
    with limited.channel() as ch:
        orgs = org_grpc.OrganizationServiceStub(ch)
        answers = []
        for _ in range(6):
            try:
                orgs.GetOrganization(org_pb2.GetOrganizationRequest(), metadata=md)
                answers.append("ok")
            except grpc.RpcError as err:
                answers.append(err)
        assert answers[:3] == ["ok"] * 3
        refused = [a for a in answers if a != "ok"]
        assert refused, answers
        err = refused[0]
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        info, retry = _details(err)
        assert info.reason == "RATE_LIMITED" and info.domain == "batchcalls.v1"
        delay = retry.retry_delay.ToTimedelta().total_seconds()
        assert 0 < delay <= 0.5 + 0.05
        # Another key is not affected.
        orgs.GetOrganization(org_pb2.GetOrganizationRequest(), metadata=other_md)
        # After the delay the key is admitted again.
        time.sleep(delay + 0.05)
        orgs.GetOrganization(org_pb2.GetOrganizationRequest(), metadata=md)
        # Health checks carry no key and are never limited.
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        for _ in range(10):
            health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest())


def test_the_internal_listener_is_not_limited(limited):
    """DialerService (service token, internal listener) has no interceptor."""
    from batchcalls.v1 import dialer_service_pb2 as dpb
    from batchcalls.v1 import dialer_service_pb2_grpc as dgrpc

    md = [("authorization", f"Bearer {limited.service_token}")]
    codes = set()
    with limited.internal_channel() as ch:
        stub = dgrpc.DialerServiceStub(ch)
        method = next(iter(dpb.DESCRIPTOR.services_by_name["DialerService"].methods_by_name))
        req_cls = getattr(dpb, dpb.DESCRIPTOR.services_by_name["DialerService"].methods_by_name[method].input_type.name)
        for _ in range(10):
            try:
                getattr(stub, method)(req_cls(), metadata=md, timeout=10)
                codes.add(grpc.StatusCode.OK)
            except grpc.RpcError as err:
                codes.add(err.code())
    assert grpc.StatusCode.RESOURCE_EXHAUSTED not in codes, codes
