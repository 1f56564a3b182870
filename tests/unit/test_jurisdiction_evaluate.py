"""Issue 16: evaluation of federal + state + batch windows per callee (pure core).

Each case names the rule it exercises; breaking that rule in
``server/domain/jurisdiction/rules.py`` turns the case red.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from server.domain.calling_window import CallingWindow
from server.domain.jurisdiction import (
    BATCH_WINDOW_RULE_ID,
    CURRENT,
    DEFAULT_ORGANIZATION_WINDOW,
    JurisdictionRule,
    RuleKind,
    RuleTable,
    evaluate,
    subject_cap,
)
from server.domain.jurisdiction.rules import TABLE_VERSION

NY = ZoneInfo("America/New_York")
CHI = ZoneInfo("America/Chicago")
LA = ZoneInfo("America/Los_Angeles")
BOISE = ZoneInfo("America/Boise")

# Sample numbers (area code → presumed state).
FL = "+13055550123"  # Miami, America/New_York
OK = "+14055550123"
MD = "+14105550123"
WA = "+12065550123"  # America/Los_Angeles
TX = "+12145550123"  # Dallas, America/Chicago
CT = "+12035550123"
KY = "+15025550123"  # Louisville, America/New_York
MI = "+13135550123"  # Detroit
MN = "+16125550123"
NM = "+15055550123"  # America/Denver
NV2 = "+17755550123"  # NV, spans America/Boise and America/Los_Angeles
MA = "+16175550123"
MS = "+16015550123"
AL = "+12055550123"
LA_ = "+15045550123"  # Louisiana (New Orleans)
RI = "+14015550123"
UT = "+18015550123"
PA = "+12155550123"
NYC = "+12125550123"  # New York: federal only
CA_STATE = "+13105550123"  # California: federal only
TOLL_FREE = "+18005550123"
TORONTO = "+14165550123"
JAMAICA = "+18765550123"
LONDON = "+442079460123"


def at(zone: ZoneInfo, y, m, d, hh, mm=0, ss=0, fold=0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, tzinfo=zone, fold=fold)


def ev(number, when, window=None, tz="America/New_York", table=CURRENT):
    return evaluate(number, when, window, tz, table=table)


# 2026-12-01 is a Tuesday; 2026-12-05 Saturday; 2026-12-06 Sunday.
CASES = [
    # (id, number, local zone, local datetime parts, allowed, blocking rule)
    ("federal-open", NYC, NY, (2026, 12, 1, 8, 0), True, None),
    ("federal-early", NYC, NY, (2026, 12, 1, 7, 59, 59), False, "US.hours"),
    ("federal-late", NYC, NY, (2026, 12, 1, 21, 0), False, "US.hours"),
    ("federal-20:30-ok", CA_STATE, LA, (2026, 12, 1, 20, 30), True, None),
    ("FL-20:00-closed", FL, NY, (2026, 12, 1, 20, 0), False, "US-FL.hours"),
    ("FL-19:59-open", FL, NY, (2026, 12, 1, 19, 59), True, None),
    ("OK-20:30-closed", OK, CHI, (2026, 12, 1, 20, 30), False, "US-OK.hours"),
    ("MD-20:30-closed", MD, NY, (2026, 12, 1, 20, 30), False, "US-MD.hours"),
    ("WA-20:30-closed", WA, LA, (2026, 12, 1, 20, 30), False, "US-WA.hours"),
    ("MA-20:30-closed", MA, NY, (2026, 12, 1, 20, 30), False, "US-MA.hours"),
    ("TX-weekday-08:30-closed", TX, CHI, (2026, 12, 1, 8, 30), False, "US-TX.hours"),
    ("TX-saturday-09:00-open", TX, CHI, (2026, 12, 5, 9, 0), True, None),
    ("TX-sunday-11:59-closed", TX, CHI, (2026, 12, 6, 11, 59), False, "US-TX.sunday"),
    ("TX-sunday-12:00-open", TX, CHI, (2026, 12, 6, 12, 0), True, None),
    ("CT-08:30-closed", CT, NY, (2026, 12, 1, 8, 30), False, "US-CT.hours"),
    ("CT-20:30-closed", CT, NY, (2026, 12, 1, 20, 30), False, "US-CT.hours"),
    ("KY-09:30-closed", KY, NY, (2026, 12, 1, 9, 30), False, "US-KY.hours"),
    ("KY-10:00-open", KY, NY, (2026, 12, 1, 10, 0), True, None),
    ("MI-08:30-closed", MI, NY, (2026, 12, 1, 8, 30), False, "US-MI.hours"),
    ("MN-08:30-closed", MN, CHI, (2026, 12, 1, 8, 30), False, "US-MN.hours"),
    ("NM-08:30-closed", NM, ZoneInfo("America/Denver"), (2026, 12, 1, 8, 30), False, "US-NM.hours"),
    ("MS-sunday-closed", MS, CHI, (2026, 12, 6, 12, 0), False, "US-MS.sunday"),
    ("MS-20:15-closed", MS, CHI, (2026, 12, 1, 20, 15), False, "US-MS.hours"),
    ("AL-sunday-closed", AL, CHI, (2026, 12, 6, 12, 0), False, "US-AL.sunday"),
    ("AL-20:15-closed", AL, CHI, (2026, 12, 1, 20, 15), False, "US-AL.hours"),
    ("LA-sunday-closed", LA_, CHI, (2026, 12, 6, 12, 0), False, "US-LA.sunday"),
    ("LA-20:15-closed", LA_, CHI, (2026, 12, 1, 20, 15), False, "US-LA.hours"),
    ("RI-weekday-18:30-closed", RI, NY, (2026, 12, 1, 18, 30), False, "US-RI.weekdays"),
    ("RI-saturday-09:30-closed", RI, NY, (2026, 12, 5, 9, 30), False, "US-RI.saturday"),
    ("RI-sunday-closed", RI, NY, (2026, 12, 6, 12, 0), False, "US-RI.sunday"),
    ("UT-sunday-closed", UT, ZoneInfo("America/Denver"), (2026, 12, 6, 12, 0), False, "US-UT.sunday"),
    ("UT-weekday-20:30-open", UT, ZoneInfo("America/Denver"), (2026, 12, 1, 20, 30), True, None),
    ("PA-sunday-closed", PA, NY, (2026, 12, 6, 12, 0), False, "US-PA.sunday"),
    # Holidays (dates from the holidays package for the state).
    ("AL-christmas-closed", AL, CHI, (2026, 12, 25, 12, 0), False, "US-AL.holiday"),
    ("LA-christmas-closed", LA_, CHI, (2026, 12, 25, 12, 0), False, "US-LA.holiday"),
    ("RI-victory-day-closed", RI, NY, (2026, 8, 10, 12, 0), False, "US-RI.holiday"),  # 2nd Mon of Aug
    ("UT-pioneer-day-closed", UT, ZoneInfo("America/Denver"), (2026, 7, 24, 12, 0), False, "US-UT.holiday"),
    ("PA-friday-before-flag-day-open", PA, NY, (2025, 6, 13, 12, 0), True, None),  # Flag Day: see docs gap
    ("PA-july-4-closed", PA, NY, (2025, 7, 4, 12, 0), False, "US-PA.holiday"),
    ("UT-observed-july-4-closed", UT, ZoneInfo("America/Denver"), (2026, 7, 3, 12, 0), False, "US-UT.holiday"),
    ("NY-christmas-open", NYC, NY, (2026, 12, 25, 12, 0), True, None),  # no NY holiday ban
    ("FL-christmas-open", FL, NY, (2026, 12, 25, 12, 0), True, None),
    # Non-US: no window of ours, no table rule → open at any hour.
    ("toronto-3am-open", TORONTO, ZoneInfo("America/Toronto"), (2026, 12, 1, 3, 0), True, None),
    ("jamaica-3am-open", JAMAICA, ZoneInfo("America/Jamaica"), (2026, 12, 1, 3, 0), True, None),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_table_driven(case):
    _, number, zone, parts, allowed, blocker = case
    v = ev(number, at(zone, *parts))
    assert v.allowed is allowed, v.reason
    if blocker is None:
        assert v.blocked_by == ()
    else:
        assert blocker in v.blocked_by, (v.blocked_by, v.reason)
    assert_next_allowed_correct(v, number)


def assert_next_allowed_correct(v, number, window=None, tz="America/New_York", table=CURRENT):
    """next_allowed is the query instant, or allowed while one second earlier is not."""
    if v.allowed:
        assert v.next_allowed == v.at
        return
    assert v.next_allowed is not None and v.next_allowed > v.at
    assert evaluate(number, v.next_allowed, window, tz, table=table).allowed
    before = v.next_allowed - timedelta(seconds=1)
    assert not evaluate(number, before, window, tz, table=table).allowed


def test_region_and_rules_reported_with_sources():
    v = ev(FL, at(NY, 2026, 12, 1, 20, 30))
    assert (v.country, v.state, v.zones) == ("US", "FL", ("America/New_York",))
    ids = [r.rule_id for r in v.rules]
    assert ids[:3] == ["US.hours", "US-FL.hours", "US-FL.cap"]
    assert all(r.source for r in v.rules)
    assert v.table_version == TABLE_VERSION
    assert v.blocked_by == ("US-FL.hours",)
    assert "America/New_York" in v.reason and "20:30" in v.reason
    assert v.next_allowed == at(NY, 2026, 12, 2, 8, 0)
    d = v.to_dict()
    assert d["state"] == "FL" and d["rules"][0]["rule_id"] == "US.hours"


def test_texas_saturday_night_to_sunday_noon():
    v = ev(TX, at(CHI, 2026, 12, 5, 21, 30))
    assert not v.allowed
    assert v.next_allowed == at(CHI, 2026, 12, 6, 12, 0)
    assert_next_allowed_correct(v, TX)


def test_sunday_ban_state_saturday_night_waits_until_monday():
    v = ev(MS, at(CHI, 2026, 12, 5, 20, 30))
    assert v.next_allowed == at(CHI, 2026, 12, 7, 8, 0)
    assert_next_allowed_correct(v, MS)


def test_holiday_then_sunday_skipped():
    # Alabama, Christmas 2026 is a Friday; Saturday open (08:00); Sunday banned.
    v = ev(AL, at(CHI, 2026, 12, 24, 20, 30))
    assert v.next_allowed == at(CHI, 2026, 12, 26, 8, 0)
    v = ev(AL, at(CHI, 2026, 12, 26, 20, 30))
    assert v.next_allowed == at(CHI, 2026, 12, 28, 8, 0)


def test_two_zone_area_code_strictest_in_both():
    # 775 (Nevada) rings in Boise (Mountain) and Los Angeles (Pacific); NV 09:00–21:00.
    v = ev(NV2, at(LA, 2026, 12, 1, 8, 30))
    assert set(v.zones) == {"America/Boise", "America/Los_Angeles"}
    assert not v.allowed and "US-NV.hours" in v.blocked_by
    assert v.next_allowed == at(LA, 2026, 12, 1, 9, 0)  # 10:00 in Boise
    assert_next_allowed_correct(v, NV2)
    # 20:00 Pacific is 21:00 Mountain: closed by Boise's clock.
    v = ev(NV2, at(LA, 2026, 12, 1, 20, 0))
    assert not v.allowed
    assert "America/Boise" in v.reason
    assert ev(NV2, at(LA, 2026, 12, 1, 19, 59)).allowed


def test_batch_window_narrower_than_state_wins():
    window = CallingWindow(time(10, 0), time(17, 0))
    v = ev(FL, at(NY, 2026, 12, 1, 9, 0), window)
    assert not v.allowed and v.blocked_by == (BATCH_WINDOW_RULE_ID,)
    assert v.next_allowed == at(NY, 2026, 12, 1, 10, 0)
    assert any(r.rule_id == BATCH_WINDOW_RULE_ID for r in v.rules)


def test_batch_window_wider_than_state_is_cut_by_state():
    window = CallingWindow.parse("06:00", "24:00")
    v = ev(FL, at(NY, 2026, 12, 1, 20, 30), window)
    assert not v.allowed and v.blocked_by == ("US-FL.hours",)
    v = ev(FL, at(NY, 2026, 12, 1, 7, 0), window)
    assert v.blocked_by == ("US.hours", "US-FL.hours")  # both start at 08:00
    assert_next_allowed_correct(v, FL, window)


def test_batch_weekdays_and_state_sunday_combine():
    weekdays_only = CallingWindow(time(9), time(17), frozenset({1, 2, 3, 4, 5}))
    v = ev(TX, at(CHI, 2026, 12, 5, 10, 0), weekdays_only)
    assert v.blocked_by == (BATCH_WINDOW_RULE_ID,)
    assert v.next_allowed == at(CHI, 2026, 12, 7, 9, 0)


@pytest.mark.parametrize(
    "local, expected_next",
    [
        # Spring forward 2026-03-08 02:00 → 03:00 America/New_York; FL opens 08:00 EDT.
        ((2026, 3, 8, 1, 30), (2026, 3, 8, 8, 0)),
        # Fall back 2026-11-01 02:00 → 01:00; 07:30 EST → 08:00 EST.
        ((2026, 11, 1, 7, 30), (2026, 11, 1, 8, 0)),
        # Evening before the change.
        ((2026, 10, 31, 20, 30), (2026, 11, 1, 8, 0)),
    ],
)
def test_dst_transitions_florida(local, expected_next):
    v = ev(FL, at(NY, *local))
    assert not v.allowed
    assert v.next_allowed == at(NY, *expected_next)
    assert_next_allowed_correct(v, FL)


def test_dst_batch_window_starting_in_skipped_hour_opens_after_jump():
    # Batch 02:30–23:00 in New York on spring-forward day; federal 08:00 still binds for US,
    # so use a Canadian number (no table rule) to see the skipped-hour behaviour.
    window = CallingWindow(time(2, 30), time(23, 0))
    toronto = TORONTO
    v = evaluate(toronto, at(ZoneInfo("America/Toronto"), 2026, 3, 8, 1, 0), window, "America/Toronto")
    assert v.next_allowed == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)  # 03:00 EDT
    assert_next_allowed_correct(v, toronto, window, "America/Toronto")


def test_fall_back_repeated_hour_open_in_both_passes():
    window = CallingWindow(time(0, 30), time(23, 0))
    z = ZoneInfo("America/Toronto")
    first = evaluate(TORONTO, at(z, 2026, 11, 1, 1, 15, fold=0), window, "America/Toronto")
    second = evaluate(TORONTO, at(z, 2026, 11, 1, 1, 15, fold=1), window, "America/Toronto")
    assert first.allowed and second.allowed


def test_toll_free_federal_only_in_batch_zone():
    v = ev(TOLL_FREE, at(CHI, 2026, 12, 1, 20, 30), tz="America/Chicago")
    assert (v.country, v.state) == ("US", "")
    assert v.zones == ("America/Chicago",) and v.zones_fallback
    assert v.allowed
    assert [r.rule_id for r in v.rules] == ["US.hours"]
    v = ev(TOLL_FREE, at(CHI, 2026, 12, 1, 21, 0), tz="America/Chicago")
    assert v.blocked_by == ("US.hours",)


def test_non_us_numbers_keep_todays_behaviour():
    window = CallingWindow(time(9), time(18))
    v = ev(TORONTO, at(ZoneInfo("America/Toronto"), 2026, 12, 1, 20, 0), window)
    assert (v.country, v.state) == ("CA", "")
    assert v.blocked_by == (BATCH_WINDOW_RULE_ID,)
    assert [r.rule_id for r in v.rules] == [BATCH_WINDOW_RULE_ID]
    v = ev(JAMAICA, at(ZoneInfo("America/Jamaica"), 2026, 12, 1, 20, 0), window)
    assert v.country == "JM" and not v.allowed


def test_country_rule_from_table_applies_to_non_us():
    gb = JurisdictionRule(
        "GB.hours", "GB", RuleKind.HOURS, "test", CURRENT.rules[0].checked, False,
        start=time(9), end=time(20),
    )
    table = RuleTable("test", CURRENT.rules + (gb,))
    z = ZoneInfo("Europe/London")
    v = ev(LONDON, at(z, 2026, 12, 1, 8, 30), table=table)
    assert v.country == "GB" and v.blocked_by == ("GB.hours",)
    assert v.next_allowed == at(z, 2026, 12, 1, 9, 0)


def test_no_opening_within_horizon():
    never = CallingWindow(time(9), time(17), frozenset({7}))  # Sundays only...
    v = ev(MS, at(CHI, 2026, 12, 1, 10, 0), never)  # ...in a Sunday-ban state
    assert not v.allowed and v.next_allowed is None
    assert "no opening within 14 days" in v.reason


def test_subject_cap():
    assert subject_cap(FL) == 3 and subject_cap(OK) == 3 and subject_cap(MD) == 3
    assert subject_cap(NYC) is None and subject_cap(TX) is None
    assert subject_cap(TORONTO) is None and subject_cap(TOLL_FREE) is None


def test_default_organization_window():
    assert DEFAULT_ORGANIZATION_WINDOW == CallingWindow(time(8), time(21))
    # Non-US number with the default window: 08:00–21:00 in its own zone.
    v = ev(TORONTO, at(ZoneInfo("America/Toronto"), 2026, 12, 1, 21, 0), DEFAULT_ORGANIZATION_WINDOW)
    assert not v.allowed


def test_naive_instant_rejected():
    with pytest.raises(ValueError):
        evaluate(FL, datetime(2026, 12, 1, 12, 0), None, "America/New_York")


def test_every_table_row_has_source_and_date():
    for r in CURRENT.rules:
        assert r.source and r.checked and isinstance(r.verified, bool), r.rule_id
        assert r.jurisdiction.split("-")[0] == "US"
