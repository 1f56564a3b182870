"""Hostile requests (issue 14 items 3 and 9), through the real server.

Each case sends one bad input to one RPC and expects INVALID_ARGUMENT (never
INTERNAL or UNKNOWN) with a BadRequest field violation naming the field, and
that nothing changed: the organization's batches, contacts, agents, numbers,
keys, do-not-call list and credit balance read the same before and after.
The bounds live in one place (server/api/bounds.py, docs/design.md §3).
Also: page tokens are tamper-evident, and ListContacts pages stay under the
message limit however long the transcripts.
"""

from __future__ import annotations

import base64
import json
import secrets
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from batchcalls.v1 import (
    agent_service_pb2 as apb,
    agent_service_pb2_grpc as agrpc,
    batch_pb2,
    batch_service_pb2 as bpb,
    batch_service_pb2_grpc as bgrpc,
    compliance_service_pb2 as cpb,
    compliance_service_pb2_grpc as cgrpc,
    dialer_service_pb2 as dpb,
    dialer_service_pb2_grpc as dgrpc,
    organization_service_pb2 as opb,
    organization_service_pb2_grpc as ogrpc,
    phone_number_service_pb2 as ppb,
    phone_number_service_pb2_grpc as pgrpc,
    resources_pb2 as res,
    results_service_pb2 as rpb,
    results_service_pb2_grpc as rgrpc,
)
from tests.support.api import violations
from tests.support.drive import _ts, create_batch, service_md

FAR = 10**12  # seconds: year ~33658, past what a Timestamp (or datetime) holds
ARABIC_INDIC = "+\u0661\u0662\u0660\u0662\u0665\u0665\u0665\u0660\u0661\u0662\u0663"  # +12025550123 in ٠-٩


def ts(seconds: int, nanos: int = 0) -> Timestamp:
    return Timestamp(seconds=seconds, nanos=nanos)


@pytest.fixture(scope="module")
def world(stack):
    org = stack.new_org()
    csv = "phone,name\n+12125550101,Ann\n+12125550102,Bob\n"
    batches = [create_batch(stack, org, csv, name=f"hostile {i}") for i in range(2)]
    with stack.channel() as ch:
        contact = bgrpc.BatchServiceStub(ch).ListContacts(
            bpb.ListContactsRequest(parent=batches[0].name), metadata=org.md()).contacts[0]
    return {"stack": stack, "org": org, "batch": batches[0], "contact": contact}


def snapshot(stack, org) -> dict[str, Any]:
    """What a hostile request must not change: every row of the
    organization, read from the database (not through the API, whose
    per-key rate limit a snapshot per case would spend)."""
    from sqlalchemy import select

    from server.adapters.db import schema as s

    async def read() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with stack.ctx.engine.connect() as conn:
            for table in (s.organizations, s.api_keys, s.agents, s.phone_numbers, s.batches, s.contacts,
                          s.attempts, s.credit_top_ups, s.do_not_call):
                col = table.c.id if table is s.organizations else table.c.org_id
                rows = (await conn.execute(select(table).where(col == org.org_id))).all()
                out[table.name] = sorted(repr(tuple(r)) for r in rows)
        return out

    return stack.run(read())


# --- the cases ---------------------------------------------------------------
# (id, listener, stub class, method, request builder(world), field named)
Case = tuple[str, str, Any, str, Callable[[dict[str, Any]], Any], str]

CASES: list[Case] = [
    # DNC: the reason had no bound (10,000 numbers x 15 MB = ~150 GB for the driver).
    ("dnc-reason-long", "public", ogrpc.OrganizationServiceStub, "AddDoNotCallNumbers",
     lambda w: opb.AddDoNotCallNumbersRequest(phone_numbers=["+12125550199"] * 1000, reason="x" * 1_000_000),
     "reason"),
    ("dnc-import-reason-long", "public", ogrpc.OrganizationServiceStub, "ImportDoNotCallNumbers",
     lambda w: opb.ImportDoNotCallNumbersRequest(csv_content=b"phone\n+12125550199\n", filename="d.csv",
                                                 reason="x" * 501), "reason"),
    ("dnc-too-many", "public", ogrpc.OrganizationServiceStub, "AddDoNotCallNumbers",
     lambda w: opb.AddDoNotCallNumbersRequest(phone_numbers=["+12125550199"] * 10_001), "phone_numbers"),
    ("dnc-arabic-indic-digits", "public", ogrpc.OrganizationServiceStub, "AddDoNotCallNumbers",
     lambda w: opb.AddDoNotCallNumbersRequest(phone_numbers=[ARABIC_INDIC]), "phone_numbers[0]"),
    ("dnc-nul", "public", ogrpc.OrganizationServiceStub, "AddDoNotCallNumbers",
     lambda w: opb.AddDoNotCallNumbersRequest(phone_numbers=["+1212555\x000199"]), "phone_numbers[0]"),
    ("dnc-remove-too-many", "public", ogrpc.OrganizationServiceStub, "RemoveDoNotCallNumbers",
     lambda w: opb.RemoveDoNotCallNumbersRequest(phone_numbers=["+12125550199"] * 10_001), "phone_numbers"),
    ("dnc-search-long", "public", ogrpc.OrganizationServiceStub, "ListDoNotCallNumbers",
     lambda w: opb.ListDoNotCallNumbersRequest(search="1" * 33), "search"),
    ("dnc-forged-token", "public", ogrpc.OrganizationServiceStub, "ListDoNotCallNumbers",
     lambda w: opb.ListDoNotCallNumbersRequest(page_token=_forged({"a": "+1"})), "page_token"),
    # Batches
    ("create-far-future", "public", bgrpc.BatchServiceStub, "CreateBatch",
     lambda w: _create(w, scheduled_start_time=ts(FAR)), "scheduled_start_time"),
    ("create-far-past", "public", bgrpc.BatchServiceStub, "CreateBatch",
     lambda w: _create(w, scheduled_start_time=ts(-FAR)), "scheduled_start_time"),
    ("create-bad-nanos", "public", bgrpc.BatchServiceStub, "CreateBatch",
     lambda w: _create(w, scheduled_start_time=ts(1_900_000_000, -1)), "scheduled_start_time"),
    ("create-name-long", "public", bgrpc.BatchServiceStub, "CreateBatch",
     lambda w: _create(w, display_name="n" * 100_000), "display_name"),
    ("create-description-nul", "public", bgrpc.BatchServiceStub, "CreateBatch",
     lambda w: _create(w, description="a\x00b"), "description"),
    ("create-weekdays-many", "public", bgrpc.BatchServiceStub, "CreateBatch",
     lambda w: _create(w, calling_window_mode=res.CALLING_WINDOW_MODE_CUSTOM,
                       calling_window=res.CallingWindow(start_local_time="09:00", end_local_time="17:00",
                                                        weekdays=[1] * 5000)), "calling_window.weekdays"),
    ("create-window-mode-unknown", "public", bgrpc.BatchServiceStub, "CreateBatch",
     lambda w: _create(w, calling_window_mode=999), "calling_window_mode"),
    ("create-window-arabic-indic-digits", "public", bgrpc.BatchServiceStub, "CreateBatch",
     lambda w: _create(w, calling_window_mode=res.CALLING_WINDOW_MODE_CUSTOM,
                       calling_window=res.CallingWindow(start_local_time="\u0660\u0669:\u0660\u0660",
                                                        end_local_time="17:00", weekdays=[1])), "calling_window"),
    ("create-csv-over-10mb", "public", bgrpc.BatchServiceStub, "CreateBatch",
     lambda w: _create(w, csv_content=b"phone\n" + b"+12125550101\n" * 900_000), "csv_content"),
    ("validate-region-long", "public", bgrpc.BatchServiceStub, "ValidateContacts",
     lambda w: bpb.ValidateContactsRequest(csv_content=b"phone\n+12125550101\n", default_region="U" * 5000),
     "default_region"),
    ("list-batches-statuses-unknown", "public", bgrpc.BatchServiceStub, "ListBatches",
     lambda w: bpb.ListBatchesRequest(statuses=[999]), "statuses[0]"),
    ("list-batches-page-size-huge", "public", bgrpc.BatchServiceStub, "ListBatches",
     lambda w: bpb.ListBatchesRequest(page_size=2_000_000_000), "page_size"),
    ("list-batches-forged-token", "public", bgrpc.BatchServiceStub, "ListBatches",
     lambda w: bpb.ListBatchesRequest(page_size=1, page_token=_forged({"c": "x", "i": 1})), "page_token"),
    ("list-contacts-far-from", "public", bgrpc.BatchServiceStub, "ListContacts",
     lambda w: bpb.ListContactsRequest(parent=w["batch"].name, last_attempt_from=ts(FAR)), "last_attempt_from"),
    ("list-contacts-far-past-to", "public", bgrpc.BatchServiceStub, "ListContacts",
     lambda w: bpb.ListContactsRequest(parent=w["batch"].name, last_attempt_to=ts(-FAR)), "last_attempt_to"),
    ("list-contacts-forged-token", "public", bgrpc.BatchServiceStub, "ListContacts",
     lambda w: bpb.ListContactsRequest(parent=w["batch"].name, page_token=_forged({"a": "not-a-number"})),
     "page_token"),
    ("list-contacts-statuses-many", "public", bgrpc.BatchServiceStub, "ListContacts",
     lambda w: bpb.ListContactsRequest(parent=w["batch"].name, statuses=[1] * 5000), "statuses"),
    ("reschedule-far", "public", bgrpc.BatchServiceStub, "RescheduleBatch",
     lambda w: bpb.RescheduleBatchRequest(name=w["batch"].name, scheduled_start_time=ts(FAR)),
     "scheduled_start_time"),
    ("get-batch-name-long", "public", bgrpc.BatchServiceStub, "GetBatch",
     lambda w: bpb.GetBatchRequest(name="batches/" + "a" * 100_000), "name"),
    ("export-format-unknown", "public", bgrpc.BatchServiceStub, "ExportBatch",
     lambda w: bpb.ExportBatchRequest(name=w["batch"].name, format=999), "format"),
    # Agents, numbers, organization
    ("agent-header-fields-many", "public", agrpc.AgentServiceStub, "CreateAgent",
     lambda w: apb.CreateAgentRequest(agent=res.Agent(
         display_name="a", architecture=res.AGENT_ARCHITECTURE_PIPELINE,
         sip_connection=res.AgentSipConnection(uri="sip:agent@example.com", header_fields=["x"] * 1000))),
     "agent.sip_connection.header_fields"),
    ("agent-architecture-unknown", "public", agrpc.AgentServiceStub, "CreateAgent",
     lambda w: apb.CreateAgentRequest(agent=res.Agent(display_name="a", architecture=777)), "agent.architecture"),
    ("agent-mask-paths-many", "public", agrpc.AgentServiceStub, "UpdateAgent",
     lambda w: apb.UpdateAgentRequest(agent=res.Agent(name=w["org"].agent_name, display_name="b"),
                                      update_mask={"paths": ["display_name"] * 100}), "update_mask.paths"),
    ("number-cps-nan", "public", pgrpc.PhoneNumberServiceStub, "CreatePhoneNumber",
     lambda w: ppb.CreatePhoneNumberRequest(phone_number=res.PhoneNumber(
         phone_number="+14155550999", outbound_trunk=res.OutboundTrunk(
             kind=res.TRUNK_KIND_SIMULATED, calls_per_second=float("nan")))),
     "phone_number.outbound_trunk.calls_per_second"),
    ("number-weight-inf", "public", pgrpc.PhoneNumberServiceStub, "CreatePhoneNumber",
     lambda w: ppb.CreatePhoneNumberRequest(phone_number=res.PhoneNumber(
         phone_number="+14155550998", outbound_trunk=res.OutboundTrunk(
             kind=res.TRUNK_KIND_SIMULATED, simulation=res.SimulationProfile(weight_busy=float("inf"))))),
     "phone_number.outbound_trunk.simulation.weight_busy"),
    ("number-arabic-indic-digits", "public", pgrpc.PhoneNumberServiceStub, "CreatePhoneNumber",
     lambda w: ppb.CreatePhoneNumberRequest(phone_number=res.PhoneNumber(
         phone_number=ARABIC_INDIC, outbound_trunk=res.OutboundTrunk(kind=res.TRUNK_KIND_SIMULATED))),
     "phone_number.phone_number"),
    ("org-threshold-nan", "public", ogrpc.OrganizationServiceStub, "UpdateOrganization",
     lambda w: opb.UpdateOrganizationRequest(
         organization=opb.Organization(circuit_breaker_threshold=float("nan")),
         update_mask={"paths": ["circuit_breaker_threshold"]}), "organization.circuit_breaker_threshold"),
    ("org-cps-inf", "public", ogrpc.OrganizationServiceStub, "UpdateOrganization",
     lambda w: opb.UpdateOrganizationRequest(
         organization=opb.Organization(calls_per_second=float("-inf")),
         update_mask={"paths": ["calls_per_second"]}), "organization.calls_per_second"),
    ("key-role-unknown", "public", ogrpc.OrganizationServiceStub, "CreateApiKey",
     lambda w: opb.CreateApiKeyRequest(display_name="k", role=999), "role"),
    ("key-name-long", "public", ogrpc.OrganizationServiceStub, "CreateApiKey",
     lambda w: opb.CreateApiKeyRequest(display_name="k" * 10_000, role=res.ROLE_MEMBER), "display_name"),
    # Compliance
    ("explain-far-time", "public", cgrpc.ComplianceServiceStub, "ExplainCallability",
     lambda w: cpb.ExplainCallabilityRequest(phone_number="+12125550101", time=ts(FAR)), "time"),
    ("explain-year-one", "public", cgrpc.ComplianceServiceStub, "ExplainCallability",
     lambda w: cpb.ExplainCallabilityRequest(phone_number="+12125550101", time=ts(-62_135_596_800)), "time"),
    ("explain-year-9999", "public", cgrpc.ComplianceServiceStub, "ExplainCallability",
     lambda w: cpb.ExplainCallabilityRequest(phone_number="+12125550101", time=ts(253_402_300_799)), "time"),
    ("explain-arabic-indic-digits", "public", cgrpc.ComplianceServiceStub, "ExplainCallability",
     lambda w: cpb.ExplainCallabilityRequest(phone_number=ARABIC_INDIC), "phone_number"),
    # Results (public, reporter key: bounds come first)
    ("report-callback-far", "public", rgrpc.ResultsServiceStub, "ReportCallResult",
     lambda w: rpb.ReportCallResultRequest(attempt_id="att_x", result=batch_pb2.CallResult(
         callback_time=ts(FAR))), "result.callback_time"),
    ("report-number-nan", "public", rgrpc.ResultsServiceStub, "ReportCallResult",
     lambda w: rpb.ReportCallResultRequest(attempt_id="att_x", result=batch_pb2.CallResult(
         extracted_fields=[batch_pb2.ExtractedField(name="n", number_value=float("nan"))])),
     "result.extracted_fields[0].number_value"),
    # DialerService (internal listener, service token)
    ("finish-end-far", "internal", dgrpc.DialerServiceStub, "FinishAttempt",
     lambda w: dpb.FinishAttemptRequest(attempt_id="att_x", fencing_token=1, outcome=res.CALL_OUTCOME_COMPLETED,
                                        end_time=ts(FAR)), "end_time"),
    ("finish-duration-nan", "internal", dgrpc.DialerServiceStub, "FinishAttempt",
     lambda w: dpb.FinishAttemptRequest(attempt_id="att_x", fencing_token=1, outcome=res.CALL_OUTCOME_COMPLETED,
                                        duration_seconds=float("nan")), "duration_seconds"),
    ("finish-duration-huge", "internal", dgrpc.DialerServiceStub, "FinishAttempt",
     lambda w: dpb.FinishAttemptRequest(attempt_id="att_x", fencing_token=1, outcome=res.CALL_OUTCOME_COMPLETED,
                                        duration_seconds=1e300), "duration_seconds"),
    ("finish-outcome-unknown", "internal", dgrpc.DialerServiceStub, "FinishAttempt",
     lambda w: dpb.FinishAttemptRequest(attempt_id="att_x", fencing_token=1, outcome=4242), "outcome"),
    ("finish-transcript-long", "internal", dgrpc.DialerServiceStub, "FinishAttempt",
     lambda w: dpb.FinishAttemptRequest(attempt_id="att_x", fencing_token=1, outcome=res.CALL_OUTCOME_COMPLETED,
                                        transcript="t" * 100_001), "transcript"),
    ("answered-far-past", "internal", dgrpc.DialerServiceStub, "MarkAnswered",
     lambda w: dpb.MarkAnsweredRequest(attempt_id="att_x", fencing_token=1, answer_time=ts(-FAR)), "answer_time"),
    ("batch-finish-far", "internal", dgrpc.DialerServiceStub, "BatchFinishAttempts",
     lambda w: dpb.BatchFinishAttemptsRequest(requests=[dpb.FinishAttemptRequest(
         attempt_id="att_x", fencing_token=1, outcome=res.CALL_OUTCOME_COMPLETED, answer_time=ts(FAR))]),
     "requests[0].answer_time"),
    ("batch-start-too-many", "internal", dgrpc.DialerServiceStub, "BatchStartAttempts",
     lambda w: dpb.BatchStartAttemptsRequest(requests=[dpb.StartAttemptRequest(contact_id="1")] * 501),
     "requests"),
    ("start-contact-id-superscript", "internal", dgrpc.DialerServiceStub, "StartAttempt",
     lambda w: dpb.StartAttemptRequest(organization_id=w["org"].org_id, batch_id=w["batch"].batch_id,
                                       contact_id="\u00b2", lease_id="x" * 5000), "lease_id"),
]


def _forged(position: dict[str, Any]) -> str:
    """A token in the old, unsigned format: a client's own position."""
    raw = json.dumps({"p": position, "f": "0" * 12}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _create(w: dict[str, Any], **kw: Any) -> bpb.CreateBatchRequest:
    fields: dict[str, Any] = dict(display_name="hostile", agent=w["org"].agent_name,
                                  from_phone_number=w["org"].phone_number_name,
                                  csv_content=b"phone\n+12125550101\n", filename="c.csv",
                                  calling_window_mode=res.CALLING_WINDOW_MODE_NONE)
    fields.update(kw)
    return bpb.CreateBatchRequest(**fields)


def _call(stack, listener: str, stub_cls: Any, method: str, req: Any, md: list[tuple[str, str]]) -> None:
    ch = stack.internal_channel() if listener == "internal" else stack.channel()
    with ch:
        fn = getattr(stub_cls(ch), method)
        out = fn(req, metadata=md)
        if not hasattr(out, "DESCRIPTOR"):  # a server stream
            list(out)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_hostile_request_is_invalid_argument_and_changes_nothing(world, case: Case) -> None:
    _, listener, stub_cls, method, build, field = case
    stack, org = world["stack"], world["org"]
    md = service_md(stack) if listener == "internal" else org.md()
    before = snapshot(stack, org)
    with pytest.raises(grpc.RpcError) as err:
        _call(stack, listener, stub_cls, method, build(world), md)
    code = err.value.code()
    assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, err.value.details())
    found = violations(err.value)
    assert field in found, found
    assert snapshot(stack, org) == before


def test_every_rpc_is_bounded_by_the_table_or_defaults() -> None:
    """Every request of every service has a bound on each string, bytes,
    repeated field and map: the walk refuses an oversized value of each."""
    from google.protobuf.descriptor import FieldDescriptor as F

    from server.api import bounds

    modules = (apb, bpb, cpb, dpb, opb, ppb, rpb)
    seen = 0
    for m in modules:
        for service in m.DESCRIPTOR.services_by_name.values():
            for rpc in service.methods:
                cls = _message_class(rpc.input_type)
                for field in rpc.input_type.fields:
                    msg = cls()
                    if field.type == F.TYPE_STRING and not bounds._is_repeated(field):
                        setattr(msg, field.name, "x" * 11_000_000)
                    elif field.type == F.TYPE_BYTES and not bounds._is_repeated(field):
                        setattr(msg, field.name, b"x" * 11_000_000)
                    elif bounds._is_repeated(field) and not bounds._is_map(field) and field.type != F.TYPE_MESSAGE:
                        getattr(msg, field.name).extend([0 if field.type != F.TYPE_STRING else ""] * 10_001
                                                        if field.type != F.TYPE_ENUM else [1] * 10_001)
                    else:
                        continue
                    seen += 1
                    assert [v.field for v in bounds.violations(msg)] == [field.name], (rpc.full_name, field.name)
    assert seen > 40


def _message_class(desc: Any) -> Any:
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(desc)


def test_contact_name_with_a_superscript_digit_is_not_found_not_internal(world) -> None:
    with world["stack"].channel() as ch, pytest.raises(grpc.RpcError) as err:
        bgrpc.BatchServiceStub(ch).GetContact(
            bpb.GetContactRequest(name=f"{world['batch'].name}/contacts/\u00b2"), metadata=world["org"].md())
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_start_attempt_with_a_superscript_contact_id_is_stale_not_internal(world) -> None:
    stack, org = world["stack"], world["org"]
    with stack.internal_channel() as ich:
        resp = dgrpc.DialerServiceStub(ich).StartAttempt(dpb.StartAttemptRequest(
            organization_id=org.org_id, batch_id=world["batch"].batch_id, contact_id="\u00b2", fencing_token=1),
            metadata=service_md(stack))
    assert resp.decision == dpb.START_ATTEMPT_DECISION_STALE


# --- page tokens -------------------------------------------------------------


def test_page_tokens_are_signed_and_a_tampered_one_is_refused(world) -> None:
    stack, org = world["stack"], world["org"]
    with stack.channel() as ch:
        stub = bgrpc.BatchServiceStub(ch)
        first = stub.ListBatches(bpb.ListBatchesRequest(page_size=1), metadata=org.md())
        token = first.next_page_token
        assert token
        assert b'"c"' not in base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))[:16]
        second = stub.ListBatches(bpb.ListBatchesRequest(page_size=1, page_token=token), metadata=org.md())
        assert second.batches[0].name != first.batches[0].name
        raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        for i in (0, 20, len(raw) - 2):  # the MAC, the position, the fingerprint
            bad = bytearray(raw)
            bad[i] ^= 0x01
            tampered = base64.urlsafe_b64encode(bytes(bad)).decode().rstrip("=")
            with pytest.raises(grpc.RpcError) as err:
                stub.ListBatches(bpb.ListBatchesRequest(page_size=1, page_token=tampered), metadata=org.md())
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert violations(err.value) == {"page_token": "not a token this API issued"}


def test_a_token_signed_with_another_key_is_refused_and_replicas_share_the_key() -> None:
    from server.domain.errors import InvalidArgument
    from server.domain.paging import decode_token, encode_token
    from server.service.page_keys import page_token_key
    from server.settings import Settings

    a = Settings(service_token="s" * 40)
    b = Settings(service_token="s" * 40)  # another replica of the same deployment
    token = encode_token({"a": 1}, "fp", page_token_key(a))
    assert decode_token(token, "fp", page_token_key(b)) == {"a": 1}
    other = Settings(service_token="s" * 40, page_token_key="k" * 40)
    with pytest.raises(InvalidArgument):
        decode_token(token, "fp", page_token_key(other))


# --- ListContacts under the message limit ------------------------------------


def test_list_contacts_pages_stay_under_the_message_limit_with_long_transcripts(stack) -> None:
    """50 contacts each with a 100,000-character transcript of 4-byte
    characters (400 kB): one page of 50 would be 20 MB, over the 16 MB
    limit. The page ends early and next_page_token resumes after it."""
    org = stack.new_org()
    n = 50
    csv = "phone\n" + "".join(f"+1212555{2000 + i:04d}\n" for i in range(n))
    batch = create_batch(stack, org, csv, max_attempts=1, concurrency_limit=50)
    transcript = "\U0001F600" * 100_000
    md = service_md(stack)
    with stack.channel() as ch, stack.internal_channel() as ich:
        stub, dialer = bgrpc.BatchServiceStub(ch), dgrpc.DialerServiceStub(ich)
        contacts = stub.ListContacts(bpb.ListContactsRequest(parent=batch.name, page_size=50), metadata=org.md())
        assert len(contacts.contacts) == n
        for i, c in enumerate(contacts.contacts):
            token = 7_000_000 + secrets.randbelow(1_000_000)
            start = dialer.StartAttempt(dpb.StartAttemptRequest(
                organization_id=org.org_id, batch_id=batch.batch_id, contact_id=c.contact_id, fencing_token=token,
                lease_id=f"l-{i}", dialer_id="hostile", provider_call_id=f"c-{secrets.token_hex(4)}"), metadata=md)
            assert start.decision == dpb.START_ATTEMPT_DECISION_GRANTED, start
            now = datetime.now(timezone.utc)
            dialer.FinishAttempt(dpb.FinishAttemptRequest(
                attempt_id=start.attempt_id, fencing_token=token, outcome=res.CALL_OUTCOME_COMPLETED,
                answer_time=_ts(now - timedelta(seconds=10)), end_time=_ts(now), duration_seconds=10.0,
                transcript=transcript, closed_by="hostile"), metadata=md)
        seen: list[str] = []
        token, pages = "", 0
        while True:
            resp = stub.ListContacts(bpb.ListContactsRequest(parent=batch.name, page_size=50, page_token=token),
                                     metadata=org.md())
            assert resp.ByteSize() < 16 * 1024 * 1024
            assert resp.total_size == n
            pages += 1
            for c in resp.contacts:
                assert c.transcript == transcript  # whole, not trimmed
            seen.extend(c.contact_id for c in resp.contacts)
            token = resp.next_page_token
            if not token:
                break
    assert pages >= 3
    assert sorted(seen) == sorted(c.contact_id for c in contacts.contacts)  # each once, none lost
