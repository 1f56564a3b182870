"""The API's sharp edges (issue 14, item 6), through the real server: each
refusal answers its code and leaves everything as it was."""

from __future__ import annotations

import secrets
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2, timestamp_pb2
from sqlalchemy import func, select

from batchcalls.v1 import (
    agent_service_pb2 as agent_pb2,
    agent_service_pb2_grpc as agent_grpc,
    batch_service_pb2 as bpb,
    dialer_service_pb2 as dpb,
    dialer_service_pb2_grpc as dgrpc,
    organization_service_pb2 as org_pb2,
    organization_service_pb2_grpc as org_grpc,
    phone_number_service_pb2 as pn_pb2,
    phone_number_service_pb2_grpc as pn_grpc,
    resources_pb2 as res,
)
from contract import keys
from server.adapters.db.schema import attempts, batches, contacts, phone_numbers
from server.adapters.secrets import SecretBox
from tests.integration.test_secrets import settings_changed
from tests.support.api import error_reason, stub, violations
from tests.support.dialing import wait_status
from tests.support.drive import list_all_contacts, service_md
from tests.support.stack import TEST_SECRETS_KEY


def _err(fn: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        fn()
    return info.value


def _mask(*paths: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=list(paths))


def _ts(dt: datetime) -> timestamp_pb2.Timestamp:
    t = timestamp_pb2.Timestamp()
    t.FromDatetime(dt)
    return t


def _scalar(stack: Any, query: Any) -> Any:
    async def q() -> Any:
        async with stack.ctx.engine.connect() as conn:
            return (await conn.execute(query)).scalar()

    return stack.run(q())


# --- UpdateOrganization: AIP-134 ------------------------------------------


def test_update_organization_with_an_empty_mask_changes_only_the_fields_sent(stack, org):
    with stack.channel() as ch:
        orgs = org_grpc.OrganizationServiceStub(ch)
        orgs.UpdateOrganization(org_pb2.UpdateOrganizationRequest(
            organization=org_pb2.Organization(frequency_cap_per_24h=3, calls_per_second=5.0, require_consent=True),
            update_mask=_mask("frequency_cap_per_24h", "calls_per_second", "require_consent")), metadata=org.md())
        before = orgs.GetOrganization(org_pb2.GetOrganizationRequest(), metadata=org.md()).organization
        for request in (org_pb2.UpdateOrganizationRequest(organization=org_pb2.Organization(display_name="Renamed")),
                        org_pb2.UpdateOrganizationRequest(organization=org_pb2.Organization(display_name="Renamed"),
                                                          update_mask=_mask())):
            after = orgs.UpdateOrganization(request, metadata=org.md()).organization
            expected = org_pb2.Organization()
            expected.CopyFrom(before)
            expected.display_name = "Renamed"
            assert after == expected  # concurrency, window, cap, credits_enforced, consent, cps all kept
        # Nothing sent, no mask: nothing changes.
        assert orgs.UpdateOrganization(org_pb2.UpdateOrganizationRequest(), metadata=org.md()).organization == expected


# --- UpdatePhoneNumber --------------------------------------------------------


def _stored_password(stack: Any, pn_id: str) -> str:
    return SecretBox(TEST_SECRETS_KEY).open(
        _scalar(stack, select(phone_numbers.c.trunk_password).where(phone_numbers.c.id == pn_id)))


def test_update_phone_number_changes_the_trunk_and_rotates_credentials_in_place(stack, org):
    with stack.channel() as ch:
        pns = pn_grpc.PhoneNumberServiceStub(ch)
        number = pns.CreatePhoneNumber(pn_pb2.CreatePhoneNumberRequest(phone_number=res.PhoneNumber(
            phone_number=f"+1415555{secrets.randbelow(9000) + 1000:04d}", display_name="sip",
            outbound_trunk=res.OutboundTrunk(kind=res.TRUNK_KIND_SIP, host="sip.example.com",
                                             username="u1", password="pw-1"),
        )), metadata=org.md()).phone_number
        # A new password replaces the old (mask: the password only).
        got = pns.UpdatePhoneNumber(pn_pb2.UpdatePhoneNumberRequest(
            phone_number=res.PhoneNumber(name=number.name, outbound_trunk=res.OutboundTrunk(password="pw-2")),
            update_mask=_mask("outbound_trunk.password")), metadata=org.md()).phone_number
        assert got.name == number.name and got.create_time == number.create_time
        assert got.outbound_trunk.password_set and got.outbound_trunk.password == ""
        assert got.outbound_trunk.host == "sip.example.com" and got.outbound_trunk.username == "u1"
        assert _stored_password(stack, number.phone_number_id) == "pw-2"
        # Empty mask: only what is sent; the password is kept.
        got = pns.UpdatePhoneNumber(pn_pb2.UpdatePhoneNumberRequest(phone_number=res.PhoneNumber(
            name=number.name, display_name="renamed",
            outbound_trunk=res.OutboundTrunk(host="sip2.example.com", port=5080, calls_per_second=7.0))),
            metadata=org.md()).phone_number
        assert (got.display_name, got.outbound_trunk.host, got.outbound_trunk.port,
                got.outbound_trunk.calls_per_second, got.outbound_trunk.username) == (
            "renamed", "sip2.example.com", 5080, 7.0, "u1")
        assert got.outbound_trunk.password_set and _stored_password(stack, number.phone_number_id) == "pw-2"
        # Refusals change nothing: a private host, an unknown path, removing the trunk.
        with settings_changed(stack, allow_private_hosts=False):
            err = _err(lambda: pns.UpdatePhoneNumber(pn_pb2.UpdatePhoneNumberRequest(phone_number=res.PhoneNumber(
                name=number.name, outbound_trunk=res.OutboundTrunk(host="10.0.0.7", password="pw-3"))),
                metadata=org.md()))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "phone_number.outbound_trunk.host" in violations(err)
        err = _err(lambda: pns.UpdatePhoneNumber(pn_pb2.UpdatePhoneNumberRequest(
            phone_number=res.PhoneNumber(name=number.name), update_mask=_mask("phone_number")), metadata=org.md()))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        err = _err(lambda: pns.UpdatePhoneNumber(pn_pb2.UpdatePhoneNumberRequest(
            phone_number=res.PhoneNumber(name=number.name), update_mask=_mask("outbound_trunk")), metadata=org.md()))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        err = _err(lambda: pns.UpdatePhoneNumber(pn_pb2.UpdatePhoneNumberRequest(phone_number=res.PhoneNumber(
            name=number.name, display_name="x"), update_mask=_mask("display_name")), metadata=org.md("member")))
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED
        now = pns.GetPhoneNumber(pn_pb2.GetPhoneNumberRequest(name=number.name), metadata=org.md()).phone_number
        assert now == got
        assert _stored_password(stack, number.phone_number_id) == "pw-2"


# --- DeleteBatch --------------------------------------------------------------


def _running_batch(stack: Any, org: Any, phones: list[str]) -> bpb.Batch:
    csv = ("phone,name\n" + "".join(f"{p},P{i}\n" for i, p in enumerate(phones))).encode()
    with stack.channel() as ch:
        batch = stub(ch).CreateBatch(bpb.CreateBatchRequest(
            request_id=str(uuid.uuid4()), display_name="delete me", agent=org.agent_name,
            from_phone_number=org.phone_number_name, csv_content=csv, filename="c.csv",
            calling_window_mode=res.CALLING_WINDOW_MODE_NONE), metadata=org.md()).batch
    wait_status(stack, org, batch.name, {res.BATCH_STATUS_RUNNING}, timeout=30)
    return batch


def _start(stack: Any, org: Any, batch_id: str, contact_id: str) -> tuple[dpb.StartAttemptResponse, int]:
    token = 20_000 + secrets.randbelow(10_000)
    with stack.internal_channel() as ch:
        resp = dgrpc.DialerServiceStub(ch).StartAttempt(dpb.StartAttemptRequest(
            organization_id=org.org_id, batch_id=batch_id, contact_id=contact_id, fencing_token=token,
            lease_id=f"lease-{secrets.token_hex(6)}", dialer_id="test-edges",
            provider_call_id=f"call-{secrets.token_hex(6)}"), metadata=service_md(stack))
    return resp, token


def test_a_batch_with_live_calls_cannot_be_deleted_and_deleting_keeps_call_records(stack, org):
    phone = f"+1415555{secrets.randbelow(9000) + 1000:04d}"
    batch = _running_batch(stack, org, [phone])
    with stack.channel() as ch:
        contact = list_all_contacts(stub(ch), org, batch.batch_id)[0]
    resp, token = _start(stack, org, batch.batch_id, contact.contact_id)
    assert resp.decision == dpb.START_ATTEMPT_DECISION_GRANTED, resp.reason
    with stack.channel() as ch:
        stub(ch).PauseBatch(bpb.PauseBatchRequest(name=batch.name), metadata=org.md())
        # A contact DIALING: refused, naming why; nothing deleted.
        err = _err(lambda: stub(ch).DeleteBatch(bpb.DeleteBatchRequest(name=batch.name), metadata=org.md()))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert error_reason(err) == "BATCH_HAS_LIVE_CALLS" and "live calls" in err.details()
        assert stub(ch).GetBatch(bpb.GetBatchRequest(name=batch.name), metadata=org.md()).batch.name == batch.name
    with stack.internal_channel() as ch:
        dgrpc.DialerServiceStub(ch).FinishAttempt(dpb.FinishAttemptRequest(
            attempt_id=resp.attempt_id, fencing_token=token, outcome=res.CALL_OUTCOME_NO_ANSWER,
            closed_by="test-edges"), metadata=service_md(stack))

    # A lease of the batch in Redis (a dialer holding a claim): refused too.
    lease_id = f"lease-{secrets.token_hex(6)}"

    async def put_lease(present: bool) -> None:
        r = stack.ctx.redis_state.redis
        if present:
            await r.zadd(keys.batch_leases(org.org_id, batch.batch_id), {lease_id: time.time() * 1000 + 60_000})
            await r.hset(keys.lease_info(org.org_id, lease_id), mapping={"contact": contact.contact_id,
                                                                         "batch": batch.batch_id})
        else:
            await r.zrem(keys.batch_leases(org.org_id, batch.batch_id), lease_id)
            await r.delete(keys.lease_info(org.org_id, lease_id))

    stack.run(put_lease(True))
    try:
        with stack.channel() as ch:
            err = _err(lambda: stub(ch).DeleteBatch(bpb.DeleteBatchRequest(name=batch.name), metadata=org.md()))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and error_reason(err) == "BATCH_HAS_LIVE_CALLS"
    finally:
        stack.run(put_lease(False))

    with stack.channel() as ch:
        stub(ch).DeleteBatch(bpb.DeleteBatchRequest(name=batch.name), metadata=org.md())
        assert _err(lambda: stub(ch).GetBatch(bpb.GetBatchRequest(name=batch.name), metadata=org.md())).code() \
            == grpc.StatusCode.NOT_FOUND
    assert _scalar(stack, select(func.count()).select_from(batches).where(batches.c.id == batch.batch_id)) == 0
    assert _scalar(stack, select(func.count()).select_from(contacts).where(contacts.c.batch_id == batch.batch_id)) == 0
    # The call record stays (billing, the frequency cap) ...
    assert _scalar(stack, select(func.count()).select_from(attempts).where(
        attempts.c.org_id == org.org_id, attempts.c.phone == phone, attempts.c.id == resp.attempt_id)) == 1
    # ... and the frequency cap still counts it: a cap of 1 call a day holds
    # the number's next call in a new batch.
    with stack.channel() as ch:
        org_grpc.OrganizationServiceStub(ch).UpdateOrganization(org_pb2.UpdateOrganizationRequest(
            organization=org_pb2.Organization(frequency_cap_per_24h=1)), metadata=org.md())
    again = _running_batch(stack, org, [phone])
    with stack.channel() as ch:
        contact2 = list_all_contacts(stub(ch), org, again.batch_id)[0]
    resp2, _ = _start(stack, org, again.batch_id, contact2.contact_id)
    assert resp2.decision != dpb.START_ATTEMPT_DECISION_GRANTED
    with stack.channel() as ch:
        stub(ch).CancelBatch(bpb.CancelBatchRequest(name=again.name), metadata=org.md())


# --- TopUpCredits -------------------------------------------------------------


def test_top_up_with_a_request_id_is_idempotent(stack, org):
    with stack.channel() as ch:
        orgs = org_grpc.OrganizationServiceStub(ch)
        before = orgs.GetOrganization(org_pb2.GetOrganizationRequest(), metadata=org.md()).organization
        rid = str(uuid.uuid4())
        first = orgs.TopUpCredits(org_pb2.TopUpCreditsRequest(amount_micros=5_000_000, request_id=rid),
                                  metadata=org.md()).organization
        second = orgs.TopUpCredits(org_pb2.TopUpCreditsRequest(amount_micros=5_000_000, request_id=rid),
                                   metadata=org.md()).organization
        assert first.credit_balance_micros == second.credit_balance_micros == before.credit_balance_micros + 5_000_000
        err = _err(lambda: orgs.TopUpCredits(org_pb2.TopUpCreditsRequest(amount_micros=7_000_000, request_id=rid),
                                             metadata=org.md()))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and error_reason(err) == "REQUEST_ID_REUSED"
        err = _err(lambda: orgs.TopUpCredits(org_pb2.TopUpCreditsRequest(amount_micros=1, request_id="x" * 129),
                                             metadata=org.md()))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        now = orgs.GetOrganization(org_pb2.GetOrganizationRequest(), metadata=org.md()).organization
        assert now.credit_balance_micros == before.credit_balance_micros + 5_000_000
        # Another id (or none) is another top-up.
        third = orgs.TopUpCredits(org_pb2.TopUpCreditsRequest(amount_micros=1_000_000, request_id=str(uuid.uuid4())),
                                  metadata=org.md()).organization
        assert third.credit_balance_micros == now.credit_balance_micros + 1_000_000


# --- API keys -----------------------------------------------------------------


def _own_key(orgs: Any, md: Any) -> str:
    return orgs.GetOrganization(org_pb2.GetOrganizationRequest(), metadata=md).api_key


def test_the_last_owner_key_cannot_be_revoked(stack, org):
    with stack.channel() as ch:
        orgs = org_grpc.OrganizationServiceStub(ch)
        owner = _own_key(orgs, org.md())
        err = _err(lambda: orgs.DeleteApiKey(org_pb2.DeleteApiKeyRequest(name=owner), metadata=org.md()))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and error_reason(err) == "LAST_OWNER_KEY"
        assert _own_key(orgs, org.md()) == owner  # still works
        # An owner key that expires does not count as another owner.
        expiring = orgs.CreateApiKey(org_pb2.CreateApiKeyRequest(
            display_name="soon", role=res.ROLE_OWNER,
            expire_time=_ts(datetime.now(timezone.utc) + timedelta(seconds=1))), metadata=org.md())
        time.sleep(1.5)
        err = _err(lambda: orgs.DeleteApiKey(org_pb2.DeleteApiKeyRequest(name=owner), metadata=org.md()))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        second = orgs.CreateApiKey(org_pb2.CreateApiKeyRequest(display_name="owner 2", role=res.ROLE_OWNER),
                                   metadata=org.md())
        orgs.DeleteApiKey(org_pb2.DeleteApiKeyRequest(name=owner), metadata=org.md())
        md2 = [("authorization", f"Bearer {second.secret}")]
        err = _err(lambda: orgs.DeleteApiKey(org_pb2.DeleteApiKeyRequest(name=second.api_key.name), metadata=md2))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert expiring.api_key.name  # (kept for the record)


def test_members_do_not_list_keys(stack, org):
    with stack.channel() as ch:
        orgs = org_grpc.OrganizationServiceStub(ch)
        err = _err(lambda: orgs.ListApiKeys(org_pb2.ListApiKeysRequest(), metadata=org.md("member")))
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED
        assert len(orgs.ListApiKeys(org_pb2.ListApiKeysRequest(), metadata=org.md("admin")).api_keys) == 3


def test_keys_can_carry_an_expiry(stack, org):
    with stack.channel() as ch:
        orgs = org_grpc.OrganizationServiceStub(ch)
        listed = len(orgs.ListApiKeys(org_pb2.ListApiKeysRequest(), metadata=org.md()).api_keys)
        err = _err(lambda: orgs.CreateApiKey(org_pb2.CreateApiKeyRequest(
            display_name="past", role=res.ROLE_MEMBER,
            expire_time=_ts(datetime.now(timezone.utc) - timedelta(seconds=5))), metadata=org.md()))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "expire_time" in violations(err)
        assert len(orgs.ListApiKeys(org_pb2.ListApiKeysRequest(), metadata=org.md()).api_keys) == listed
        expires = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=2)
        created = orgs.CreateApiKey(org_pb2.CreateApiKeyRequest(display_name="temp", role=res.ROLE_MEMBER,
                                                                expire_time=_ts(expires)), metadata=org.md())
        assert created.api_key.expire_time.ToDatetime(tzinfo=timezone.utc) == expires
        shown = {k.name: k for k in orgs.ListApiKeys(org_pb2.ListApiKeysRequest(), metadata=org.md()).api_keys}
        assert shown[created.api_key.name].expire_time.ToDatetime(tzinfo=timezone.utc) == expires
        assert not shown[_own_key(orgs, org.md())].HasField("expire_time")
        md = [("authorization", f"Bearer {created.secret}")]
        assert _own_key(orgs, md) == created.api_key.name
        time.sleep(max(0.0, (expires - datetime.now(timezone.utc)).total_seconds()) + 0.3)
        err = _err(lambda: orgs.GetOrganization(org_pb2.GetOrganizationRequest(), metadata=md))
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED and "expired" in err.details()


# --- private hosts ------------------------------------------------------------

PRIVATE = ["127.0.0.1", "127.8.9.10", "10.1.2.3", "172.16.0.1", "172.31.255.254", "192.168.1.1",
           "169.254.169.254", "::1", "fc00::1", "fd12:3456::1", "fe80::1", "::ffff:10.0.0.1", "localhost",
           "LOCALHOST", "0.0.0.0"]


def test_private_trunk_and_agent_hosts_are_refused_unless_allowed(stack, org):
    with stack.channel() as ch:
        pns = pn_grpc.PhoneNumberServiceStub(ch)
        ags = agent_grpc.AgentServiceStub(ch)
        n_numbers = pns.ListPhoneNumbers(pn_pb2.ListPhoneNumbersRequest(), metadata=org.md()).total_size
        n_agents = ags.ListAgents(agent_pb2.ListAgentsRequest(), metadata=org.md()).total_size

        def number(host: str) -> Any:
            return pns.CreatePhoneNumber(pn_pb2.CreatePhoneNumberRequest(phone_number=res.PhoneNumber(
                phone_number=f"+1415555{secrets.randbelow(9000) + 1000:04d}",
                outbound_trunk=res.OutboundTrunk(kind=res.TRUNK_KIND_SIP, host=host))), metadata=org.md())

        def agent(host: str) -> Any:
            h = f"[{host}]" if ":" in host else host
            return ags.CreateAgent(agent_pb2.CreateAgentRequest(agent=res.Agent(
                display_name="a", architecture=res.AGENT_ARCHITECTURE_PIPELINE,
                sip_connection=res.AgentSipConnection(uri=f"sip:bot@{h}:5080"))), metadata=org.md())

        with settings_changed(stack, allow_private_hosts=False):
            for host in PRIVATE:
                err = _err(lambda: number(host))
                assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, host
                assert "phone_number.outbound_trunk.host" in violations(err), host
                err = _err(lambda: agent(host))
                assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, host
                assert "agent.sip_connection.uri" in violations(err), host
            # An existing agent cannot be pointed at one either.
            existing = agent("agent.example.com").agent
            err = _err(lambda: ags.UpdateAgent(agent_pb2.UpdateAgentRequest(agent=res.Agent(
                name=existing.name, sip_connection=res.AgentSipConnection(uri="sip:bot@192.168.0.10"))),
                metadata=org.md()))
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert ags.GetAgent(agent_pb2.GetAgentRequest(name=existing.name),
                                metadata=org.md()).agent.sip_connection.host == "agent.example.com"
            # Public addresses and names (not resolved) are accepted.
            for host in ("sip.example.com", "8.8.8.8", "172.32.0.1", "2001:db8::1"):
                number(host)
                agent(host)
        assert pns.ListPhoneNumbers(pn_pb2.ListPhoneNumbersRequest(), metadata=org.md()).total_size == n_numbers + 4
        assert ags.ListAgents(agent_pb2.ListAgentsRequest(), metadata=org.md()).total_size == n_agents + 5
        # The tests' stack allows them (BATCHCALLS_ALLOW_PRIVATE_HOSTS=true): sipp on 127.0.0.1.
        assert stack.ctx.settings.allow_private_hosts
        number("127.0.0.1")
        agent("127.0.0.1")
