"""Rows of the batch list and the progress shared by list and detail."""

from __future__ import annotations

from typing import Any

from admin_ui.view_models.formatting import format_ts
from admin_ui.view_models.statuses import (
    BS,
    batch_status_color,
    batch_status_label,
    status_with_dot,
)
from batchcalls.v1 import batch_pb2


def is_live(status: int) -> bool:
    return status in (BS.BATCH_STATUS_RUNNING, BS.BATCH_STATUS_PENDING, BS.BATCH_STATUS_SCHEDULED)


def batch_list_row(b: batch_pb2.Batch) -> dict[str, Any]:
    s = b.stats
    done = s.total_contacts - (s.processing or (s.pending + s.queued + s.dialing + s.connected))
    return {
        "Name": b.display_name,
        "Status": status_with_dot(batch_status_label(b.status), batch_status_color(b.status)),
        "Progress": f"{max(done, 0):,} / {s.total_contacts:,}",
        "Successful": s.successful,
        "Failed": s.failed_total,
        "Agent": b.agent_display_name,
        "From": b.from_phone_number_e164,
        "Created": format_ts(b, "create_time"),
        "Batch ID": b.batch_id,
    }


def progress_fraction(stats: batch_pb2.BatchStats) -> float:
    total = stats.total_contacts
    if not total:
        return 0.0
    processing = stats.processing or (stats.pending + stats.queued + stats.dialing + stats.connected)
    return min(max((total - processing) / total, 0.0), 1.0)
