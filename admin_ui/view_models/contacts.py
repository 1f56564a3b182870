"""The contacts table of a batch: one row per contact, the "Showing N of M"
line and the date filter's bounds.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from admin_ui.view_models.formatting import UTC, format_duration, format_ts
from admin_ui.view_models.statuses import (
    CS,
    OUTCOME_LABELS,
    contact_status_color,
    contact_status_label,
    status_with_dot,
)
from batchcalls.v1 import batch_pb2, resources_pb2


def contact_row(c: batch_pb2.Contact) -> dict[str, Any]:
    status_label = contact_status_label(c.status)
    if c.status in (CS.CONTACT_STATUS_QUEUED, CS.CONTACT_STATUS_FAILED) and c.last_outcome not in (
        resources_pb2.CALL_OUTCOME_UNSPECIFIED,
        resources_pb2.CALL_OUTCOME_COMPLETED,
    ):
        status_label = f"{status_label} ({OUTCOME_LABELS.get(c.last_outcome, '?')})"
    failure = c.failure_reason
    if c.wait_reason and not failure:
        failure = c.wait_reason
    return {
        "Contact": f"{c.display_name} · {c.phone_number}" if c.display_name else c.phone_number,
        "Status": status_with_dot(status_label, contact_status_color(c.status)),
        "Attempts": f"{c.attempts} / {c.max_attempts}",
        "Last Attempt": format_ts(c, "last_attempt_time"),
        "Next Retry": format_ts(c, "next_attempt_time"),
        "Duration": format_duration(c.duration_seconds),
        "Failure Reason": failure or "",
    }


def showing_text(shown: int, total: int, offset: int = 0) -> str:
    if shown == 0:
        return f"Showing 0 of {total:,} contacts"
    return f"Showing {shown:,} of {total:,} contacts" + (
        f" ({offset + 1:,}–{offset + shown:,})" if offset or shown < total else ""
    )


def date_range_to_bounds(
    start: dt.date | None, end: dt.date | None
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """Inclusive UTC date range → [from, to) instants."""
    lo = dt.datetime.combine(start, dt.time(0), tzinfo=UTC) if start else None
    hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(0), tzinfo=UTC) if end else None
    return lo, hi


# --- the agent's reported result (ResultsService) ---------------------------------------------------

DISPOSITION_LABELS: dict[int, str] = {
    batch_pb2.CALL_DISPOSITION_COMPLETED: "Completed",
    batch_pb2.CALL_DISPOSITION_VOICEMAIL: "Voicemail",
    batch_pb2.CALL_DISPOSITION_OPT_OUT: "Opted out",
    batch_pb2.CALL_DISPOSITION_CALLBACK_REQUESTED: "Callback requested",
    batch_pb2.CALL_DISPOSITION_WRONG_NUMBER: "Wrong number",
    batch_pb2.CALL_DISPOSITION_TRANSFERRED: "Transferred",
}
ANSWERED_BY_LABELS: dict[int, str] = {
    batch_pb2.ANSWERED_BY_HUMAN: "human",
    batch_pb2.ANSWERED_BY_MACHINE: "machine",
    batch_pb2.ANSWERED_BY_UNKNOWN: "unknown",
}


def safe_link(uri: str) -> str:
    """``uri`` when it is an http(s) link the UI may open, else "" (never a
    ``javascript:`` or ``data:`` URI, whatever the server stored)."""
    text = (uri or "").strip()
    lowered = text.lower()
    if (lowered.startswith("https://") or lowered.startswith("http://")) and not any(c.isspace() for c in text):
        return text
    return ""


def extracted_value_text(f: batch_pb2.ExtractedField) -> str:
    kind = f.WhichOneof("value")
    if kind == "bool_value":
        return "true" if f.bool_value else "false"
    if kind == "number_value":
        n = f.number_value
        return str(int(n)) if float(n).is_integer() and abs(n) < 1e15 else repr(n)
    if kind == "string_value":
        return f.string_value
    return ""


def call_result_view(c: batch_pb2.Contact) -> dict[str, Any] | None:
    """The contact's latest agent result as plain values (the page escapes
    them where they enter markdown); None when nothing was reported."""
    if not c.HasField("result"):
        return None
    r = c.result
    return {
        "disposition": DISPOSITION_LABELS.get(r.disposition, "?"),
        "answered_by": ANSWERED_BY_LABELS.get(r.answered_by, "unknown"),
        "callback": format_ts(r, "callback_time") if r.HasField("callback_time") else "",
        "summary": r.summary,
        "transcript": r.transcript,
        "recording": safe_link(r.recording_uri),
        "recording_text": r.recording_uri,
        "fields": [{"Field": f.name, "Value": extracted_value_text(f)} for f in r.extracted_fields],
    }


def callability_view(c: batch_pb2.Contact) -> dict[str, Any] | None:
    """Why a contact waits for its window and when it may next be called
    (GetContact's callability, issue 16), as plain values: the page escapes
    ``summary`` for markdown and shows ``rules`` in a dataframe. None when the
    contact is not waiting for a window."""
    if not c.HasField("callability"):
        return None
    k = c.callability
    nxt = format_ts(k, "next_allowed_time") if k.HasField("next_allowed_time") else "none within 14 days"
    where = " / ".join(x for x in (k.region_code, k.state) if x) or "unknown region"
    summary = f"Next allowed: {nxt} · {where} · zones {', '.join(k.time_zones) or '?'}"
    if not k.jurisdiction_rules_applied:
        summary += " · jurisdiction rules not applied (simulated trunk)"
    rules = [
        {
            "Rule": r.rule_id,
            "Blocks now": "yes" if r.blocked else "",
            "Description": r.description,
            "Source": r.source,
            "Checked": r.checked_date,
            "Verified": "yes" if r.verified else "no",
        }
        for r in k.rules
    ]
    return {"summary": summary, "reason": k.reason, "rules": rules, "table_version": k.table_version}
