"""Calls per second in the public API (issue 13): the trunk's rate (default
1.0, bounds), the organization's cap (0 = none), and the trunk's pacing
state read from Redis (what the dialers' pace scripts wrote)."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
import redis.asyncio as aioredis
from batchcalls.v1 import (
    organization_service_pb2 as org_pb2,
)
from batchcalls.v1 import (
    organization_service_pb2_grpc as org_grpc,
)
from batchcalls.v1 import (
    phone_number_service_pb2 as pn_pb2,
)
from batchcalls.v1 import (
    phone_number_service_pb2_grpc as pn_grpc,
)
from batchcalls.v1 import (
    resources_pb2 as res,
)
from google.protobuf import field_mask_pb2

from dialer.cps import Pacer
from tests.support.api import violations


def _create(stack, org, number: str, **trunk):
    with stack.channel() as ch:
        return pn_grpc.PhoneNumberServiceStub(ch).CreatePhoneNumber(
            pn_pb2.CreatePhoneNumberRequest(phone_number=res.PhoneNumber(
                phone_number=number, outbound_trunk=res.OutboundTrunk(kind=res.TRUNK_KIND_SIMULATED, **trunk))),
            metadata=org.md(),
        ).phone_number


def _get(stack, org, name: str):
    with stack.channel() as ch:
        return pn_grpc.PhoneNumberServiceStub(ch).GetPhoneNumber(
            pn_pb2.GetPhoneNumberRequest(name=name), metadata=org.md()).phone_number


def test_trunk_cps_defaults_to_one_and_is_shown(stack, org):
    n = _create(stack, org, "+14155550171")
    assert n.outbound_trunk.calls_per_second == 1.0
    assert n.pacing_state.effective_calls_per_second == 1.0 and not n.pacing_state.throttled
    n = _create(stack, org, "+14155550172", calls_per_second=12.5)
    assert _get(stack, org, n.name).outbound_trunk.calls_per_second == 12.5


@pytest.mark.parametrize("cps", [0.05, 1000.5, -1.0])
def test_trunk_cps_out_of_bounds_is_refused(stack, org, cps):
    with pytest.raises(grpc.RpcError) as err:
        _create(stack, org, "+14155550173", calls_per_second=cps)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "phone_number.outbound_trunk.calls_per_second" in violations(err.value)


def test_organization_cps_cap(stack, org):
    def update(cps: float):
        with stack.channel() as ch:
            return org_grpc.OrganizationServiceStub(ch).UpdateOrganization(
                org_pb2.UpdateOrganizationRequest(organization=org_pb2.Organization(calls_per_second=cps),
                                                  update_mask=field_mask_pb2.FieldMask(paths=["calls_per_second"])),
                metadata=org.md(),
            ).organization

    assert update(5.0).calls_per_second == 5.0
    assert update(0.0).calls_per_second == 0.0  # no cap
    with pytest.raises(grpc.RpcError) as err:
        update(-2.0)
    assert "organization.calls_per_second" in violations(err.value)


def test_pacing_state_comes_from_redis(stack, org):
    """A push-back recorded by a dialer (Pacer.pushback) shows on the number:
    throttled until Retry-After, the effective rate halved."""
    n = _create(stack, org, "+14155550174", calls_per_second=10.0)

    async def push_back() -> None:
        r = aioredis.from_url(stack.redis_url)
        try:
            await Pacer(r).pushback(org.org_id, n.phone_number, int(time.time() * 1000), 30.0, trunk_cps=10.0)
        finally:
            await r.aclose()

    asyncio.run(push_back())
    p = _get(stack, org, n.name).pacing_state
    assert p.throttled and p.throttled_until_time.ToSeconds() > time.time() + 20
    assert p.effective_calls_per_second == 5.0 and p.consecutive_pushbacks == 1
    assert p.last_pushback_time.ToSeconds() > 0
