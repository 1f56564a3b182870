"""Pure helpers of the admin UI: colors, offered actions, formatting, checklist."""

from __future__ import annotations

import datetime as dt

import pytest

from admin_ui import view_models as vm
from batchcalls.v1 import batch_pb2, resources_pb2

BS = resources_pb2.BatchStatus
CS = resources_pb2.ContactStatus


@pytest.mark.parametrize(
    ("status", "label", "color"),
    [
        (BS.BATCH_STATUS_PENDING, "Pending", "gray"),
        (BS.BATCH_STATUS_SCHEDULED, "Scheduled", "purple"),
        (BS.BATCH_STATUS_RUNNING, "Running", "blue"),
        (BS.BATCH_STATUS_PAUSED, "Paused", "amber"),
        (BS.BATCH_STATUS_COMPLETED, "Completed", "green"),
        (BS.BATCH_STATUS_FAILED, "Failed", "red"),
        (BS.BATCH_STATUS_CANCELLED, "Cancelled", "gray"),
    ],
)
def test_batch_status_label_and_color(status, label, color):
    assert vm.batch_status_label(status) == label
    assert vm.batch_status_color(status) == color
    badge = vm.batch_status_badge(status)
    assert label in badge and vm.COLOR_HEX[color] in badge


@pytest.mark.parametrize(
    ("status", "label", "color"),
    [
        (CS.CONTACT_STATUS_PENDING, "Pending", "gray"),
        (CS.CONTACT_STATUS_QUEUED, "Queued", "purple"),
        (CS.CONTACT_STATUS_DIALING, "Dialing", "blue"),
        (CS.CONTACT_STATUS_CONNECTED, "Connected", "cyan"),
        (CS.CONTACT_STATUS_COMPLETED, "Completed", "green"),
        (CS.CONTACT_STATUS_FAILED, "Failed", "red"),
        (CS.CONTACT_STATUS_BUSY, "Busy", "yellow"),
        (CS.CONTACT_STATUS_NO_ANSWER, "No Answer", "orange"),
        (CS.CONTACT_STATUS_TIMEOUT, "Timeout", "orange"),
        (CS.CONTACT_STATUS_INVALID_NUMBER, "Invalid Number", "red"),
        (CS.CONTACT_STATUS_BLOCKED, "Blocked", "red"),
        (CS.CONTACT_STATUS_CARRIER_ERROR, "Carrier Error", "amber"),
        (CS.CONTACT_STATUS_CANCELLED, "Cancelled", "gray"),
        (CS.CONTACT_STATUS_SUPPRESSED, "Suppressed", "gray"),
    ],
)
def test_contact_status_label_and_color(status, label, color):
    assert vm.contact_status_label(status) == label
    assert vm.contact_status_color(status) == color
    assert vm.contact_status_from_label(label) == status


def test_every_enum_value_has_a_label():
    for value in BS.values():
        assert value in vm.BATCH_STATUS_INFO
    for value in CS.values():
        assert value in vm.CONTACT_STATUS_INFO


BA = batch_pb2.BatchAction


def test_offered_actions_are_the_servers_allowed_actions_in_order():
    # The UI keeps no matrix: it offers what the Batch message says.
    batch = batch_pb2.Batch(
        status=BS.BATCH_STATUS_RUNNING,
        allowed_actions=[BA.BATCH_ACTION_VIEW, BA.BATCH_ACTION_PAUSE, BA.BATCH_ACTION_CANCEL],
    )
    assert vm.allowed_actions(batch) == ("view", "pause", "cancel")
    assert vm.action_allowed(batch, "pause") and not vm.action_allowed(batch, "export")


def test_offered_actions_do_not_depend_on_the_status():
    # A status the UI would once have refused to export is exportable when the
    # server says so, and nothing is offered when the server allows nothing.
    exportable = batch_pb2.Batch(status=BS.BATCH_STATUS_CANCELLED, allowed_actions=[BA.BATCH_ACTION_EXPORT])
    assert vm.allowed_actions(exportable) == ("export",)
    assert vm.allowed_actions(batch_pb2.Batch(status=BS.BATCH_STATUS_COMPLETED)) == ()


def test_every_api_action_has_a_name_label_and_icon():
    api_actions = [v for v in BA.values() if v != BA.BATCH_ACTION_UNSPECIFIED]
    assert sorted(vm.ACTION_OF_API) == sorted(api_actions)
    for action in vm.ALL_ACTIONS:
        assert vm.ACTION_LABELS[action] and vm.ACTION_ICONS[action]
    everything = batch_pb2.Batch(allowed_actions=[BA.BATCH_ACTION_UNSPECIFIED, *api_actions])
    assert vm.allowed_actions(everything) == vm.ALL_ACTIONS


def test_cancel_confirmation_says_it_cannot_be_undone():
    assert "This action cannot be undone" in vm.action_confirm_text("cancel", "Jan reminders")
    assert "Jan reminders" in vm.action_confirm_text("pause", "Jan reminders")


def test_roles():
    assert vm.can_write(resources_pb2.ROLE_OWNER) and vm.can_write(resources_pb2.ROLE_ADMIN)
    assert not vm.can_write(resources_pb2.ROLE_MEMBER)
    assert not vm.can_write(resources_pb2.ROLE_UNSPECIFIED)
    assert vm.is_owner(resources_pb2.ROLE_OWNER) and not vm.is_owner(resources_pb2.ROLE_ADMIN)
    assert vm.MEMBER_READ_ONLY_REASON == "Members can view batches; owners and admins can create and manage them"


@pytest.mark.parametrize(
    ("micros", "text"),
    [(0, "$0.00"), (1_230_000, "$1.23"), (12_345_678_900, "$12,345.68"), (500, "$0.0005"), (-2_000_000, "-$2.00")],
)
def test_format_money(micros, text):
    assert vm.format_money(micros) == text


@pytest.mark.parametrize(("text", "micros"), [("25", 25_000_000), ("$12.50", 12_500_000), ("0.000001", 1)])
def test_parse_money(text, micros):
    assert vm.parse_money_to_micros(text) == micros


@pytest.mark.parametrize("text", ["", "abc", "1.2345678", "-3"])
def test_parse_money_rejects(text):
    with pytest.raises(ValueError):
        vm.parse_money_to_micros(text)


def test_cost_estimate_text():
    est = batch_pb2.CostEstimate(contacts=100, assumed_minutes_per_call=3, rate_micros_per_minute=73_000,
                                 estimated_cost_micros=21_900_000)
    assert vm.cost_estimate_text(est) == "100 contacts × 3 min × $0.07/min ≈ $21.90"


def test_timestamps_and_durations():
    b = batch_pb2.Batch()
    assert vm.ts_to_dt(b, "create_time") is None
    assert vm.format_ts(b, "create_time") == "—"
    b.create_time.FromDatetime(dt.datetime(2024, 1, 15, 10, 30))
    assert vm.format_ts(b, "create_time") == "Jan 15, 2024 10:30 AM UTC"
    assert vm.format_ts(b, "create_time", tz="America/New_York") == "Jan 15, 2024 5:30 AM America/New_York"
    assert vm.format_duration(0) == "—"
    assert vm.format_duration(42.4) == "42s"
    assert vm.format_duration(125) == "2m 05s"
    assert vm.format_duration(3725) == "1h 02m 05s"


def test_schedule_helpers():
    assert vm.scheduled_local_time(dt.date(2024, 1, 20), dt.time(14, 0)) == "2024-01-20T14:00:00"
    now = dt.datetime(2024, 1, 20, 12, 0, tzinfo=dt.timezone.utc)
    assert vm.schedule_is_future(dt.date(2024, 1, 20), dt.time(13, 0), "UTC", now)
    # 08:00 in New York is 13:00 UTC: in the future; 06:00 NY is 11:00 UTC: past.
    assert vm.schedule_is_future(dt.date(2024, 1, 20), dt.time(8, 0), "America/New_York", now)
    assert not vm.schedule_is_future(dt.date(2024, 1, 20), dt.time(6, 0), "America/New_York", now)
    tzs = vm.timezone_options()
    assert tzs[0] == "UTC" and "America/New_York" in tzs and "Europe/London" in tzs


def test_hhmm_and_weekdays():
    assert vm.hhmm("9:00") == "09:00"
    assert vm.hhmm("24:00") == "24:00"
    assert vm.hhmm("25:00") is None and vm.hhmm("ab") is None
    assert vm.weekday_numbers(["Mon", "Fri", "Sun"]) == [1, 5, 7]
    assert vm.weekday_names([7, 1]) == ["Mon", "Sun"]
    w = resources_pb2.CallingWindow(start_local_time="09:00", end_local_time="18:00", weekdays=[1, 2])
    assert vm.calling_window_text(w) == "09:00–18:00 callee's local time, Mon, Tue"
    assert vm.calling_window_text(None) == "Any time"


def _report(valid=3, invalid=1):
    r = batch_pb2.ValidationReport(total_rows=valid + invalid, valid_rows=valid, invalid_count=invalid)
    if invalid:
        r.invalid_rows.add(row_number=3, reason="invalid phone number", value="123")
    r.duplicate_rows.add(row_number=5, duplicate_of_row=2, phone_number="+14155552671")
    r.duplicate_count = 1
    return r


def test_checklist_all_green_and_request():
    s = vm.CreateFormState(report=_report(), name="Jan", agent="agents/a", from_number="phoneNumbers/p")
    items = vm.review_checklist(s)
    assert [i.label for i in items] == [
        "CSV validated successfully",
        "Batch name entered",
        "Agent selected",
        "From number selected",
        "Concurrency set",
        "Retry attempts set",
        "Schedule time set (or immediate)",
    ]
    assert vm.checklist_ready(items)
    assert all(i.markdown().startswith("✅") for i in items)
    req = vm.build_create_request(s, request_id="r1", description=" d ", csv_content=b"x", filename="a.csv",
                                  default_region="us")
    assert req.request_id == "r1" and req.display_name == "Jan" and req.description == "d"
    assert req.concurrency_limit == 5 and req.max_attempts == 3 and req.timezone == "UTC"
    assert req.scheduled_local_time == "" and req.default_region == "US"
    assert req.calling_window_mode == resources_pb2.CALLING_WINDOW_MODE_UNSPECIFIED


def test_checklist_warnings():
    s = vm.CreateFormState(report=None, name="", agent="", from_number="")
    items = vm.review_checklist(s)
    assert not vm.checklist_ready(items)
    bad = {i.label for i in items if not i.ok}
    assert bad == {"CSV validated successfully", "Batch name entered", "Agent selected", "From number selected"}
    assert items[0].markdown().startswith("⚠️")
    s = vm.CreateFormState(report=_report(valid=0), name="x" * 201, agent="a", from_number="p")
    items = vm.review_checklist(s)
    assert not items[0].ok and not items[1].ok


def test_checklist_schedule_and_window():
    now = dt.datetime(2024, 1, 20, 12, 0, tzinfo=dt.timezone.utc)
    s = vm.CreateFormState(report=_report(), name="n", agent="a", from_number="p", schedule_enabled=True,
                           schedule_date=dt.date(2024, 1, 19), schedule_time=dt.time(9, 0), timezone="UTC")
    assert not vm.checklist_ready(vm.review_checklist(s, now))
    s.schedule_date = dt.date(2024, 1, 21)
    s.timezone = "Europe/Paris"
    assert vm.checklist_ready(vm.review_checklist(s, now))
    s.window_mode = "custom"
    s.window_start, s.window_end, s.window_days = "8:00", "17:30", ["Mon", "Tue"]
    assert vm.checklist_ready(vm.review_checklist(s, now))
    req = vm.build_create_request(s, request_id="r", description="", csv_content=b"", filename="f.csv")
    assert req.scheduled_local_time == "2024-01-21T09:00:00" and req.timezone == "Europe/Paris"
    assert req.calling_window_mode == resources_pb2.CALLING_WINDOW_MODE_CUSTOM
    assert req.calling_window.start_local_time == "08:00" and list(req.calling_window.weekdays) == [1, 2]
    s.window_start = "nope"
    assert not vm.checklist_ready(vm.review_checklist(s, now))
    s.window_mode = "none"
    req = vm.build_create_request(s, request_id="r", description="", csv_content=b"", filename="f.csv")
    assert req.calling_window_mode == resources_pb2.CALLING_WINDOW_MODE_NONE


def test_report_tables():
    r = _report()
    assert vm.invalid_rows_table(r) == [{"Row": 3, "Value": "123", "Reason": "invalid phone number"}]
    assert vm.duplicate_rows_table(r) == [{"Row": 5, "Phone": "+14155552671", "Duplicate of row": 2}]
    labels = [m[1] for m in vm.report_metrics(r)]
    assert labels[:4] == ["Total rows", "Valid rows", "Invalid rows", "Duplicate phones"]


def test_overview_cards():
    st = batch_pb2.BatchStats(total_contacts=10, completed=6, successful=6, failed=1, invalid_number=1,
                              failed_total=2, pending=1, dialing=1, processing=2)
    cards = vm.overview_cards(st)
    assert [c.label for c in cards] == ["Total Contacts", "Successful Calls", "Failed Calls", "Processing"]
    assert cards[0].value == "10"
    assert cards[1].value == "6" and "60.0% success rate" in cards[1].caption
    assert cards[2].value == "2" and "20.0% failure rate" in cards[2].caption
    assert cards[3].value == "2" and "1 pending + 1 in progress" in cards[3].caption
    assert vm.progress_fraction(st) == pytest.approx(0.8)


def test_batch_details_rows():
    b = batch_pb2.Batch(name="batches/b1", batch_id="b1", display_name="Jan", status=BS.BATCH_STATUS_RUNNING,
                        agent_display_name="Payment Agent", from_phone_number_e164="+12025550100",
                        concurrency_limit=5, max_attempts=3, status_reason="")
    b.stats.cost_micros = 1_500_000
    b.stats.average_duration_seconds = 95
    rows = dict(vm.batch_details_rows(b))
    for k in ["Batch ID", "Name", "Description", "Status", "Agent", "From Number", "Concurrent Limit",
              "Max Attempts", "Created", "Started", "Completed", "Estimated Completion"]:
        assert k in rows
    assert rows["Batch ID"] == "b1" and rows["Status"] == "Running" and rows["Completed"] == "— (ongoing)"
    assert rows["Cost So Far"] == "$1.50" and rows["Average Duration"] == "1m 35s"
    assert "Status Reason" not in rows
    b.status_reason = "insufficient credits"
    assert dict(vm.batch_details_rows(b))["Status Reason"] == "insufficient credits"


def test_contact_row():
    c = batch_pb2.Contact(display_name="Ann", phone_number="+14155552671", status=CS.CONTACT_STATUS_QUEUED,
                          attempts=1, max_attempts=3, last_outcome=resources_pb2.CALL_OUTCOME_BUSY)
    c.next_attempt_time.FromDatetime(dt.datetime(2024, 1, 15, 10, 35))
    row = vm.contact_row(c)
    assert list(row) == ["Contact", "Status", "Attempts", "Last Attempt", "Next Retry", "Duration", "Failure Reason"]
    assert row["Contact"] == "Ann · +14155552671"
    assert row["Status"] == "🟣 Queued (Busy)"
    assert row["Attempts"] == "1 / 3"
    assert row["Next Retry"] == "Jan 15, 2024 10:35 AM UTC"
    assert row["Duration"] == "—"


def test_status_breakdown_and_charts():
    st = batch_pb2.BatchStats(completed=3, failed=1, pending=0)
    assert vm.status_breakdown(st) == [("Completed", 3, vm.COLOR_HEX["green"]), ("Failed", 1, vm.COLOR_HEX["red"])]
    cs = []
    for i, status in enumerate([CS.CONTACT_STATUS_COMPLETED, CS.CONTACT_STATUS_FAILED, CS.CONTACT_STATUS_COMPLETED,
                                CS.CONTACT_STATUS_PENDING]):
        c = batch_pb2.Contact(status=status, duration_seconds=60 * (i + 1) if status == CS.CONTACT_STATUS_COMPLETED
                              else 0)
        if status != CS.CONTACT_STATUS_PENDING:
            c.call_end_time.FromDatetime(dt.datetime(2024, 1, 1, 10, 3 - i))
        cs.append(c)
    series = vm.completions_over_time(cs)
    assert [(n, lab) for _, n, lab in series] == [(1, "Successful"), (1, "Failed"), (2, "Successful")]
    assert vm.durations_of(cs) == [60, 180]


def test_page_cursor():
    c = vm.PageCursor(page_size=25)
    assert c.current == "" and not c.has_prev and c.offset == 0
    c.next("t1")
    c.next("t2")
    assert c.current == "t2" and c.page_index == 2 and c.offset == 50
    c.prev()
    assert c.current == "t1"
    c.next("")  # no next page: stays
    assert c.current == "t1"
    c.reset(50)
    assert c.current == "" and c.page_size == 50


def test_showing_text():
    assert vm.showing_text(0, 0) == "Showing 0 of 0 contacts"
    assert vm.showing_text(50, 50) == "Showing 50 of 50 contacts"
    assert vm.showing_text(50, 120) == "Showing 50 of 120 contacts (1–50)"
    assert vm.showing_text(20, 120, 100) == "Showing 20 of 120 contacts (101–120)"


def test_misc_helpers():
    assert vm.split_numbers("+1415, +4420\n+1415;  ") == ["+1415", "+4420"]
    lo, hi = vm.date_range_to_bounds(dt.date(2024, 1, 1), dt.date(2024, 1, 2))
    assert lo.isoformat() == "2024-01-01T00:00:00+00:00" and hi.isoformat() == "2024-01-03T00:00:00+00:00"
    assert vm.date_range_to_bounds(None, None) == (None, None)
    b = batch_pb2.Batch(display_name="Jan / Reminders!", batch_id="b1")
    assert vm.export_filename(b, "all", "csv") == "Jan-Reminders-all.csv"


def test_agent_and_number_rows():
    a = resources_pb2.Agent(name="agents/a", display_name="Pay", architecture=resources_pb2.AGENT_ARCHITECTURE_PIPELINE,
                            active=True)
    assert vm.agent_option_label(a) == "Pay · Pipeline"
    assert vm.agent_row(a)["Can call"] == "Yes"
    n = resources_pb2.PhoneNumber(name="phoneNumbers/p", phone_number="+12025550100")
    assert vm.phone_number_row(n)["Outbound trunk"].startswith("None")
    n.outbound_trunk.CopyFrom(resources_pb2.OutboundTrunk(kind=resources_pb2.TRUNK_KIND_SIP, host="sip.x", port=5061,
                                                          transport=resources_pb2.SIP_TRANSPORT_TCP, username="u",
                                                          password_set=True))
    row = vm.phone_number_row(n)
    assert (row["Outbound trunk"], row["Host"], row["Port"], row["Transport"], row["Password"]) == (
        "SIP", "sip.x", "5061", "TCP", "set")
    assert vm.phone_option_label(n) == "+12025550100 · SIP trunk"
