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
