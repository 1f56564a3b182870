"""Batch, contact and call-outcome statuses as the UI shows them: labels,
colors, badges and the order of the status filters.

Labels and colors follow the product specification's status tables, so every
page (list, detail, exports preview) shows one status the same way.
"""

from __future__ import annotations

from admin_ui.view_models.escaping import user_text
from batchcalls.v1 import resources_pb2

BS = resources_pb2.BatchStatus
CS = resources_pb2.ContactStatus

# --- colors ------------------------------------------------------------------

COLOR_HEX = {
    "gray": "#6b7280",
    "purple": "#7c3aed",
    "blue": "#2563eb",
    "amber": "#d97706",
    "green": "#16a34a",
    "red": "#dc2626",
    "cyan": "#0891b2",
    "yellow": "#ca8a04",
    "orange": "#ea580c",
}

# Batch statuses: label and color from the seed's "Batch Statuses" table.
BATCH_STATUS_INFO: dict[int, tuple[str, str]] = {
    BS.BATCH_STATUS_UNSPECIFIED: ("Unknown", "gray"),
    BS.BATCH_STATUS_PENDING: ("Pending", "gray"),
    BS.BATCH_STATUS_SCHEDULED: ("Scheduled", "purple"),
    BS.BATCH_STATUS_RUNNING: ("Running", "blue"),
    BS.BATCH_STATUS_PAUSED: ("Paused", "amber"),
    BS.BATCH_STATUS_COMPLETED: ("Completed", "green"),
    BS.BATCH_STATUS_FAILED: ("Failed", "red"),
    BS.BATCH_STATUS_CANCELLED: ("Cancelled", "gray"),
}

# Contact statuses: label and color from the seed's contact status table
# (Cancelled and Suppressed are final states of the design, shown gray).
CONTACT_STATUS_INFO: dict[int, tuple[str, str]] = {
    CS.CONTACT_STATUS_UNSPECIFIED: ("Unknown", "gray"),
    CS.CONTACT_STATUS_PENDING: ("Pending", "gray"),
    CS.CONTACT_STATUS_QUEUED: ("Queued", "purple"),
    CS.CONTACT_STATUS_DIALING: ("Dialing", "blue"),
    CS.CONTACT_STATUS_CONNECTED: ("Connected", "cyan"),
    CS.CONTACT_STATUS_COMPLETED: ("Completed", "green"),
    CS.CONTACT_STATUS_FAILED: ("Failed", "red"),
    CS.CONTACT_STATUS_BUSY: ("Busy", "yellow"),
    CS.CONTACT_STATUS_NO_ANSWER: ("No Answer", "orange"),
    CS.CONTACT_STATUS_TIMEOUT: ("Timeout", "orange"),
    CS.CONTACT_STATUS_INVALID_NUMBER: ("Invalid Number", "red"),
    CS.CONTACT_STATUS_BLOCKED: ("Blocked", "red"),
    CS.CONTACT_STATUS_CARRIER_ERROR: ("Carrier Error", "amber"),
    CS.CONTACT_STATUS_CANCELLED: ("Cancelled", "gray"),
    CS.CONTACT_STATUS_SUPPRESSED: ("Suppressed", "gray"),
}

OUTCOME_LABELS: dict[int, str] = {
    resources_pb2.CALL_OUTCOME_UNSPECIFIED: "—",
    resources_pb2.CALL_OUTCOME_COMPLETED: "Completed",
    resources_pb2.CALL_OUTCOME_NO_ANSWER: "No Answer",
    resources_pb2.CALL_OUTCOME_BUSY: "Busy",
    resources_pb2.CALL_OUTCOME_TIMEOUT: "Timeout",
    resources_pb2.CALL_OUTCOME_INVALID_NUMBER: "Invalid Number",
    resources_pb2.CALL_OUTCOME_BLOCKED: "Blocked",
    resources_pb2.CALL_OUTCOME_CARRIER_ERROR: "Carrier Error",
    resources_pb2.CALL_OUTCOME_AGENT_ERROR: "Agent Error",
    resources_pb2.CALL_OUTCOME_DIALER_LOST: "Dialer Lost",
    resources_pb2.CALL_OUTCOME_NOT_DIALED: "Not Dialed",
    resources_pb2.CALL_OUTCOME_VOICEMAIL: "Voicemail",
}

BATCH_STATUS_FILTER_ORDER = [
    BS.BATCH_STATUS_PENDING,
    BS.BATCH_STATUS_SCHEDULED,
    BS.BATCH_STATUS_RUNNING,
    BS.BATCH_STATUS_PAUSED,
    BS.BATCH_STATUS_COMPLETED,
    BS.BATCH_STATUS_FAILED,
    BS.BATCH_STATUS_CANCELLED,
]
CONTACT_STATUS_FILTER_ORDER = [s for s in CONTACT_STATUS_INFO if s != CS.CONTACT_STATUS_UNSPECIFIED]


def batch_status_label(status: int) -> str:
    return BATCH_STATUS_INFO.get(status, ("Unknown", "gray"))[0]


def batch_status_color(status: int) -> str:
    return BATCH_STATUS_INFO.get(status, ("Unknown", "gray"))[1]


def contact_status_label(status: int) -> str:
    return CONTACT_STATUS_INFO.get(status, ("Unknown", "gray"))[0]


def contact_status_color(status: int) -> str:
    return CONTACT_STATUS_INFO.get(status, ("Unknown", "gray"))[1]


def batch_status_from_label(label: str) -> int:
    for k, (lab, _c) in BATCH_STATUS_INFO.items():
        if lab == label:
            return k
    raise KeyError(label)


def contact_status_from_label(label: str) -> int:
    for k, (lab, _c) in CONTACT_STATUS_INFO.items():
        if lab == label:
            return k
    raise KeyError(label)


def badge_html(label: str, color: str) -> str:
    """A small colored pill, for st.markdown(..., unsafe_allow_html=True)."""
    if color not in COLOR_HEX:
        color = "gray"
    hexc = COLOR_HEX[color]
    return (
        f'<span class="bc-badge bc-{color}" style="background:{hexc}1f;color:{hexc};'
        f"border:1px solid {hexc}66;border-radius:999px;padding:1px 10px;"
        f'font-size:0.85em;font-weight:600;white-space:nowrap">{user_text(label)}</span>'
    )


def batch_status_badge(status: int) -> str:
    return badge_html(batch_status_label(status), batch_status_color(status))


def contact_status_badge(status: int) -> str:
    return badge_html(contact_status_label(status), contact_status_color(status))


STATUS_EMOJI = {
    "gray": "⚪",
    "purple": "🟣",
    "blue": "🔵",
    "amber": "🟠",
    "green": "🟢",
    "red": "🔴",
    "cyan": "🔵",
    "yellow": "🟡",
    "orange": "🟠",
}


def status_with_dot(label: str, color: str) -> str:
    """Plain-text status for dataframes, where HTML is not rendered."""
    return f"{STATUS_EMOJI.get(color, '⚪')} {label}"
