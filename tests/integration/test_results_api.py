"""ResultsService through the real server: attempts made with the dialer's
own StartAttempt / MarkAnswered / FinishAttempt RPCs (service token), results
reported with a reporter key; every effect, before and after FinishAttempt,
idempotency, NOT_FOUND, INVALID_ARGUMENT and the reporter key's scope."""

from __future__ import annotations

import csv
import io
import itertools
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import grpc
import pytest
from batchcalls.v1 import (
    agent_service_pb2 as agent_pb2,
)
from batchcalls.v1 import (
    agent_service_pb2_grpc as agent_grpc,
)
from batchcalls.v1 import (
    batch_pb2,
)
from batchcalls.v1 import (
    batch_service_pb2 as bpb,
)
from batchcalls.v1 import (
    batch_service_pb2_grpc as bgrpc,
)
from batchcalls.v1 import (
    dialer_service_pb2 as dpb,
)
from batchcalls.v1 import (
    dialer_service_pb2_grpc as dgrpc,
)
from batchcalls.v1 import (
    organization_service_pb2 as org_pb2,
)
from batchcalls.v1 import (
    organization_service_pb2_grpc as org_grpc,
)
from batchcalls.v1 import (
    resources_pb2 as res,
)
from batchcalls.v1 import (
    results_service_pb2 as rpb,
)
from batchcalls.v1 import (
    results_service_pb2_grpc as rgrpc,
)

from tests.support.api import error_reason, violations
from tests.support.drive import _ts, create_batch, list_all_contacts, service_md

_tokens = itertools.count(7_000_000 + secrets.randbelow(1_000_000))
_numbers = itertools.count(secrets.randbelow(4000) + 1000)
GRANTED = dpb.START_ATTEMPT_DECISION_GRANTED
D = batch_pb2


def _phones(n: int) -> list[str]:
    return [f"+1312555{next(_numbers) % 10000:04d}" for _ in range(n)]


@dataclass
class Call:
    attempt_id: str
    token: int
    provider_call_id: str
    contact_id: str
    attempt_number: int


def reporter_md(stack, org) -> list[tuple[str, str]]:
    with stack.channel() as ch:
        secret = org_grpc.OrganizationServiceStub(ch).CreateApiKey(
            org_pb2.CreateApiKeyRequest(display_name="agent runtime", role=res.ROLE_REPORTER), metadata=org.md()
        ).secret
    return [("authorization", f"Bearer {secret}")]


def start(stack, org, batch_id: str, contact_id: str) -> dpb.StartAttemptResponse:
    """One StartAttempt, whatever its decision."""
    with stack.internal_channel() as ch:
        return dgrpc.DialerServiceStub(ch).StartAttempt(dpb.StartAttemptRequest(
            organization_id=org.org_id, batch_id=batch_id, contact_id=contact_id, fencing_token=next(_tokens),
            lease_id=f"lease-{secrets.token_hex(6)}", dialer_id="results-test",
            provider_call_id=f"sim-{secrets.token_hex(8)}",
        ), metadata=service_md(stack))


def call(stack, org, batch_id: str, contact_id: str) -> Call:
    """StartAttempt (granted) and MarkAnswered."""
    token = next(_tokens)
    call_id = f"sim-{secrets.token_hex(8)}"
    md = service_md(stack)
    with stack.internal_channel() as ch:
        dialer = dgrpc.DialerServiceStub(ch)
        resp = dialer.StartAttempt(dpb.StartAttemptRequest(
            organization_id=org.org_id, batch_id=batch_id, contact_id=contact_id, fencing_token=token,
            lease_id=f"lease-{secrets.token_hex(6)}", dialer_id="results-test", provider_call_id=call_id,
        ), metadata=md)
        assert resp.decision == GRANTED, resp
        dialer.MarkAnswered(dpb.MarkAnsweredRequest(attempt_id=resp.attempt_id, fencing_token=token,
                                                    answer_time=_ts(datetime.now(timezone.utc))), metadata=md)
    return Call(resp.attempt_id, token, call_id, contact_id, resp.attempt_number)


def finish(stack, c: Call, outcome: str = "completed") -> dpb.FinishAttemptResponse:
    now = datetime.now(timezone.utc)
    with stack.internal_channel() as ch:
        return dgrpc.DialerServiceStub(ch).FinishAttempt(dpb.FinishAttemptRequest(
            attempt_id=c.attempt_id, fencing_token=c.token,
            outcome=res.CallOutcome.Value(f"CALL_OUTCOME_{outcome.upper()}"),
            answer_time=_ts(now - timedelta(seconds=20)), end_time=_ts(now), duration_seconds=20.0,
            closed_by="results-test",
        ), metadata=service_md(stack))


def report(stack, md, *, c: Call | None = None, by: str = "provider_call_id", **result) -> rpb.ReportCallResultResponse:
    req = rpb.ReportCallResultRequest(result=D.CallResult(**result))
    if c is not None:
        setattr(req, by, c.provider_call_id if by == "provider_call_id" else c.attempt_id)
    with stack.channel() as ch:
        return rgrpc.ResultsServiceStub(ch).ReportCallResult(req, metadata=md)


def contact(stack, org, batch_id: str, contact_id: str) -> D.Contact:
    with stack.channel() as ch:
        return bgrpc.BatchServiceStub(ch).GetContact(
            bpb.GetContactRequest(name=f"batches/{batch_id}/contacts/{contact_id}"), metadata=org.md()
        ).contact


def batch_of(stack, org, batch_id: str) -> D.Batch:
    with stack.channel() as ch:
        return bgrpc.BatchServiceStub(ch).GetBatch(bpb.GetBatchRequest(name=f"batches/{batch_id}"), metadata=org.md()).batch


def new_batch(stack, org, n: int = 2, *, max_attempts: int = 3, extra: str = "", **fields) -> tuple[str, list[D.Contact]]:
    phones = _phones(n)
    head = "phone" + (",first_name" if extra else "")
    rows = "".join(f"{p}{',' + extra if extra else ''}\n" for p in phones)
    b = create_batch(stack, org, f"{head}\n{rows}", max_attempts=max_attempts, **fields)
    with stack.channel() as ch:
        cs = sorted(list_all_contacts(bgrpc.BatchServiceStub(ch), org, b.batch_id), key=lambda c: int(c.contact_id))
    return b.batch_id, cs


@pytest.fixture(scope="module")
def org(stack):
    return stack.new_org()


@pytest.fixture(scope="module")
def rmd(stack, org):
    return reporter_md(stack, org)


def test_opt_out_lists_the_number_and_stops_further_attempts(stack, org, rmd) -> None:
    batch_id, cs = new_batch(stack, org, 2)
    c = call(stack, org, batch_id, cs[0].contact_id)
    out = report(stack, rmd, c=c, disposition=D.CALL_DISPOSITION_OPT_OUT, answered_by=D.ANSWERED_BY_HUMAN,
                 summary="asked not to be called again")
    assert out.attempt_id == c.attempt_id and not out.duplicate
    assert out.contact == f"batches/{batch_id}/contacts/{c.contact_id}"
    with stack.channel() as ch:
        entries = org_grpc.OrganizationServiceStub(ch).ListDoNotCallNumbers(
            org_pb2.ListDoNotCallNumbersRequest(search=cs[0].phone_number[1:]), metadata=org.md()).entries
    assert [e.phone_number for e in entries] == [cs[0].phone_number]
    assert f"batches/{batch_id}" in entries[0].reason
    # The dialer closes the call with a retryable outcome: no further attempt.
    closed = finish(stack, c, "no_answer")
    assert closed.contact_status == res.CONTACT_STATUS_SUPPRESSED
    got = contact(stack, org, batch_id, c.contact_id)
    assert got.status == res.CONTACT_STATUS_SUPPRESSED and "opted out" in got.failure_reason
    assert start(stack, org, batch_id, c.contact_id).decision == dpb.START_ATTEMPT_DECISION_STALE
    # Any other batch of the organization: the grant suppresses the number.
    other_id = create_batch(stack, org, f"phone\n{cs[0].phone_number}\n{_phones(1)[0]}\n", max_attempts=2).batch_id
    with stack.channel() as ch:
        other = {x.phone_number: x for x in list_all_contacts(bgrpc.BatchServiceStub(ch), org, other_id)}
    listed = other[cs[0].phone_number]
    if listed.status != res.CONTACT_STATUS_SUPPRESSED:  # not screened at upload: screened at the grant
        assert start(stack, org, other_id, listed.contact_id).decision == dpb.START_ATTEMPT_DECISION_SUPPRESSED


def test_wrong_number_reported_late_suppresses_the_contact(stack, org, rmd) -> None:
    batch_id, cs = new_batch(stack, org, 2)
    c = call(stack, org, batch_id, cs[0].contact_id)
    assert finish(stack, c, "completed").contact_status == res.CONTACT_STATUS_COMPLETED
    out = report(stack, rmd, c=c, by="attempt_id", disposition=D.CALL_DISPOSITION_WRONG_NUMBER,
                 answered_by=D.ANSWERED_BY_HUMAN)
    assert out.contact_status == res.CONTACT_STATUS_SUPPRESSED
    got = contact(stack, org, batch_id, c.contact_id)
    assert got.status == res.CONTACT_STATUS_SUPPRESSED and "wrong number" in got.failure_reason
    # The late report attached to its attempt.
    assert got.attempt_details[0].attempt_id == c.attempt_id
    assert got.attempt_details[0].result.disposition == D.CALL_DISPOSITION_WRONG_NUMBER
    assert got.result.disposition == D.CALL_DISPOSITION_WRONG_NUMBER
    stats = batch_of(stack, org, batch_id).stats
    assert (stats.completed, stats.suppressed, stats.pending) == (0, 1, 1)


def test_callback_before_finish_requeues_at_that_time_and_counts_only_when_dialed(stack, org, rmd) -> None:
    batch_id, cs = new_batch(stack, org, 2, max_attempts=1)
    c = call(stack, org, batch_id, cs[0].contact_id)
    when = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=3)
    report(stack, rmd, c=c, disposition=D.CALL_DISPOSITION_CALLBACK_REQUESTED, callback_time=_ts(when),
           answered_by=D.ANSWERED_BY_HUMAN)
    closed = finish(stack, c, "completed")
    assert closed.contact_status == res.CONTACT_STATUS_QUEUED
    assert closed.next_attempt_time.ToDatetime(tzinfo=timezone.utc) == when
    got = contact(stack, org, batch_id, c.contact_id)
    assert got.status == res.CONTACT_STATUS_QUEUED and got.wait_reason == "callback requested"
    # One attempt made; a callback always gets one more, counted when dialed.
    assert (got.attempts, got.max_attempts) == (1, 2)
    assert start(stack, org, batch_id, c.contact_id).decision == dpb.START_ATTEMPT_DECISION_STALE  # not due yet
    assert contact(stack, org, batch_id, c.contact_id).attempts == 1
    time.sleep(max(0.0, (when - datetime.now(timezone.utc)).total_seconds()) + 0.2)
    again = call(stack, org, batch_id, c.contact_id)
    assert again.attempt_number == 2
    assert contact(stack, org, batch_id, c.contact_id).attempts == 2


def test_callback_after_finish_requeues_the_contact(stack, org, rmd) -> None:
    batch_id, cs = new_batch(stack, org, 2, max_attempts=2)
    c = call(stack, org, batch_id, cs[0].contact_id)
    assert finish(stack, c, "completed").contact_status == res.CONTACT_STATUS_COMPLETED
    when = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(hours=2)
    out = report(stack, rmd, c=c, disposition=D.CALL_DISPOSITION_CALLBACK_REQUESTED, callback_time=_ts(when))
    assert out.contact_status == res.CONTACT_STATUS_QUEUED
    assert out.next_attempt_time.ToDatetime(tzinfo=timezone.utc) == when
    stats = batch_of(stack, org, batch_id).stats
    assert (stats.completed, stats.queued, stats.pending) == (0, 1, 1)
    assert [h.contacts for h in stats.attempts_histogram if h.attempts == 1] in ([], [0])
    assert contact(stack, org, batch_id, c.contact_id).attempts == 1


#: The batch's own voicemail delay (the default is an hour, issue 13).
VOICEMAIL_NOW = D.RetryPolicy(outcome_retries=[D.OutcomeRetry(outcome=res.CALL_OUTCOME_VOICEMAIL, delay_seconds=[0])])


def test_voicemail_follows_the_retry_rules(stack, org, rmd) -> None:
    batch_id, cs = new_batch(stack, org, 2, max_attempts=2, retry_policy=VOICEMAIL_NOW)
    c = call(stack, org, batch_id, cs[0].contact_id)
    report(stack, rmd, c=c, disposition=D.CALL_DISPOSITION_VOICEMAIL, answered_by=D.ANSWERED_BY_MACHINE)
    first = finish(stack, c, "completed")
    assert first.contact_status == res.CONTACT_STATUS_QUEUED  # retried after the batch's voicemail delay
    time.sleep(0.5)
    c2 = call(stack, org, batch_id, c.contact_id)
    assert c2.attempt_number == 2
    assert finish(stack, c2, "completed").contact_status == res.CONTACT_STATUS_COMPLETED
    # Reported late, on the last attempt: no attempt left.
    out = report(stack, rmd, c=c2, disposition=D.CALL_DISPOSITION_VOICEMAIL, answered_by=D.ANSWERED_BY_MACHINE)
    assert out.contact_status == res.CONTACT_STATUS_FAILED
    got = contact(stack, org, batch_id, c.contact_id)
    assert got.failure_reason == "permanently_failed"
    assert [a.result.disposition for a in got.attempt_details] == [D.CALL_DISPOSITION_VOICEMAIL] * 2


def test_voicemail_report_follows_the_batchs_voicemail_action(stack, org, rmd) -> None:
    # RETRY_LATER (default) without a delay of the batch's own: the voicemail default, an hour.
    batch_id, cs = new_batch(stack, org, 1, max_attempts=2)
    c = call(stack, org, batch_id, cs[0].contact_id)
    report(stack, rmd, c=c, disposition=D.CALL_DISPOSITION_VOICEMAIL, answered_by=D.ANSWERED_BY_MACHINE)
    out = finish(stack, c, "completed")
    assert out.contact_status == res.CONTACT_STATUS_QUEUED
    wait = out.next_attempt_time.ToDatetime(tzinfo=timezone.utc) - datetime.now(timezone.utc)
    assert timedelta(minutes=59) < wait <= timedelta(minutes=60)
    # DONE: the agent left a message, the contact is completed with reason voicemail.
    batch_id, cs = new_batch(stack, org, 1, max_attempts=3, voicemail_action=D.VOICEMAIL_ACTION_DONE)
    c = call(stack, org, batch_id, cs[0].contact_id)
    report(stack, rmd, c=c, disposition=D.CALL_DISPOSITION_VOICEMAIL, answered_by=D.ANSWERED_BY_MACHINE)
    assert finish(stack, c, "completed").contact_status == res.CONTACT_STATUS_COMPLETED
    got = contact(stack, org, batch_id, c.contact_id)
    assert (got.status, got.failure_reason, got.attempts) == (res.CONTACT_STATUS_COMPLETED, "voicemail", 1)


def test_reports_are_idempotent_per_call(stack, org, rmd) -> None:
    batch_id, cs = new_batch(stack, org, 2)
    c = call(stack, org, batch_id, cs[0].contact_id)
    fields = [D.ExtractedField(name="budget", number_value=1200), D.ExtractedField(name="interested", bool_value=True)]
    first = report(stack, rmd, c=c, disposition=D.CALL_DISPOSITION_OPT_OUT, summary="s1", extracted_fields=fields)
    again = report(stack, rmd, c=c, disposition=D.CALL_DISPOSITION_OPT_OUT, summary="s1", extracted_fields=fields)
    assert not first.duplicate and again.duplicate
    assert again.result.report_time == first.result.report_time
    # Same disposition, new details: they replace the first ones.
    newer = report(stack, rmd, c=c, disposition=D.CALL_DISPOSITION_OPT_OUT, summary="s2", transcript="agent: hi")
    assert not newer.duplicate and newer.result.summary == "s2" and not newer.result.extracted_fields
    # A different disposition is refused: the first one's effect is applied.
    with pytest.raises(grpc.RpcError) as err:
        report(stack, rmd, c=c, disposition=D.CALL_DISPOSITION_COMPLETED)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(err.value) == "RESULT_ALREADY_REPORTED"
    with stack.channel() as ch:
        total = org_grpc.OrganizationServiceStub(ch).ListDoNotCallNumbers(
            org_pb2.ListDoNotCallNumbersRequest(search=cs[0].phone_number[1:]), metadata=org.md()).total_size
    assert total == 1


def test_unknown_call_is_not_found_also_across_organizations(stack, org, rmd) -> None:
    with pytest.raises(grpc.RpcError) as err:
        report(stack, rmd, c=Call("att_nope", 0, "no-such-call", "1", 1), disposition=D.CALL_DISPOSITION_COMPLETED)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    batch_id, cs = new_batch(stack, org, 1)
    c = call(stack, org, batch_id, cs[0].contact_id)
    other = stack.new_org()
    other_md = reporter_md(stack, other)
    for by in ("provider_call_id", "attempt_id"):
        with pytest.raises(grpc.RpcError) as err:
            report(stack, other_md, c=c, by=by, disposition=D.CALL_DISPOSITION_COMPLETED)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert not contact(stack, org, batch_id, c.contact_id).HasField("result")


def test_bad_values_are_invalid_argument_with_field_violations(stack, org, rmd) -> None:
    batch_id, cs = new_batch(stack, org, 1)
    c = call(stack, org, batch_id, cs[0].contact_id)
    cases = [
        (dict(disposition=D.CALL_DISPOSITION_COMPLETED), None, "call"),
        (dict(), c, "result.disposition"),
        (dict(disposition=D.CALL_DISPOSITION_CALLBACK_REQUESTED), c, "result.callback_time"),
        (dict(disposition=D.CALL_DISPOSITION_COMPLETED, callback_time=_ts(datetime.now(timezone.utc))), c,
         "result.callback_time"),
        (dict(disposition=D.CALL_DISPOSITION_CALLBACK_REQUESTED,
              callback_time=_ts(datetime.now(timezone.utc) + timedelta(days=400))), c, "result.callback_time"),
        (dict(disposition=D.CALL_DISPOSITION_COMPLETED, recording_uri="javascript:alert(1)"), c, "result.recording_uri"),
        (dict(disposition=D.CALL_DISPOSITION_COMPLETED, summary="x" * 4001), c, "result.summary"),
        (dict(disposition=D.CALL_DISPOSITION_COMPLETED, transcript="x" * 100_001), c, "result.transcript"),
        (dict(disposition=D.CALL_DISPOSITION_COMPLETED,
              extracted_fields=[D.ExtractedField(name="1bad", string_value="v")]), c, "result.extracted_fields[0].name"),
        (dict(disposition=D.CALL_DISPOSITION_COMPLETED,
              extracted_fields=[D.ExtractedField(name="a", string_value="v"), D.ExtractedField(name="a", bool_value=True)]),
         c, "result.extracted_fields[1].name"),
        (dict(disposition=D.CALL_DISPOSITION_COMPLETED, extracted_fields=[D.ExtractedField(name="novalue")]), c,
         "result.extracted_fields[0].value"),
        (dict(disposition=D.CALL_DISPOSITION_COMPLETED,
              extracted_fields=[D.ExtractedField(name="nan", number_value=float("nan"))]), c,
         "result.extracted_fields[0].number_value"),
        (dict(disposition=D.CALL_DISPOSITION_COMPLETED,
              extracted_fields=[D.ExtractedField(name=f"f{i}", bool_value=True) for i in range(51)]), c,
         "result.extracted_fields"),
    ]
    for fields, target, expected in cases:
        with pytest.raises(grpc.RpcError) as err:
            report(stack, rmd, c=target, **fields)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, fields
        assert expected in violations(err.value), (expected, violations(err.value))
    both = rpb.ReportCallResultRequest(provider_call_id=c.provider_call_id,
                                       result=D.CallResult(disposition=D.CALL_DISPOSITION_COMPLETED))
    both.attempt_id = c.attempt_id  # the oneof keeps the last one set: still one call
    assert both.WhichOneof("call") == "attempt_id"
    assert not contact(stack, org, batch_id, c.contact_id).HasField("result")


def test_reporter_key_reports_only_and_only_reporting_roles_report(stack, org, rmd) -> None:
    with stack.channel() as ch, stack.internal_channel() as ich:
        for rpc in (
            lambda: org_grpc.OrganizationServiceStub(ch).GetOrganization(org_pb2.GetOrganizationRequest(), metadata=rmd),
            lambda: bgrpc.BatchServiceStub(ch).ListBatches(bpb.ListBatchesRequest(), metadata=rmd),
            lambda: agent_grpc.AgentServiceStub(ch).ListAgents(agent_pb2.ListAgentsRequest(), metadata=rmd),
            lambda: dgrpc.DialerServiceStub(ich).FinishAttempt(dpb.FinishAttemptRequest(), metadata=rmd),
        ):
            with pytest.raises(grpc.RpcError) as err:
                rpc()
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        keys = org_grpc.OrganizationServiceStub(ch).ListApiKeys(org_pb2.ListApiKeysRequest(), metadata=org.md()).api_keys
        assert res.ROLE_REPORTER in {k.role for k in keys}
    batch_id, cs = new_batch(stack, org, 2)
    c = call(stack, org, batch_id, cs[0].contact_id)
    for md, code in ((org.md("member"), grpc.StatusCode.PERMISSION_DENIED),
                     (service_md(stack), grpc.StatusCode.PERMISSION_DENIED),
                     ([], grpc.StatusCode.UNAUTHENTICATED)):
        with pytest.raises(grpc.RpcError) as err:
            report(stack, md, c=c, disposition=D.CALL_DISPOSITION_COMPLETED)
        assert err.value.code() == code
    # Owners and admins may report too (documented on ResultsService).
    assert not report(stack, org.md("admin"), c=c, disposition=D.CALL_DISPOSITION_COMPLETED).duplicate


def test_results_show_in_get_contact_and_the_export(stack, org, rmd) -> None:
    batch_id, cs = new_batch(stack, org, 1, max_attempts=1, extra="Ada")
    c = call(stack, org, batch_id, cs[0].contact_id)
    report(stack, rmd, c=c, disposition=D.CALL_DISPOSITION_TRANSFERRED, answered_by=D.ANSWERED_BY_HUMAN,
           summary="=wants a human", recording_uri="https://rec.example/1.wav", transcript="agent: hello",
           extracted_fields=[D.ExtractedField(name="plan", string_value="gold"),
                             D.ExtractedField(name="seats", number_value=12),
                             D.ExtractedField(name="first_name", bool_value=False)])
    assert finish(stack, c, "completed").batch_status == res.BATCH_STATUS_COMPLETED
    got = contact(stack, org, batch_id, c.contact_id)
    assert got.status == res.CONTACT_STATUS_COMPLETED
    r = got.result
    assert (r.disposition, r.answered_by, r.summary, r.recording_uri, r.transcript) == (
        D.CALL_DISPOSITION_TRANSFERRED, D.ANSWERED_BY_HUMAN, "=wants a human", "https://rec.example/1.wav",
        "agent: hello")
    assert {f.name: f.WhichOneof("value") for f in r.extracted_fields} == {
        "plan": "string_value", "seats": "number_value", "first_name": "bool_value"}
    with stack.channel() as ch:
        data = b"".join(m.chunk for m in bgrpc.BatchServiceStub(ch).ExportBatch(
            bpb.ExportBatchRequest(name=f"batches/{batch_id}"), metadata=org.md()))
    rows = list(csv.reader(io.StringIO(data.decode(), newline="")))
    assert rows[0][7:] == ["first_name", "disposition", "answered_by", "summary", "field_first_name", "plan", "seats"]
    assert rows[1][7:] == ["Ada", "transferred", "human", "'=wants a human", "false", "gold", "12"]


def test_the_simulated_agent_reports_through_the_internal_listener(stack, org, rmd) -> None:
    """The dialer reports for the simulated trunk's built-in agent with the
    service credential on the internal listener: the same use case as a
    reporter key (same effects, same idempotency), the organization taken
    from the attempt. Organization keys are refused there."""
    batch_id, cs = new_batch(stack, org, 2)
    c = call(stack, org, batch_id, cs[0].contact_id)
    req = rpb.ReportCallResultRequest(attempt_id=c.attempt_id, result=D.CallResult(
        disposition=D.CALL_DISPOSITION_WRONG_NUMBER, answered_by=D.ANSWERED_BY_HUMAN, summary="simulated"))
    with stack.internal_channel() as ch:
        internal = rgrpc.ResultsServiceStub(ch)
        with pytest.raises(grpc.RpcError) as err:
            internal.ReportCallResult(req, metadata=rmd)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        out = internal.ReportCallResult(req, metadata=service_md(stack))
        assert not out.duplicate and out.attempt_id == c.attempt_id
        assert internal.ReportCallResult(req, metadata=service_md(stack)).duplicate
        with pytest.raises(grpc.RpcError) as err:
            internal.ReportCallResult(rpb.ReportCallResultRequest(attempt_id="att_nope", result=req.result),
                                      metadata=service_md(stack))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert finish(stack, c, "completed").contact_status == res.CONTACT_STATUS_SUPPRESSED
    # A reporter key sees the same report as already recorded.
    assert report(stack, rmd, c=c, disposition=D.CALL_DISPOSITION_WRONG_NUMBER, answered_by=D.ANSWERED_BY_HUMAN,
                  summary="simulated").duplicate
