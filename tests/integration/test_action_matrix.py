"""Every cell of the seed's action matrix, plus CANCELLED (our choice:
view and delete only). A refused action is FAILED_PRECONDITION naming the
status, with an ErrorInfo reason."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from batchcalls.v1 import (
    agent_service_pb2 as agent_pb2,
    agent_service_pb2_grpc as agent_grpc,
    batch_service_pb2 as pb,
    organization_service_pb2 as org_pb2,
    organization_service_pb2_grpc as org_grpc,
    resources_pb2 as res,
)
from google.protobuf.field_mask_pb2 import FieldMask
from tests.support.api import VALID_NUMBERS, create_request, error_reason, stub

ALLOWED = {
    "pending": {"cancel", "delete", "reschedule"},
    "scheduled": {"cancel", "delete", "reschedule"},
    "running": {"pause", "cancel"},
    "paused": {"resume", "cancel", "delete"},
    "completed": {"delete", "export"},
    "failed": {"delete", "export"},
    "cancelled": {"delete"},
}
ACTIONS = ["pause", "resume", "cancel", "delete", "reschedule", "export"]


def _future() -> Timestamp:
    t = Timestamp()
    t.FromDatetime(datetime.now(timezone.utc) + timedelta(days=2))
    return t


def make_batch(stack, status: str):
    """A batch in ``status``, reached through real transitions."""
    org = stack.new_org(credits_usd=0 if status == "pending" else 1000)
    with stack.channel() as ch:
        s = stub(ch)
        if status == "scheduled":
            return org, s.CreateBatch(create_request(org, scheduled_start_time=_future()), metadata=org.md()).batch
        if status == "completed":
            # Every contact on the do-not-call list: final at once.
            org_grpc.OrganizationServiceStub(ch).AddDoNotCallNumbers(
                org_pb2.AddDoNotCallNumbersRequest(phone_numbers=VALID_NUMBERS[:3]), metadata=org.md()
            )
        b = s.CreateBatch(create_request(org), metadata=org.md()).batch
        if status == "paused":
            b = s.PauseBatch(pb.PauseBatchRequest(name=b.name), metadata=org.md()).batch
        elif status == "cancelled":
            b = s.CancelBatch(pb.CancelBatchRequest(name=b.name), metadata=org.md()).batch
        elif status == "failed":
            agent_grpc.AgentServiceStub(ch).UpdateAgent(
                agent_pb2.UpdateAgentRequest(agent=res.Agent(name=org.agent_name, active=False),
                                             update_mask=FieldMask(paths=["active"])),
                metadata=org.md(),
            )
            b = s.GetBatch(pb.GetBatchRequest(name=b.name), metadata=org.md()).batch
    assert res.BatchStatus.Name(b.status) == f"BATCH_STATUS_{status.upper()}", (status, b.status_reason)
    return org, b


def do(stack, org, action: str, name: str):
    with stack.channel() as ch:
        s = stub(ch)
        md = org.md()
        if action == "pause":
            return s.PauseBatch(pb.PauseBatchRequest(name=name), metadata=md)
        if action == "resume":
            return s.ResumeBatch(pb.ResumeBatchRequest(name=name), metadata=md)
        if action == "cancel":
            return s.CancelBatch(pb.CancelBatchRequest(name=name), metadata=md)
        if action == "delete":
            return s.DeleteBatch(pb.DeleteBatchRequest(name=name), metadata=md)
        if action == "reschedule":
            return s.RescheduleBatch(pb.RescheduleBatchRequest(name=name, scheduled_start_time=_future()), metadata=md)
        if action == "export":
            return b"".join(m.chunk for m in s.ExportBatch(pb.ExportBatchRequest(name=name), metadata=md))
    raise AssertionError(action)


@pytest.mark.parametrize("status", list(ALLOWED))
@pytest.mark.parametrize("action", ACTIONS)
def test_action_matrix_cell(stack, status, action):
    org, batch = make_batch(stack, status)
    if action in ALLOWED[status]:
        do(stack, org, action, batch.name)
        with stack.channel() as ch:
            if action == "delete":
                with pytest.raises(grpc.RpcError) as info:
                    stub(ch).GetBatch(pb.GetBatchRequest(name=batch.name), metadata=org.md())
                assert info.value.code() == grpc.StatusCode.NOT_FOUND
    else:
        with pytest.raises(grpc.RpcError) as info:
            do(stack, org, action, batch.name)
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION, info.value.details()
        assert status.upper() in info.value.details()
        assert error_reason(info.value).startswith("BATCH_NOT_")


def test_view_allowed_in_every_status(stack):
    for status in ALLOWED:
        org, batch = make_batch(stack, status)
        with stack.channel() as ch:
            got = stub(ch).GetBatch(pb.GetBatchRequest(name=batch.name), metadata=org.md()).batch
        assert got.name == batch.name


def test_pending_batch_without_credit_shows_reason_and_starts_after_top_up(stack):
    org, batch = make_batch(stack, "pending")
    assert "credit" in batch.status_reason
    with stack.channel() as ch:
        org_grpc.OrganizationServiceStub(ch).TopUpCredits(
            org_pb2.TopUpCreditsRequest(amount_micros=5_000_000), metadata=org.md()
        )
        import time

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            b = stub(ch).GetBatch(pb.GetBatchRequest(name=batch.name), metadata=org.md()).batch
            if b.status == res.BATCH_STATUS_RUNNING:
                break
            time.sleep(0.1)
    assert b.status == res.BATCH_STATUS_RUNNING


def test_reschedule_must_be_in_future(stack):
    org, batch = make_batch(stack, "scheduled")
    past = Timestamp()
    past.FromDatetime(datetime.now(timezone.utc) - timedelta(seconds=5))
    with stack.channel() as ch, pytest.raises(grpc.RpcError) as info:
        stub(ch).RescheduleBatch(pb.RescheduleBatchRequest(name=batch.name, scheduled_start_time=past), metadata=org.md())
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_scheduled_batch_starts_at_its_instant(stack):
    org = stack.new_org()
    soon = Timestamp()
    start = datetime.now(timezone.utc) + timedelta(seconds=1.5)
    soon.FromDatetime(start)
    import time

    with stack.channel() as ch:
        b = stub(ch).CreateBatch(create_request(org, scheduled_start_time=soon), metadata=org.md()).batch
        assert b.status == res.BATCH_STATUS_SCHEDULED
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            b = stub(ch).GetBatch(pb.GetBatchRequest(name=b.name), metadata=org.md()).batch
            if b.status != res.BATCH_STATUS_SCHEDULED:
                break
            time.sleep(0.05)
    assert b.status == res.BATCH_STATUS_RUNNING
    assert b.start_time.ToDatetime(tzinfo=timezone.utc) >= start
