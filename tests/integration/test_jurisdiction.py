"""Compliance by jurisdiction (issue 16) through the real server: the
ExplainCallability RPC (table-driven: states, time zones, DST, Sundays,
holidays), the explanation on a waiting contact, the safe default window of
a new organization, the per-subject cap across two batches of one
organization, and consent columns in uploaded CSVs (report, contact,
export). The server runs on a FakeClock with the jurisdiction rules applied
to the simulated trunk (``jurisdiction_on_simulated``), as a real trunk is."""

from __future__ import annotations

import csv
import io
import json
import secrets
import subprocess
from datetime import datetime, timedelta

import grpc
import pytest
from google.protobuf import timestamp_pb2

from batchcalls.v1 import (
    batch_service_pb2 as bpb,
    batch_service_pb2_grpc as bgrpc,
    compliance_service_pb2 as cpb,
    compliance_service_pb2_grpc as cgrpc,
    dialer_service_pb2 as dpb,
    resources_pb2 as res,
)
from server.domain.clock import FakeClock
from tests.integration.test_grpcurl import grpcurl_bin
from tests.support.api import violations
from tests.support.clocked_stack import (
    call_once,
    clocked_stack,
    contacts_by_phone,
    create_batch,
    get_batch,
    get_contact,
    get_org,
    local,
    start_attempt,
    ts_dt,
    update_org,
    utc,
)

FL = "+13055550123"  # Miami: US-FL, 08:00–20:00, 3 calls / 24 h
NY = "+12125550143"  # US federal only
TX = "+12145550123"  # Dallas: 09:00–21:00 Mon–Sat, 12:00–21:00 Sunday
UT = "+18015550123"  # Salt Lake City: no Sunday, no legal holidays
AL = "+12055550123"  # Birmingham: 08:00–20:00, no Sunday, no state holidays
CA_LA = "+13105550199"  # Los Angeles: federal only, Pacific time
UK = "+442079460123"  # no table rows: the window alone


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock(utc(2025, 3, 12, 16))


@pytest.fixture(scope="module")
def cs(embedded, clock):  # type: ignore[no-untyped-def]
    with clocked_stack(embedded, clock, jurisdiction_on_simulated=True) as s:
        yield s


@pytest.fixture()
def anytime(cs):  # type: ignore[no-untyped-def]
    """An organization whose owner chose "call at any time" (law still applies)."""
    return cs.new_org()


def explain(cs, org, phone: str, at: datetime | None = None, batch: str = "", role: str = "owner"):  # type: ignore[no-untyped-def]
    req = cpb.ExplainCallabilityRequest(phone_number=phone, batch=batch)
    if at is not None:
        t = timestamp_pb2.Timestamp()
        t.FromDatetime(at)
        req.time.CopyFrom(t)
    with cs.channel() as ch:
        return cgrpc.ComplianceServiceStub(ch).ExplainCallability(req, metadata=org.md(role)).callability


# (phone, local instant (zone), allowed, blocking rule ids, next allowed (local, same zone) or None=same instant)
CASES = [
    # Florida: 8 pm ends the day; next opening 8 am the next day.
    (FL, (2025, 3, 12, 20, 30, "America/New_York"), False, {"US-FL.hours"}, (2025, 3, 13, 8, 0)),
    (FL, (2025, 3, 12, 19, 59, "America/New_York"), True, set(), None),
    # New York: federal 9 pm.
    (NY, (2025, 3, 12, 20, 30, "America/New_York"), True, set(), None),
    (NY, (2025, 3, 12, 21, 0, "America/New_York"), False, {"US.hours"}, (2025, 3, 13, 8, 0)),
    # Los Angeles: the callee's zone, not the batch's (UTC).
    (CA_LA, (2025, 3, 12, 7, 30, "America/Los_Angeles"), False, {"US.hours"}, (2025, 3, 12, 8, 0)),
    # DST, spring forward (9 March 2025): 07:30 EDT, opening 08:00 EDT = 12:00 UTC.
    (NY, (2025, 3, 9, 7, 30, "America/New_York"), False, {"US.hours"}, (2025, 3, 9, 8, 0)),
    # DST, fall back (2 November 2025): opening 08:00 EST = 13:00 UTC.
    (NY, (2025, 11, 2, 1, 30, "America/New_York"), False, {"US.hours"}, (2025, 11, 2, 8, 0)),
    # Texas, Sunday: noon start; Saturday: 9 am.
    (TX, (2025, 3, 16, 10, 0, "America/Chicago"), False, {"US-TX.sunday"}, (2025, 3, 16, 12, 0)),
    (TX, (2025, 3, 15, 8, 30, "America/Chicago"), False, {"US-TX.hours"}, (2025, 3, 15, 9, 0)),
    # Utah: no Sunday calls at all -> Monday 08:00.
    (UT, (2025, 3, 16, 10, 0, "America/Denver"), False, {"US-UT.sunday"}, (2025, 3, 17, 8, 0)),
    # Utah holiday: Pioneer Day (24 July 2025, Thursday).
    (UT, (2025, 7, 24, 10, 0, "America/Denver"), False, {"US-UT.holiday"}, (2025, 7, 25, 8, 0)),
    # Alabama: Independence Day (Friday), then Saturday 08:00.
    (AL, (2025, 7, 4, 10, 0, "America/Chicago"), False, {"US-AL.holiday"}, (2025, 7, 5, 8, 0)),
    (AL, (2025, 7, 3, 10, 0, "America/Chicago"), True, set(), None),
    # No table rows for the UK; the "any time" organization has no window.
    (UK, (2025, 3, 12, 3, 0, "Europe/London"), True, set(), None),
]


@pytest.mark.parametrize("phone,when,allowed,blocked,nxt", CASES, ids=[f"{c[0]}@{c[1]}" for c in CASES])
def test_explain_table(cs, anytime, phone, when, allowed, blocked, nxt):  # type: ignore[no-untyped-def]
    *parts, zone = when
    at = local(*parts, zone=zone)
    k = explain(cs, anytime, phone, at, role="member")
    assert k.allowed is allowed, k.reason
    assert {r.rule_id for r in k.rules if r.blocked} == blocked
    assert k.jurisdiction_rules_applied and k.table_version
    expected_next = at if nxt is None else local(*nxt, zone=zone)
    assert ts_dt(k.next_allowed_time) == expected_next
    for r in k.rules:
        assert r.source and r.rule_id and r.jurisdiction
    if phone != UK:
        assert k.region_code == "US" and "US.hours" in {r.rule_id for r in k.rules}


def test_explain_defaults_errors_and_batch_scope(cs, anytime, clock):  # type: ignore[no-untyped-def]
    clock.set(local(2025, 3, 12, 22, 0, "America/New_York"))
    k = explain(cs, anytime, FL)  # time unset = the server's now
    assert ts_dt(k.time) == clock.now() and not k.allowed
    assert k.state == "FL" and list(k.time_zones) == ["America/New_York"]
    assert {"US-FL.hours", "US-FL.cap"} <= {r.rule_id for r in k.rules}
    with pytest.raises(grpc.RpcError) as err:
        explain(cs, anytime, "not a number")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "phone_number" in violations(err.value)
    # A batch of another organization is not found; its own batch's window counts.
    other = cs.new_org()
    b = create_batch(cs, other, [NY], window=("09:00", "17:00", [1, 2, 3, 4, 5])).batch
    with pytest.raises(grpc.RpcError) as err:
        explain(cs, anytime, NY, batch=f"batches/{b.batch_id}")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    k = explain(cs, other, NY, local(2025, 3, 12, 18, 0, "America/New_York"), batch=f"batches/{b.batch_id}")
    assert not k.allowed and {r.rule_id for r in k.rules if r.blocked} == {"batch.window"}
    assert ts_dt(k.next_allowed_time) == local(2025, 3, 13, 9, 0, "America/New_York")


def test_explain_through_the_grpcurl_binary(cs, anytime):  # type: ignore[no-untyped-def]
    body = json.dumps({"phoneNumber": TX, "time": "2025-03-16T15:00:00Z"})  # Sunday 10:00 CDT
    out = subprocess.run(
        [grpcurl_bin(), "-plaintext", "-H", f"authorization: Bearer {anytime.member_key}", "-d", body,
         cs.grpc_address, "batchcalls.v1.ComplianceService/ExplainCallability"],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    k = json.loads(out.stdout)["callability"]
    # grpcurl prints proto field names (next_allowed_time) or JSON names (nextAllowedTime).
    def get(d, name):  # type: ignore[no-untyped-def]
        camel = name.split("_")[0] + "".join(w.title() for w in name.split("_")[1:])
        return d.get(name, d.get(camel))
    assert not get(k, "allowed")
    assert get(k, "next_allowed_time") == "2025-03-16T17:00:00Z"
    assert k["state"] == "TX"
    assert any(get(r, "rule_id") == "US-TX.sunday" and r.get("blocked") for r in k["rules"])


def test_new_org_defaults_to_0800_2100_callee_local(cs, clock):  # type: ignore[no-untyped-def]
    org = cs.new_org(calling_any_time=False)
    o = get_org(cs, org)
    assert not o.calling_any_time and not o.require_consent
    assert (o.default_calling_window.start_local_time, o.default_calling_window.end_local_time) == ("08:00", "21:00")
    clock.set(local(2025, 3, 12, 3, 0, "Europe/London"))  # 03:00 in London: allowed by no law, but by no window either
    b = create_batch(cs, org, [UK], mode=res.CALLING_WINDOW_MODE_UNSPECIFIED).batch
    assert b.calling_window.start_local_time == "08:00"
    c = contacts_by_phone(cs, org, b.batch_id)[UK]
    resp, _ = start_attempt(cs, org, b.batch_id, c.contact_id)
    assert resp.decision == dpb.START_ATTEMPT_DECISION_DEFERRED
    assert ts_dt(resp.next_attempt_time) == local(2025, 3, 12, 8, 0, "Europe/London")
    # The explicit "any time" choice, named as such, clears the window.
    o = update_org(cs, org, calling_any_time=True)
    assert o.calling_any_time and not o.HasField("default_calling_window")
    with pytest.raises(grpc.RpcError) as err:
        update_org(cs, org, calling_any_time=True, default_calling_window=("09:00", "17:00", []))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_waiting_contact_shows_why_and_any_time_still_obeys_the_law(cs, anytime, clock):  # type: ignore[no-untyped-def]
    clock.set(local(2025, 3, 12, 20, 30, "America/New_York"))
    b = create_batch(cs, anytime, [FL, NY], mode=res.CALLING_WINDOW_MODE_NONE).batch
    cs_ = contacts_by_phone(cs, anytime, b.batch_id)
    assert call_once(cs, anytime, b.batch_id, cs_[NY].contact_id).decision == dpb.START_ATTEMPT_DECISION_GRANTED
    resp, _ = start_attempt(cs, anytime, b.batch_id, cs_[FL].contact_id)
    assert resp.decision == dpb.START_ATTEMPT_DECISION_DEFERRED
    opening = local(2025, 3, 13, 8, 0, "America/New_York")
    assert ts_dt(resp.next_attempt_time) == opening
    c = get_contact(cs, anytime, cs_[FL])
    assert c.attempts == 0 and c.status == res.CONTACT_STATUS_QUEUED
    assert c.HasField("callability") and not c.callability.allowed
    assert ts_dt(c.callability.next_allowed_time) == opening
    assert [r.rule_id for r in c.callability.rules if r.blocked] == ["US-FL.hours"]
    assert not get_contact(cs, anytime, cs_[NY]).HasField("callability")


def test_subject_cap_three_calls_per_24h_across_two_batches(cs, anytime, clock):  # type: ignore[no-untyped-def]
    start = local(2025, 3, 12, 9, 0, "America/New_York")
    clock.set(start)
    b1 = create_batch(cs, anytime, [FL, NY], max_attempts=5).batch
    b2 = create_batch(cs, anytime, [FL, NY], max_attempts=5).batch
    c1, c2 = contacts_by_phone(cs, anytime, b1.batch_id), contacts_by_phone(cs, anytime, b2.batch_id)
    order = [(b1, c1), (b2, c2), (b1, c1)]
    for i, (b, c) in enumerate(order):
        clock.set(start + timedelta(hours=i))
        assert call_once(cs, anytime, b.batch_id, c[FL].contact_id, "no_answer").decision == \
            dpb.START_ATTEMPT_DECISION_GRANTED
    clock.set(start + timedelta(hours=3, minutes=30))
    resp, _ = start_attempt(cs, anytime, b2.batch_id, c2[FL].contact_id)
    assert resp.decision == dpb.START_ATTEMPT_DECISION_DEFERRED
    assert "per-subject cap" in resp.reason
    # 24 h after the first call, 09:00 next day, inside Florida's hours.
    assert ts_dt(resp.next_attempt_time) == start + timedelta(hours=24)
    # New York has no per-subject cap (and the organization no frequency cap).
    for i, (b, c) in enumerate(order + [(b2, c2)]):
        clock.set(start + timedelta(hours=4 + i))
        assert call_once(cs, anytime, b.batch_id, c[NY].contact_id, "no_answer").decision == \
            dpb.START_ATTEMPT_DECISION_GRANTED, i


def _upload(cs, org, csv_text: str):  # type: ignore[no-untyped-def]
    req = bpb.CreateBatchRequest(
        request_id=secrets.token_hex(8), display_name="consent", agent=org.agent_name,
        from_phone_number=org.phone_number_name, csv_content=csv_text.encode(), filename="c.csv",
        timezone="UTC", max_attempts=1, calling_window_mode=res.CALLING_WINDOW_MODE_NONE,
    )
    with cs.channel() as ch:
        return bgrpc.BatchServiceStub(ch).CreateBatch(req, metadata=org.md())


def test_consent_required_rejects_suppresses_and_keeps(cs, clock):  # type: ignore[no-untyped-def]
    clock.set(local(2025, 3, 12, 12, 0, "America/New_York"))
    org = cs.new_org()
    assert update_org(cs, org, require_consent=True).require_consent
    with pytest.raises(grpc.RpcError) as err:
        _upload(cs, org, f"phone,name\n{NY},A\n")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "consent_at" in err.value.details()
    text = (
        "phone,name,consent_at,consent_source\n"
        f"{NY},Ok,2024-05-01T10:00:00-04:00,web form\n"  # row 2
        f"{FL},Empty,,\n"  # row 3
        f"{TX},Garbled,yesterday,\n"  # row 4
        f"{UT},Future,2031-01-01,\n"  # row 5
        f"{AL},Date only,2024-06-30,paper\n"  # row 6
    )
    resp = _upload(cs, org, text)
    sup = {r.row_number: r.reason for r in resp.report.suppressed_rows}
    assert set(sup) == {3, 4, 5}
    assert "empty" in sup[3] and "ISO 8601" in sup[4] and "future" in sup[5]
    assert resp.report.suppressed_count == 3
    contacts = contacts_by_phone(cs, org, resp.batch.batch_id)
    ok = get_contact(cs, org, contacts[NY])
    assert ts_dt(ok.consent_time) == utc(2024, 5, 1, 14) and ok.consent_source == "web form"
    assert ts_dt(get_contact(cs, org, contacts[AL]).consent_time) == utc(2024, 6, 30, 0)
    assert contacts[FL].status == res.CONTACT_STATUS_SUPPRESSED and "no consent" in contacts[FL].failure_reason
    for phone in (NY, AL):  # one call each completes the batch (exportable)
        assert call_once(cs, org, resp.batch.batch_id, contacts[phone].contact_id).decision == \
            dpb.START_ATTEMPT_DECISION_GRANTED
    assert get_batch(cs, org, resp.batch.batch_id).status == res.BATCH_STATUS_COMPLETED
    with cs.channel() as ch:
        stub = bgrpc.BatchServiceStub(ch)
        data = b"".join(m.chunk for m in stub.ExportBatch(
            bpb.ExportBatchRequest(name=f"batches/{resp.batch.batch_id}"), metadata=org.md()))
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    by_phone = {r["phone"]: r for r in rows}
    assert by_phone[NY]["consent_at"] == "2024-05-01T14:00:00Z" and by_phone[NY]["consent_source"] == "web form"
    assert by_phone[AL]["consent_at"] == "2024-06-30T00:00:00Z"
