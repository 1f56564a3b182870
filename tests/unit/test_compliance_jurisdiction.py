"""check_dial with jurisdiction=True (issue 16), and CSV consent parsing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from server.domain.calling_window import CallingWindow
from server.domain.compliance import REASON_FREQUENCY_CAP, REASON_OUTSIDE_WINDOW, REASON_SUBJECT_CAP, check_dial
from server.domain.csv_ingest import CsvRejected
from server.domain.csv_ingest.consent import consent_of_rows, parse_consent_at

NY_TZ = ZoneInfo("America/New_York")
FL = "+13055550123"
NY = "+12125550143"


def ny(*a: int) -> datetime:
    return datetime(*a, tzinfo=NY_TZ).astimezone(UTC)


def dial(phone: str, at: datetime, starts=(), cap: int = 0, window=None, law: bool = True):  # type: ignore[no-untyped-def]
    return check_dial(at=at, window=window, zones=("America/New_York",), on_dnc=False, recent_call_starts=list(starts),
                      cap_per_24h=cap, e164=phone, batch_timezone="UTC", jurisdiction=law)


def test_state_hours_defer_to_next_opening_and_verdict_is_kept():
    d = dial(FL, ny(2025, 3, 12, 20, 30))
    assert not d.allowed and d.reason == REASON_OUTSIDE_WINDOW
    assert d.defer_until == ny(2025, 3, 13, 8, 0)
    assert d.verdict is not None and d.verdict.blocked_by == ("US-FL.hours",)
    assert dial(NY, ny(2025, 3, 12, 20, 30)).allowed
    # Without jurisdiction (simulated trunk): today's behaviour, no window = any time.
    assert dial(FL, ny(2025, 3, 12, 23, 0), law=False).allowed


def test_subject_cap_is_the_stricter_of_the_two_caps():
    at = ny(2025, 3, 12, 12, 0)
    three = [at - timedelta(hours=h) for h in (1, 2, 3)]
    d = dial(FL, at, three, cap=0)
    assert not d.allowed and d.reason == REASON_SUBJECT_CAP and d.defer_until == three[-1] + timedelta(hours=24)
    assert dial(FL, at, three, cap=5).reason == REASON_SUBJECT_CAP
    assert dial(FL, at, three[:2], cap=2).reason == REASON_FREQUENCY_CAP
    assert dial(NY, at, three, cap=0).allowed  # no state cap in New York
    assert dial(FL, at, three, cap=0, law=False).allowed


def test_cap_expiry_at_night_waits_for_the_state_window():
    at = ny(2025, 3, 12, 12, 0)
    # The cap clears at 20:30 (after Florida's 20:00 end): next opening 08:00 next day.
    starts = [ny(2025, 3, 11, 20, 30), ny(2025, 3, 12, 9), ny(2025, 3, 12, 10)]
    d = dial(FL, at, starts)
    assert d.defer_until == ny(2025, 3, 13, 8, 0)


def test_batch_window_is_intersected():
    w = CallingWindow.parse("10:00", "12:00", ())
    d = dial(FL, ny(2025, 3, 12, 9, 0), window=w)
    assert d.defer_until == ny(2025, 3, 12, 10, 0)


@pytest.mark.parametrize("value,expected", [
    ("2025-01-31", datetime(2025, 1, 31, tzinfo=UTC)),
    ("2025-01-31T14:05", datetime(2025, 1, 31, 14, 5, tzinfo=UTC)),
    ("2025-01-31T14:05:09Z", datetime(2025, 1, 31, 14, 5, 9, tzinfo=UTC)),
    ("2025-01-31 14:05+02:00", datetime(2025, 1, 31, 12, 5, tzinfo=UTC)),
    ("", "empty"), ("31/01/2025", "ISO 8601"), ("yes", "ISO 8601"), ("2030-01-01", "future"),
])
def test_consent_formats(value, expected):  # type: ignore[no-untyped-def]
    got = parse_consent_at(value, datetime(2026, 1, 1, tzinfo=UTC))
    if isinstance(expected, str):
        assert isinstance(got, str) and expected in got
    else:
        assert got == expected


def test_consent_rows_and_missing_column():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    row = lambda n, v, s="": SimpleNamespace(row_number=n, variables={"Consent_At": v, "consent_source": s})  # noqa: E731
    report = SimpleNamespace(custom_columns=["Consent_At", "consent_source"],
                             contacts=[row(2, "2025-01-01", "web"), row(3, "")])
    kept, missing = consent_of_rows(report, now, required=True)
    assert kept[2].source == "web" and list(missing) == [3]
    assert consent_of_rows(report, now, required=False)[1] == {}
    with pytest.raises(CsvRejected) as err:
        consent_of_rows(SimpleNamespace(custom_columns=["x"], contacts=[]), now, required=True)
    assert err.value.reason == "MISSING_CONSENT_COLUMN"
    assert consent_of_rows(SimpleNamespace(custom_columns=["x"], contacts=[]), now, required=False) == ({}, {})


def test_admin_ui_callability_view():
    from admin_ui import view_models as vm
    from batchcalls.v1 import batch_pb2, compliance_pb2

    c = batch_pb2.Contact()
    assert vm.callability_view(c) is None
    c.callability.CopyFrom(compliance_pb2.Callability(
        allowed=False, region_code="US", state="FL", time_zones=["America/New_York"], reason="US-FL.hours (...)",
        rules=[compliance_pb2.AppliedRule(rule_id="US-FL.hours", description="<b>8–8</b>", source="Fla. Stat.",
                                          blocked=True, verified=True)],
        jurisdiction_rules_applied=True,
    ))
    c.callability.next_allowed_time.FromDatetime(datetime(2025, 3, 13, 12, tzinfo=UTC))
    view = vm.callability_view(c)
    assert view is not None and "US / FL" in view["summary"] and "America/New_York" in view["summary"]
    assert view["rules"] == [{"Rule": "US-FL.hours", "Blocks now": "yes", "Description": "<b>8–8</b>",
                              "Source": "Fla. Stat.", "Checked": "", "Verified": "yes"}]
