"""The create-batch form: its state, the review checklist that gates the
Create button, the CreateBatchRequest it builds, and the validation report.

The checklist mirrors the server's bounds so the operator sees what is
missing before a round trip; the server still validates everything.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from admin_ui.view_models.escaping import user_text
from admin_ui.view_models.schedule import (
    hhmm,
    schedule_is_future,
    scheduled_local_time,
    weekday_numbers,
)
from batchcalls.v1 import batch_pb2, batch_service_pb2, resources_pb2

MAX_NAME_LEN = 200


@dataclass
class CreateFormState:
    report: batch_pb2.ValidationReport | None = None
    name: str = ""
    agent: str = ""
    from_number: str = ""
    concurrency: int = 5
    max_attempts: int = 3
    schedule_enabled: bool = False
    schedule_date: dt.date | None = None
    schedule_time: dt.time | None = None
    timezone: str = "UTC"
    window_mode: str = "org"  # org | none | custom
    window_start: str = "09:00"
    window_end: str = "18:00"
    window_days: list[str] = field(default_factory=list)
    #: A machine answer completes the contact (the agent left a message)
    #: instead of retrying it later.
    voicemail_done: bool = False
    #: Own retry delays per outcome word, minutes as typed ("5, 30");
    #: empty = the default.
    retry_minutes: dict[str, str] = field(default_factory=dict)


#: Outcome word -> CallOutcome, for the per-outcome retry delays.
RETRY_OUTCOMES: dict[str, int] = {
    "busy": resources_pb2.CALL_OUTCOME_BUSY,
    "no_answer": resources_pb2.CALL_OUTCOME_NO_ANSWER,
    "timeout": resources_pb2.CALL_OUTCOME_TIMEOUT,
    "voicemail": resources_pb2.CALL_OUTCOME_VOICEMAIL,
}


def parse_minutes(text: str) -> list[int] | None:
    """"5, 30" -> [300, 1800] seconds; "" -> []; None when malformed."""
    out: list[int] = []
    for part in (text or "").replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            minutes = float(part)
        except ValueError:
            return None
        if minutes < 0:
            return None
        out.append(round(minutes * 60))
    return out


@dataclass(frozen=True)
class CheckItem:
    ok: bool
    label: str
    detail: str = ""

    @property
    def icon(self) -> str:
        return "✅" if self.ok else "⚠️"

    def markdown(self) -> str:
        tail = f" — {user_text(self.detail)}" if self.detail else ""
        return f"{self.icon} {user_text(self.label)}{tail}"


def review_checklist(s: CreateFormState, now: dt.datetime | None = None) -> list[CheckItem]:
    """The seed's review checklist, one ✅/⚠️ item per line."""
    items: list[CheckItem] = []
    if s.report is None:
        items.append(CheckItem(False, "CSV validated successfully", "upload a CSV file"))
    elif s.report.valid_rows <= 0:
        items.append(CheckItem(False, "CSV validated successfully", "no valid contacts in the file"))
    else:
        r = s.report
        notes = []
        if r.invalid_count:
            notes.append(f"{r.invalid_count} invalid rows skipped")
        if r.duplicate_count:
            notes.append(f"{r.duplicate_count} duplicates skipped")
        if r.suppressed_count:
            notes.append(f"{r.suppressed_count} on the do-not-call list")
        detail = f"{r.valid_rows:,} valid contacts" + (f" ({', '.join(notes)})" if notes else "")
        items.append(CheckItem(True, "CSV validated successfully", detail))
    name = s.name.strip()
    if not name:
        items.append(CheckItem(False, "Batch name entered", "required"))
    elif len(name) > MAX_NAME_LEN:
        items.append(CheckItem(False, "Batch name entered", f"at most {MAX_NAME_LEN} characters"))
    else:
        items.append(CheckItem(True, "Batch name entered", name))
    items.append(CheckItem(bool(s.agent), "Agent selected", "" if s.agent else "choose a voice agent"))
    items.append(
        CheckItem(bool(s.from_number), "From number selected", "" if s.from_number else "choose a caller number")
    )
    items.append(
        CheckItem(1 <= s.concurrency <= 50, "Concurrency set", f"{s.concurrency} concurrent calls"
                  + (" (default)" if s.concurrency == 5 else ""))
    )
    items.append(
        CheckItem(1 <= s.max_attempts <= 10, "Retry attempts set", f"{s.max_attempts} attempts"
                  + (" (default)" if s.max_attempts == 3 else ""))
    )
    if not s.schedule_enabled:
        items.append(CheckItem(True, "Schedule time set (or immediate)", "starts immediately"))
    elif s.schedule_date is None or s.schedule_time is None:
        items.append(CheckItem(False, "Schedule time set (or immediate)", "pick a date and a time"))
    elif not schedule_is_future(s.schedule_date, s.schedule_time, s.timezone, now):
        items.append(CheckItem(False, "Schedule time set (or immediate)", "the start time must be in the future"))
    else:
        items.append(
            CheckItem(
                True,
                "Schedule time set (or immediate)",
                f"{scheduled_local_time(s.schedule_date, s.schedule_time)} {s.timezone}",
            )
        )
    bad = [w for w, text in s.retry_minutes.items() if parse_minutes(text) is None]
    if bad:
        items.append(CheckItem(False, "Retry delays valid", f"minutes separated by commas ({', '.join(bad)})"))
    if s.window_mode == "custom":
        ok = bool(hhmm(s.window_start)) and bool(hhmm(s.window_end))
        items.append(
            CheckItem(ok, "Calling window valid", "" if ok else "use HH:MM for the start and end times")
        )
    return items


def checklist_ready(items: Sequence[CheckItem]) -> bool:
    return all(i.ok for i in items)


def build_create_request(
    s: CreateFormState,
    *,
    request_id: str,
    description: str,
    csv_content: bytes,
    filename: str,
    default_region: str = "",
    max_call_duration_seconds: int = 0,
) -> batch_service_pb2.CreateBatchRequest:
    req = batch_service_pb2.CreateBatchRequest(
        request_id=request_id,
        display_name=s.name.strip(),
        description=description.strip(),
        agent=s.agent,
        from_phone_number=s.from_number,
        concurrency_limit=int(s.concurrency),
        max_attempts=int(s.max_attempts),
        timezone=s.timezone or "UTC",
        csv_content=csv_content,
        filename=filename,
        default_region=default_region.strip().upper(),
        max_call_duration_seconds=int(max_call_duration_seconds or 0),
    )
    req.voicemail_action = (batch_pb2.VOICEMAIL_ACTION_DONE if s.voicemail_done
                            else batch_pb2.VOICEMAIL_ACTION_RETRY_LATER)
    for word, outcome in RETRY_OUTCOMES.items():
        delays = parse_minutes(s.retry_minutes.get(word, ""))
        if delays:
            req.retry_policy.outcome_retries.add(outcome=outcome, delay_seconds=delays)
    if s.schedule_enabled and s.schedule_date and s.schedule_time:
        req.scheduled_local_time = scheduled_local_time(s.schedule_date, s.schedule_time)
    if s.window_mode == "none":
        req.calling_window_mode = resources_pb2.CALLING_WINDOW_MODE_NONE
    elif s.window_mode == "custom":
        req.calling_window_mode = resources_pb2.CALLING_WINDOW_MODE_CUSTOM
        req.calling_window.CopyFrom(
            resources_pb2.CallingWindow(
                start_local_time=hhmm(s.window_start) or s.window_start,
                end_local_time=hhmm(s.window_end) or s.window_end,
                weekdays=weekday_numbers(s.window_days),
            )
        )
    else:
        req.calling_window_mode = resources_pb2.CALLING_WINDOW_MODE_UNSPECIFIED
    return req


# --- validation report -------------------------------------------------------------------


def report_metrics(r: batch_pb2.ValidationReport) -> list[tuple[str, str, str]]:
    """(icon, label, value) lines of the validation report."""
    return [
        ("✅", "Total rows", f"{r.total_rows:,}"),
        ("✅" if r.valid_rows else "⚠️", "Valid rows", f"{r.valid_rows:,}"),
        ("⚠️" if r.invalid_count else "✅", "Invalid rows", f"{r.invalid_count:,}"),
        ("⚠️" if r.duplicate_count else "✅", "Duplicate phones", f"{r.duplicate_count:,}"),
        ("ℹ️", "Empty rows removed", f"{r.empty_rows:,}"),
        ("ℹ️", "Numbers normalized to E.164", f"{r.normalized_count:,}"),
        ("⚠️" if r.suppressed_count else "✅", "On the do-not-call list", f"{r.suppressed_count:,}"),
    ]


def invalid_rows_table(r: batch_pb2.ValidationReport) -> list[dict[str, Any]]:
    return [{"Row": x.row_number, "Value": x.value, "Reason": x.reason} for x in r.invalid_rows]


def duplicate_rows_table(r: batch_pb2.ValidationReport) -> list[dict[str, Any]]:
    return [
        {"Row": x.row_number, "Phone": x.phone_number, "Duplicate of row": x.duplicate_of_row}
        for x in r.duplicate_rows
    ]


def suppressed_rows_table(r: batch_pb2.ValidationReport) -> list[dict[str, Any]]:
    return [{"Row": x.row_number, "Phone": x.phone_number} for x in r.suppressed_rows]
