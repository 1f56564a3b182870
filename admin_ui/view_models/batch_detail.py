"""The batch detail page's overview: the four cards, the details table and
the export file name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from admin_ui.view_models.formatting import (
    format_duration,
    format_money,
    format_rate,
    format_ts,
    ratio,
)
from admin_ui.view_models.schedule import calling_window_mode_text
from admin_ui.view_models.statuses import BS, batch_status_label
from batchcalls.v1 import batch_pb2, resources_pb2


@dataclass(frozen=True)
class Card:
    label: str
    value: str
    caption: str
    icon: str


def overview_cards(stats: batch_pb2.BatchStats) -> list[Card]:
    total = stats.total_contacts
    successful = stats.successful or stats.completed
    failed = stats.failed_total or (stats.failed + stats.invalid_number + stats.blocked + stats.carrier_error)
    processing = stats.processing or (stats.pending + stats.queued + stats.dialing + stats.connected)
    in_progress = stats.dialing + stats.connected
    waiting = max(processing - in_progress, 0)
    return [
        Card("Total Contacts", f"{total:,}", "in this batch", "👥"),
        Card("Successful Calls", f"{successful:,}", f"{format_rate(ratio(successful, total))} success rate", "✅"),
        Card("Failed Calls", f"{failed:,}", f"{format_rate(ratio(failed, total))} failure rate", "❌"),
        Card("Processing", f"{processing:,}", f"{waiting:,} pending + {in_progress:,} in progress", "🕒"),
    ]


def retry_delays_text(policy: batch_pb2.RetryPolicy) -> str:
    """"busy 5/30 min · voicemail 60 min" from the delays in force."""
    parts = []
    for r in policy.outcome_retries:
        word = resources_pb2.CallOutcome.Name(r.outcome).removeprefix("CALL_OUTCOME_").lower().replace("_", " ")
        parts.append(f"{word} " + "/".join(f"{d / 60:g}" for d in r.delay_seconds) + " min")
    return " · ".join(parts) or "—"


def batch_details_rows(batch: batch_pb2.Batch) -> list[tuple[str, str]]:
    s = batch.stats
    running = batch.status in (BS.BATCH_STATUS_RUNNING, BS.BATCH_STATUS_PAUSED)
    completed = format_ts(batch, "complete_time", empty="— (ongoing)" if running else "—")
    rows = [
        ("Batch ID", batch.batch_id or batch.name.removeprefix("batches/")),
        ("Name", batch.display_name),
        ("Description", batch.description or "—"),
        ("Status", batch_status_label(batch.status)),
        ("Agent", batch.agent_display_name or batch.agent or "—"),
        ("From Number", batch.from_phone_number_e164 or batch.from_phone_number or "—"),
        ("Concurrent Limit", str(batch.concurrency_limit)),
        ("Max Attempts", str(batch.max_attempts)),
        ("Created", format_ts(batch, "create_time")),
        ("Scheduled Start", format_ts(batch, "scheduled_start_time", tz=batch.timezone or "UTC", empty="Immediate")),
        ("Started", format_ts(batch, "start_time")),
        ("Completed", completed),
        ("Estimated Completion", format_ts(s, "estimated_completion_time")),
        ("Calling Window", calling_window_mode_text(batch)),
        ("Cost So Far", format_money(s.cost_micros)),
        ("Estimated Cost", format_money(s.estimated_cost_micros)),
        ("Average Duration", format_duration(s.average_duration_seconds)),
        ("Attempts Made", f"{s.attempts_total:,}"),
        ("Retries Pending", f"{s.retries_pending:,}"),
        ("Pickup Rate (humans)", f"{format_rate(s.pickup_rate)} · {s.machine_answers:,} voicemail"),
        ("Voicemail", "counts as done" if batch.voicemail_action == batch_pb2.VOICEMAIL_ACTION_DONE
         else "retried later"),
        ("Retry Delays", retry_delays_text(batch.retry_policy)),
        ("Waiting For Calling Window", f"{s.waiting_for_window:,}"),
    ]
    if batch.custom_columns:
        rows.append(("Custom Columns", ", ".join(batch.custom_columns)))
    if batch.status_reason:
        rows.append(("Status Reason", batch.status_reason))
    return rows


def export_filename(batch: batch_pb2.Batch, which: str, ext: str) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", batch.display_name or batch.batch_id).strip("-") or "batch"
    return f"{base[:60]}-{which}.{ext}"
