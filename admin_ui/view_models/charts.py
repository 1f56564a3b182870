"""Chart data of a batch: the status breakdown, completions over time and
call durations, computed from stats and contacts (Plotly draws them)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from admin_ui.view_models.formatting import ts_to_dt
from admin_ui.view_models.statuses import (
    COLOR_HEX,
    CS,
    contact_status_color,
    contact_status_label,
)
from batchcalls.v1 import batch_pb2


def status_breakdown(stats: batch_pb2.BatchStats) -> list[tuple[str, int, str]]:
    """(label, count, hex color) of every contact status with a count > 0."""
    pairs = [
        (CS.CONTACT_STATUS_PENDING, stats.pending),
        (CS.CONTACT_STATUS_QUEUED, stats.queued),
        (CS.CONTACT_STATUS_DIALING, stats.dialing),
        (CS.CONTACT_STATUS_CONNECTED, stats.connected),
        (CS.CONTACT_STATUS_COMPLETED, stats.completed),
        (CS.CONTACT_STATUS_FAILED, stats.failed),
        (CS.CONTACT_STATUS_INVALID_NUMBER, stats.invalid_number),
        (CS.CONTACT_STATUS_BLOCKED, stats.blocked),
        (CS.CONTACT_STATUS_CARRIER_ERROR, stats.carrier_error),
        (CS.CONTACT_STATUS_CANCELLED, stats.cancelled),
        (CS.CONTACT_STATUS_SUPPRESSED, stats.suppressed),
    ]
    return [
        (contact_status_label(s), int(n), COLOR_HEX[contact_status_color(s)]) for s, n in pairs if n > 0
    ]


def completions_over_time(contacts: Iterable[batch_pb2.Contact]) -> list[tuple[dt.datetime, int, str]]:
    """(end time, cumulative count, label) of finished calls, oldest first."""
    ends: list[tuple[dt.datetime, str]] = []
    for c in contacts:
        end = ts_to_dt(c, "call_end_time") or (
            ts_to_dt(c, "last_attempt_time") if c.status not in (CS.CONTACT_STATUS_PENDING,) else None
        )
        if end is None:
            continue
        if c.status == CS.CONTACT_STATUS_COMPLETED:
            ends.append((end, "Successful"))
        elif c.status in (
            CS.CONTACT_STATUS_FAILED,
            CS.CONTACT_STATUS_INVALID_NUMBER,
            CS.CONTACT_STATUS_BLOCKED,
            CS.CONTACT_STATUS_CARRIER_ERROR,
        ):
            ends.append((end, "Failed"))
    ends.sort()
    out: list[tuple[dt.datetime, int, str]] = []
    counts = {"Successful": 0, "Failed": 0}
    for t, label in ends:
        counts[label] += 1
        out.append((t, counts[label], label))
    return out


def durations_of(contacts: Iterable[batch_pb2.Contact]) -> list[float]:
    return [c.duration_seconds for c in contacts if c.duration_seconds > 0]
