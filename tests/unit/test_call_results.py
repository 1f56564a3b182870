"""Pure rules of the results API and the agent connection: bounds, the
effect of each disposition, SIP URI parsing, and the UI's result view."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from batchcalls.v1 import batch_pb2

from admin_ui.view_models.contacts import call_result_view, safe_link
from server.domain.agent_connection import parse_sip_uri
from server.domain.call_results import (
    CallReport,
    ExtractedValue,
    check_report,
    contact_after_result,
)
from server.domain.retry import AttemptVerdict, RetryPolicy

NOW = datetime(2026, 11, 30, 12, tzinfo=timezone.utc)
POLICY = RetryPolicy((300.0, 1800.0))
COMPLETED = AttemptVerdict("completed", "", None)
QUEUED = AttemptVerdict("queued", "", NOW + timedelta(minutes=5))


def effect(disposition, verdict=COMPLETED, attempt=1, max_attempts=3, callback=None):
    return contact_after_result(disposition, callback, verdict, attempt_number=attempt, max_attempts=max_attempts,
                                now=NOW, policy=POLICY)


def test_each_disposition_effect() -> None:
    assert effect("").contact_status == "completed"
    assert effect("completed", QUEUED) == effect("", QUEUED)
    assert effect("transferred").contact_status == "completed"
    vm = effect("voicemail", attempt=1)
    assert (vm.contact_status, vm.next_attempt_at) == ("queued", NOW + timedelta(seconds=300))
    assert (effect("voicemail", attempt=3).contact_status, effect("voicemail", attempt=3).failure_reason) == (
        "failed", "permanently_failed")
    assert effect("opt_out").contact_status == "completed"  # a final call status stays
    assert effect("opt_out", QUEUED).contact_status == "suppressed"
    assert effect("wrong_number").contact_status == "suppressed"
    cb = effect("callback_requested", attempt=3, max_attempts=3, callback=NOW + timedelta(days=1))
    assert (cb.contact_status, cb.next_attempt_at, cb.max_attempts, cb.wait_reason) == (
        "queued", NOW + timedelta(days=1), 4, "callback requested")
    assert effect("callback_requested", callback=NOW - timedelta(hours=1)).next_attempt_at == NOW


def test_report_bounds() -> None:
    ok = CallReport("completed", fields=(ExtractedValue("a", "number", 1.5),))
    assert not check_report(ok, NOW).items
    bad = CallReport("", recording_uri="javascript:x", fields=(ExtractedValue("", "string", "v"),
                                                               ExtractedValue("b", "number", float("inf"))))
    fields = {v.field for v in check_report(bad, NOW).items}
    assert fields == {"result.disposition", "result.recording_uri", "result.extracted_fields[0].name",
                      "result.extracted_fields[1].number_value"}


@pytest.mark.parametrize("text,expected", [
    ("sip:agent@10.0.0.5:5080;transport=tcp", "sip:agent@10.0.0.5:5080;transport=tcp"),
    ("sip:host.example", "sip:host.example:5060;transport=udp"),
    ("sips:a@host.example", "sips:a@host.example:5061;transport=tls"),
    ("sip:[::1]:5062;transport=TLS", "sip:[::1]:5062;transport=tls"),
])
def test_sip_uri_normalized(text, expected) -> None:
    parsed, why = parse_sip_uri(text)
    assert parsed is not None, why
    assert parsed.text == expected


def test_result_view_links_only_http() -> None:
    assert safe_link("https://r.example/a.wav") == "https://r.example/a.wav"
    assert safe_link("javascript:alert(1)") == safe_link("data:text/html,x") == ""
    c = batch_pb2.Contact(result=batch_pb2.CallResult(
        disposition=batch_pb2.CALL_DISPOSITION_OPT_OUT, answered_by=batch_pb2.ANSWERED_BY_HUMAN,
        summary="<b>hi</b>", recording_uri="javascript:alert(1)",
        extracted_fields=[batch_pb2.ExtractedField(name="n", number_value=3)]))
    view = call_result_view(c)
    assert view is not None
    assert (view["disposition"], view["answered_by"], view["recording"]) == ("Opted out", "human", "")
    assert view["fields"] == [{"Field": "n", "Value": "3"}]
    assert call_result_view(batch_pb2.Contact()) is None
