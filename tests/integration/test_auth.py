"""Credentials: no key, bad key, other organization, member, service token."""

from __future__ import annotations

import grpc
import pytest

from batchcalls.v1 import (
    agent_service_pb2 as agent_pb2,
    agent_service_pb2_grpc as agent_grpc,
    batch_service_pb2 as pb,
    dialer_service_pb2 as dpb,
    dialer_service_pb2_grpc as dgrpc,
    organization_service_pb2 as org_pb2,
    organization_service_pb2_grpc as org_grpc,
    phone_number_service_pb2 as pn_pb2,
    phone_number_service_pb2_grpc as pn_grpc,
    resources_pb2 as res,
)
from tests.support.api import create_request, stub


def _code(fn) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        fn()
    return info.value.code()


def test_no_key_is_unauthenticated(stack):
    with stack.channel() as ch:
        assert _code(lambda: stub(ch).ListBatches(pb.ListBatchesRequest())) == grpc.StatusCode.UNAUTHENTICATED


def test_wrong_key_is_unauthenticated(stack):
    md = [("authorization", "Bearer bck_nope")]
    with stack.channel() as ch:
        assert _code(lambda: stub(ch).ListBatches(pb.ListBatchesRequest(), metadata=md)) == grpc.StatusCode.UNAUTHENTICATED


def test_other_orgs_batch_is_not_found(stack, org):
    other = stack.new_org()
    with stack.channel() as ch:
        b = stub(ch).CreateBatch(create_request(other), metadata=other.md()).batch
        for call in (
            lambda: stub(ch).GetBatch(pb.GetBatchRequest(name=b.name), metadata=org.md()),
            lambda: stub(ch).PauseBatch(pb.PauseBatchRequest(name=b.name), metadata=org.md()),
            lambda: stub(ch).ListContacts(pb.ListContactsRequest(parent=b.name), metadata=org.md()),
            lambda: stub(ch).DeleteBatch(pb.DeleteBatchRequest(name=b.name), metadata=org.md()),
            lambda: agent_grpc.AgentServiceStub(ch).GetAgent(agent_pb2.GetAgentRequest(name=other.agent_name), metadata=org.md()),
            lambda: pn_grpc.PhoneNumberServiceStub(ch).GetPhoneNumber(
                pn_pb2.GetPhoneNumberRequest(name=other.phone_number_name), metadata=org.md()),
        ):
            assert _code(call) == grpc.StatusCode.NOT_FOUND
        missing = "batches/batch_0123456789abcdef"
        assert _code(lambda: stub(ch).GetBatch(pb.GetBatchRequest(name=missing), metadata=org.md())) == grpc.StatusCode.NOT_FOUND
        listed = stub(ch).ListBatches(pb.ListBatchesRequest(), metadata=org.md())
        assert b.name not in [x.name for x in listed.batches]


def test_member_reads_but_every_write_is_denied(stack, org):
    with stack.channel() as ch:
        b = stub(ch).CreateBatch(create_request(org), metadata=org.md()).batch
        md = org.md("member")
        assert stub(ch).GetBatch(pb.GetBatchRequest(name=b.name), metadata=md).batch.name == b.name
        stub(ch).ListContacts(pb.ListContactsRequest(parent=b.name), metadata=md)
        writes = [
            lambda: stub(ch).CreateBatch(create_request(org), metadata=md),
            lambda: stub(ch).PauseBatch(pb.PauseBatchRequest(name=b.name), metadata=md),
            lambda: stub(ch).ResumeBatch(pb.ResumeBatchRequest(name=b.name), metadata=md),
            lambda: stub(ch).CancelBatch(pb.CancelBatchRequest(name=b.name), metadata=md),
            lambda: stub(ch).DeleteBatch(pb.DeleteBatchRequest(name=b.name), metadata=md),
            lambda: stub(ch).RescheduleBatch(pb.RescheduleBatchRequest(name=b.name), metadata=md),
            lambda: agent_grpc.AgentServiceStub(ch).CreateAgent(
                agent_pb2.CreateAgentRequest(agent=res.Agent(display_name="a", architecture=res.AGENT_ARCHITECTURE_PIPELINE)), metadata=md),
            lambda: pn_grpc.PhoneNumberServiceStub(ch).CreatePhoneNumber(
                pn_pb2.CreatePhoneNumberRequest(phone_number=res.PhoneNumber(phone_number="+14155550111")), metadata=md),
            lambda: pn_grpc.PhoneNumberServiceStub(ch).DeletePhoneNumber(
                pn_pb2.DeletePhoneNumberRequest(name=org.phone_number_name), metadata=md),
            lambda: org_grpc.OrganizationServiceStub(ch).CreateApiKey(
                org_pb2.CreateApiKeyRequest(role=res.ROLE_MEMBER), metadata=md),
            lambda: org_grpc.OrganizationServiceStub(ch).TopUpCredits(
                org_pb2.TopUpCreditsRequest(amount_micros=1), metadata=md),
            lambda: org_grpc.OrganizationServiceStub(ch).AddDoNotCallNumbers(
                org_pb2.AddDoNotCallNumbersRequest(phone_numbers=["+14155552671"]), metadata=md),
        ]
        for call in writes:
            assert _code(call) == grpc.StatusCode.PERMISSION_DENIED
        role = org_grpc.OrganizationServiceStub(ch).GetOrganization(org_pb2.GetOrganizationRequest(), metadata=md).role
        assert role == res.ROLE_MEMBER


def test_admin_writes_but_cannot_manage_keys(stack, org):
    md = org.md("admin")
    with stack.channel() as ch:
        stub(ch).CreateBatch(create_request(org), metadata=md)
        assert _code(lambda: org_grpc.OrganizationServiceStub(ch).CreateApiKey(
            org_pb2.CreateApiKeyRequest(role=res.ROLE_MEMBER), metadata=md)) == grpc.StatusCode.PERMISSION_DENIED


def test_keys_are_stored_hashed(stack, org):
    from sqlalchemy import select

    from server.adapters.db.schema import api_keys

    async def rows():
        async with stack.ctx.engine.connect() as conn:
            return (await conn.execute(select(api_keys.c.key_hash, api_keys.c.prefix).where(api_keys.c.org_id == org.org_id))).all()

    stored = stack.run(rows())
    assert stored and all(org.owner_key not in (h + p) and len(h) == 64 for h, p in stored)


def test_revoked_key_stops_working(stack, org):
    with stack.channel() as ch:
        orgs = org_grpc.OrganizationServiceStub(ch)
        created = orgs.CreateApiKey(org_pb2.CreateApiKeyRequest(display_name="tmp", role=res.ROLE_ADMIN), metadata=org.md())
        md = [("authorization", f"Bearer {created.secret}")]
        orgs.GetOrganization(org_pb2.GetOrganizationRequest(), metadata=md)
        orgs.DeleteApiKey(org_pb2.DeleteApiKeyRequest(name=created.api_key.name), metadata=org.md())
        assert _code(lambda: orgs.GetOrganization(org_pb2.GetOrganizationRequest(), metadata=md)) == grpc.StatusCode.UNAUTHENTICATED


def test_dialer_service_refuses_org_keys_and_public_refuses_service_token(stack, org):
    with stack.channel() as ch, stack.internal_channel() as ich:
        dialer = dgrpc.DialerServiceStub(ich)
        req = dpb.StartAttemptRequest(organization_id=org.org_id, batch_id="batch_0123456789abcdef", contact_id="1")
        assert _code(lambda: dialer.StartAttempt(req, metadata=org.md())) == grpc.StatusCode.PERMISSION_DENIED
        assert _code(lambda: dialer.StartAttempt(req)) == grpc.StatusCode.UNAUTHENTICATED
        svc = [("authorization", f"Bearer {stack.service_token}")]
        assert _code(lambda: stub(ch).ListBatches(pb.ListBatchesRequest(), metadata=svc)) == grpc.StatusCode.PERMISSION_DENIED
