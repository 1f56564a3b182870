"""Batch configuration rules of the seed, each enforced by the server."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from batchcalls.v1 import (
    agent_service_pb2 as agent_pb2,
    agent_service_pb2_grpc as agent_grpc,
    batch_service_pb2 as pb,
    phone_number_service_pb2 as pn_pb2,
    phone_number_service_pb2_grpc as pn_grpc,
    resources_pb2 as res,
)
from tests.support.api import create_request, stub, violations


def _create(stack, org, **kw):
    with stack.channel() as ch:
        return stub(ch).CreateBatch(create_request(org, **kw), metadata=org.md())


def _bad(stack, org, **kw) -> dict[str, str]:
    with pytest.raises(grpc.RpcError) as info:
        _create(stack, org, **kw)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    return violations(info.value)


def test_defaults_concurrency_5_attempts_3_and_immediate_start(stack, org):
    batch = _create(stack, org).batch
    assert batch.concurrency_limit == 5
    assert batch.max_attempts == 3
    assert batch.timezone == "UTC"
    assert batch.status == res.BATCH_STATUS_RUNNING
    assert batch.stats.total_contacts == 3
    assert batch.stats.pending == 3


@pytest.mark.parametrize("name", ["", "   ", "x" * 201])
def test_name_required_and_at_most_200(stack, org, name):
    assert "display_name" in _bad(stack, org, display_name=name)


def test_name_of_200_characters_is_accepted(stack, org):
    assert _create(stack, org, display_name="n" * 200).batch.display_name == "n" * 200


@pytest.mark.parametrize("value", [-1, 51, 1000])
def test_concurrency_between_1_and_50(stack, org, value):
    assert "concurrency_limit" in _bad(stack, org, concurrency_limit=value)


@pytest.mark.parametrize("value", [-3, 11])
def test_max_attempts_between_1_and_10(stack, org, value):
    assert "max_attempts" in _bad(stack, org, max_attempts=value)


def test_bounds_accepted(stack, org):
    b = _create(stack, org, concurrency_limit=50, max_attempts=10).batch
    assert (b.concurrency_limit, b.max_attempts) == (50, 10)
    b = _create(stack, org, concurrency_limit=1, max_attempts=1).batch
    assert (b.concurrency_limit, b.max_attempts) == (1, 1)


def test_text_agent_rejected_with_that_reason(stack, org):
    with stack.channel() as ch:
        text_agent = agent_grpc.AgentServiceStub(ch).CreateAgent(
            agent_pb2.CreateAgentRequest(agent=res.Agent(display_name="chat", architecture=res.AGENT_ARCHITECTURE_TEXT, active=True)),
            metadata=org.md(),
        ).agent
    v = _bad(stack, org, agent=text_agent.name)
    assert "TEXT" in v["agent"]


def test_inactive_agent_rejected(stack, org):
    with stack.channel() as ch:
        agent = agent_grpc.AgentServiceStub(ch).CreateAgent(
            agent_pb2.CreateAgentRequest(agent=res.Agent(display_name="off", architecture=res.AGENT_ARCHITECTURE_REALTIME, active=False)),
            metadata=org.md(),
        ).agent
    assert "not active" in _bad(stack, org, agent=agent.name)["agent"]


def test_agent_of_another_org_is_not_found_in_yours(stack, org):
    other = stack.new_org()
    assert "not found" in _bad(stack, org, agent=other.agent_name)["agent"]


def test_number_without_outbound_trunk_cannot_be_chosen(stack, org):
    with stack.channel() as ch:
        number = pn_grpc.PhoneNumberServiceStub(ch).CreatePhoneNumber(
            pn_pb2.CreatePhoneNumberRequest(phone_number=res.PhoneNumber(phone_number="+14155550199")),
            metadata=org.md(),
        ).phone_number
    assert "outbound trunk" in _bad(stack, org, from_phone_number=number.name)["from_phone_number"]


def test_unregistered_number_rejected(stack, org):
    assert "from_phone_number" in _bad(stack, org, from_phone_number="phoneNumbers/pn_0000000000000000")


def test_missing_agent_and_number_reported_together(stack, org):
    v = _bad(stack, org, agent="", from_phone_number="")
    assert {"agent", "from_phone_number"} <= set(v)


def test_schedule_in_the_past_rejected(stack, org):
    past = Timestamp()
    past.FromDatetime(datetime.now(timezone.utc) - timedelta(minutes=1))
    assert "scheduled_start_time" in _bad(stack, org, scheduled_start_time=past)


def test_local_schedule_converted_to_utc(stack, org):
    year = datetime.now(timezone.utc).year + 1
    b = _create(stack, org, scheduled_local_time=f"{year}-01-20T14:00:00", timezone="America/New_York").batch
    assert b.status == res.BATCH_STATUS_SCHEDULED
    assert b.timezone == "America/New_York"
    assert b.scheduled_start_time.ToDatetime(tzinfo=timezone.utc) == datetime(year, 1, 20, 19, 0, tzinfo=timezone.utc)


def test_unknown_timezone_rejected(stack, org):
    year = datetime.now(timezone.utc).year + 1
    assert "timezone" in _bad(stack, org, scheduled_local_time=f"{year}-01-20T14:00", timezone="Mars/Olympus")


def test_same_request_id_twice_creates_one_batch(stack, org):
    req = create_request(org)
    with stack.channel() as ch:
        first = stub(ch).CreateBatch(req, metadata=org.md()).batch
        second = stub(ch).CreateBatch(req, metadata=org.md()).batch
        listed = stub(ch).ListBatches(pb.ListBatchesRequest(search=req.display_name, page_size=100), metadata=org.md())
    assert first.name == second.name
    assert [b.name for b in listed.batches].count(first.name) == 1


def test_oversized_fields_rejected_with_field_violations(stack, org):
    v = _bad(stack, org, description="d" * 2001, request_id="r" * 129, filename="f" * 300 + ".csv")
    assert "filename" in v or {"description", "request_id"} <= set(v)


def test_bad_csv_is_invalid_argument_naming_csv_content(stack, org):
    with pytest.raises(grpc.RpcError) as info:
        _create(stack, org, csv_content=b"name,email\nAnn,a@b.c\n")
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "phone" in info.value.details()
    assert "csv_content" in violations(info.value)


def test_wrong_file_type_rejected(stack, org):
    with pytest.raises(grpc.RpcError) as info:
        _create(stack, org, filename="contacts.xlsx")
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "filename" in violations(info.value)


def test_validate_contacts_reports_without_storing(stack, org):
    csv = b"phone,name,plan\n+14155552671,Ann,gold\n+1 (415) 555-2672,Bob,silver\nnot-a-number,Cy,x\n+14155552671,Dup,y\n,,\n"
    with stack.channel() as ch:
        before = stub(ch).ListBatches(pb.ListBatchesRequest(), metadata=org.md()).total_size
        resp = stub(ch).ValidateContacts(pb.ValidateContactsRequest(csv_content=csv, filename="c.csv"), metadata=org.md())
        after = stub(ch).ListBatches(pb.ListBatchesRequest(), metadata=org.md()).total_size
    r = resp.report
    assert (r.total_rows, r.valid_rows, r.invalid_count, r.duplicate_count, r.empty_rows, r.normalized_count) == (5, 2, 1, 1, 1, 1)
    assert r.duplicate_rows[0].duplicate_of_row == 2
    assert list(r.custom_columns) == ["plan"]
    assert resp.cost_estimate.estimated_cost_micros == 2 * 3 * 73_000
    assert before == after


def test_ten_megabyte_upload_through_grpc(stack, org):
    filler = "x" * 900
    rows = ["phone,name,a,b,c"]
    i = 0
    while sum(len(r) + 1 for r in rows) < 10 * 1024 * 1024 - 2000:
        rows.append(f"+1415{5550000 + i:07d},P{i},{filler},{filler},{filler}")
        i += 1
    content = ("\n".join(rows) + "\n").encode()
    assert 9.9 * 1024 * 1024 < len(content) <= 10 * 1024 * 1024
    with stack.channel() as ch:
        resp = stub(ch).ValidateContacts(pb.ValidateContactsRequest(csv_content=content, filename="big.csv"), metadata=org.md())
    assert resp.report.total_rows == i
    too_big = content + b"+14155552671,x," + b"y" * (1024 * 1024) + b"\n"
    with stack.channel() as ch, pytest.raises(grpc.RpcError) as info:
        stub(ch).ValidateContacts(pb.ValidateContactsRequest(csv_content=too_big, filename="big.csv"), metadata=org.md())
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "10" in info.value.details()
