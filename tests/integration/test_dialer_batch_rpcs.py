"""BatchStartAttempts / BatchMarkAnswered / BatchFinishAttempts on the real
server: one transaction for many items, the same per-item decisions as the
single calls, per-item errors that never fail the others, and counters that
match the contacts afterwards."""

from __future__ import annotations

import itertools
import secrets
from datetime import datetime, timedelta, timezone

import grpc
import pytest

from batchcalls.v1 import (
    batch_service_pb2 as bpb,
    batch_service_pb2_grpc as bgrpc,
    dialer_service_pb2 as dpb,
    dialer_service_pb2_grpc as dgrpc,
    resources_pb2 as res,
)
from tests.support.drive import _ts, create_batch, list_all_contacts, service_md

_tokens = itertools.count(9_000_000 + secrets.randbelow(1_000_000))
GRANTED = dpb.START_ATTEMPT_DECISION_GRANTED


def _start_req(org, batch_id: str, contact_id: str) -> tuple[dpb.StartAttemptRequest, int]:
    token = next(_tokens)
    return dpb.StartAttemptRequest(
        organization_id=org.org_id, batch_id=batch_id, contact_id=contact_id, fencing_token=token,
        lease_id=f"lease-{secrets.token_hex(6)}", dialer_id="batch-test", provider_call_id=f"call-{secrets.token_hex(6)}",
    ), token


def _finish(attempt_id: str, token: int, outcome: str, *, answered: bool = False) -> dpb.FinishAttemptRequest:
    now = datetime.now(timezone.utc)
    req = dpb.FinishAttemptRequest(attempt_id=attempt_id, fencing_token=token,
                                   outcome=res.CallOutcome.Value(f"CALL_OUTCOME_{outcome.upper()}"),
                                   end_time=_ts(now), closed_by="batch-test")
    if answered:
        req.answer_time.CopyFrom(_ts(now - timedelta(seconds=30)))
        req.duration_seconds = 30.0
    return req


def test_batch_calls_decide_per_item_like_single_calls(stack, org) -> None:
    csv = "phone\n" + "".join(f"+1212555{n:04d}\n" for n in (1201, 1202, 1203, 1204, 1205))
    batch = create_batch(stack, org, csv, max_attempts=2)
    md = service_md(stack)
    with stack.channel() as ch, stack.internal_channel() as ich:
        dialer, stub = dgrpc.DialerServiceStub(ich), bgrpc.BatchServiceStub(ch)
        cs = sorted(list_all_contacts(stub, org, batch.batch_id), key=lambda c: c.phone_number)
        reqs, tokens = zip(*[_start_req(org, batch.batch_id, c.contact_id) for c in cs])
        dup, _ = _start_req(org, batch.batch_id, cs[0].contact_id)
        garbage, _ = _start_req(org, batch.batch_id, "not-a-number")
        other_org, _ = _start_req(org, "bat_does_not_exist", cs[1].contact_id)
        started = dialer.BatchStartAttempts(
            dpb.BatchStartAttemptsRequest(requests=[*reqs, dup, garbage, other_org]), metadata=md).responses

        assert [r.decision for r in started] == [GRANTED] * 5 + [
            dpb.START_ATTEMPT_DECISION_STALE,  # the same contact twice in one flush: granted once
            dpb.START_ATTEMPT_DECISION_STALE,
            dpb.START_ATTEMPT_DECISION_BATCH_NOT_RUNNING,
        ]
        assert [r.phone_number for r in started[:5]] == [c.phone_number for c in cs]
        assert all(r.attempt_number == 1 and r.attempt_id and r.HasField("dial_deadline_time") for r in started[:5])
        assert len({r.attempt_id for r in started[:5]}) == 5
        ids = [r.attempt_id for r in started[:5]]

        answered = dialer.BatchMarkAnswered(dpb.BatchMarkAnsweredRequest(requests=[
            dpb.MarkAnsweredRequest(attempt_id=ids[0], fencing_token=tokens[0], answer_time=_ts(datetime.now(timezone.utc))),
            dpb.MarkAnsweredRequest(attempt_id=ids[1], fencing_token=tokens[1] + 1),
            dpb.MarkAnsweredRequest(attempt_id="att_unknown", fencing_token=1),
        ]), metadata=md).results
        assert [r.code for r in answered] == [0, grpc.StatusCode.FAILED_PRECONDITION.value[0],
                                              grpc.StatusCode.NOT_FOUND.value[0]]
        assert answered[1].reason == "STALE_FENCING_TOKEN"
        after_answer = {c.contact_id: c.status for c in list_all_contacts(stub, org, batch.batch_id)}
        assert after_answer[cs[0].contact_id] == res.CONTACT_STATUS_CONNECTED
        assert after_answer[cs[1].contact_id] == res.CONTACT_STATUS_DIALING

        finished = dialer.BatchFinishAttempts(dpb.BatchFinishAttemptsRequest(requests=[
            _finish(ids[0], tokens[0], "completed", answered=True),
            _finish(ids[1], tokens[1], "no_answer"),
            _finish(ids[2], tokens[2], "not_dialed"),
            _finish(ids[3], tokens[3] + 7, "completed"),  # stale token: refused alone
            _finish("att_unknown", 1, "busy"),
            _finish(ids[4], tokens[4], "invalid_number"),
            _finish(ids[0], tokens[0], "completed", answered=True),  # a retried finish answers the same
        ]), metadata=md).results
        kinds = [r.WhichOneof("result") for r in finished]
        assert kinds == ["response", "response", "response", "error", "error", "response", "response"]
        assert finished[0].response.contact_status == res.CONTACT_STATUS_COMPLETED
        assert finished[1].response.contact_status == res.CONTACT_STATUS_QUEUED
        assert finished[1].response.HasField("next_attempt_time")
        assert finished[2].response.contact_status == res.CONTACT_STATUS_PENDING
        assert (finished[3].error.code, finished[3].error.reason) == (
            grpc.StatusCode.FAILED_PRECONDITION.value[0], "STALE_FENCING_TOKEN")
        assert finished[4].error.code == grpc.StatusCode.NOT_FOUND.value[0]
        assert finished[5].response.contact_status == res.CONTACT_STATUS_INVALID_NUMBER
        assert finished[6].response.contact_status == res.CONTACT_STATUS_COMPLETED

        # The stale-token item did not stop the others, and its contact is still in its call.
        final = {c.contact_id: c for c in list_all_contacts(stub, org, batch.batch_id)}
        assert final[cs[3].contact_id].status == res.CONTACT_STATUS_DIALING
        assert final[cs[2].contact_id].attempts == 0  # never dialed: no attempt spent
        assert final[cs[0].contact_id].duration_seconds == pytest.approx(30.0)

        # Counters moved exactly as the contacts did (summed per shard, one statement).
        stats = stub.GetBatch(bpb.GetBatchRequest(name=batch.name), metadata=org.md()).batch.stats
        by_status: dict[int, int] = {}
        for c in final.values():
            by_status[c.status] = by_status.get(c.status, 0) + 1
        assert (stats.completed, stats.queued, stats.pending, stats.dialing, stats.invalid_number) == (
            by_status.get(res.CONTACT_STATUS_COMPLETED, 0), by_status.get(res.CONTACT_STATUS_QUEUED, 0),
            by_status.get(res.CONTACT_STATUS_PENDING, 0), by_status.get(res.CONTACT_STATUS_DIALING, 0),
            by_status.get(res.CONTACT_STATUS_INVALID_NUMBER, 0))
        assert (stats.completed, stats.queued, stats.pending, stats.dialing, stats.invalid_number) == (1, 1, 1, 1, 1)
        assert stats.attempts_total == 4  # five grants, one undone
        assert stats.connected_calls == 1


def test_batch_calls_are_bounded_and_need_the_service_token(stack, org) -> None:
    with stack.internal_channel() as ch:
        dialer = dgrpc.DialerServiceStub(ch)
        too_many = dpb.BatchStartAttemptsRequest(
            requests=[_start_req(org, "bat_x", str(i))[0] for i in range(501)])
        with pytest.raises(grpc.RpcError) as err:
            dialer.BatchStartAttempts(too_many, metadata=service_md(stack))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as err:
            dialer.BatchFinishAttempts(dpb.BatchFinishAttemptsRequest(), metadata=org.md())
        assert err.value.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED)


def test_finish_keeps_the_agent_answer_delay_on_the_attempt(stack, org) -> None:
    """FinishAttempt's agent_answer_delay_ms / agent_sip_code are stored on
    the attempt and shown in GetContact's attempt_details (issue 12)."""
    csv = "phone\n" + "".join(f"+1212555{n:04d}\n" for n in (1301, 1302, 1303))
    batch = create_batch(stack, org, csv, max_attempts=1)
    md = service_md(stack)
    with stack.channel() as ch, stack.internal_channel() as ich:
        dialer, stub = dgrpc.DialerServiceStub(ich), bgrpc.BatchServiceStub(ch)
        cs = sorted(list_all_contacts(stub, org, batch.batch_id), key=lambda c: c.phone_number)
        reqs, tokens = zip(*[_start_req(org, batch.batch_id, c.contact_id) for c in cs])
        started = dialer.BatchStartAttempts(dpb.BatchStartAttemptsRequest(requests=list(reqs)), metadata=md).responses
        ids = [r.attempt_id for r in started]
        agent_ok = _finish(ids[0], tokens[0], "completed", answered=True)
        agent_ok.agent_answer_delay_ms, agent_ok.agent_sip_code = 850, 200
        agent_busy = _finish(ids[1], tokens[1], "agent_error", answered=True)
        agent_busy.agent_answer_delay_ms, agent_busy.agent_sip_code = 40, 486
        no_agent = _finish(ids[2], tokens[2], "no_answer")
        dialer.BatchFinishAttempts(dpb.BatchFinishAttemptsRequest(requests=[agent_ok, agent_busy, no_agent]),
                                   metadata=md)
        shown = []
        for c in cs:
            contact = stub.GetContact(bpb.GetContactRequest(name=f"batches/{batch.batch_id}/contacts/{c.contact_id}"),
                                      metadata=org.md()).contact
            (att,) = contact.attempt_details
            shown.append((att.agent_answer_delay_ms, att.agent_sip_code))
        assert shown == [(850, 200), (40, 486), (0, 0)]
