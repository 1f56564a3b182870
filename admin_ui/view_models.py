"""Pure formatting and state helpers of the admin UI (no Streamlit, no I/O).

Everything here is unit tested without a server: status labels and colors
from the product specification, the action matrix, role rules, money, time
and duration formatting, the review checklist, the overview cards, table rows
and chart data.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from batchcalls.v1 import batch_pb2, batch_service_pb2, resources_pb2

BS = resources_pb2.BatchStatus
CS = resources_pb2.ContactStatus
Role = resources_pb2.Role

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

FINAL_BATCH_STATUSES = frozenset(
    {BS.BATCH_STATUS_COMPLETED, BS.BATCH_STATUS_FAILED, BS.BATCH_STATUS_CANCELLED}
)


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
    hexc = COLOR_HEX.get(color, COLOR_HEX["gray"])
    return (
        f'<span class="bc-badge bc-{color}" style="background:{hexc}1f;color:{hexc};'
        f"border:1px solid {hexc}66;border-radius:999px;padding:1px 10px;"
        f'font-size:0.85em;font-weight:600;white-space:nowrap">{html.escape(label)}</span>'
    )


def batch_status_badge(status: int) -> str:
    return badge_html(batch_status_label(status), batch_status_color(status))


def contact_status_badge(status: int) -> str:
    return badge_html(contact_status_label(status), contact_status_color(status))


# Streamlit's markdown color syntax (":blue-badge[Running]") names.
_ST_BADGE_COLORS = {
    "gray": "gray",
    "purple": "violet",
    "blue": "blue",
    "amber": "orange",
    "green": "green",
    "red": "red",
    "cyan": "blue",
    "yellow": "yellow",
    "orange": "orange",
}

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


# --- action matrix -------------------------------------------------------------

ACTION_VIEW = "view"
ACTION_PAUSE = "pause"
ACTION_RESUME = "resume"
ACTION_CANCEL = "cancel"
ACTION_DELETE = "delete"
ACTION_RESCHEDULE = "reschedule"
ACTION_EXPORT = "export"
ALL_ACTIONS = (
    ACTION_VIEW,
    ACTION_PAUSE,
    ACTION_RESUME,
    ACTION_CANCEL,
    ACTION_DELETE,
    ACTION_RESCHEDULE,
    ACTION_EXPORT,
)
WRITE_ACTIONS = frozenset(
    {ACTION_PAUSE, ACTION_RESUME, ACTION_CANCEL, ACTION_DELETE, ACTION_RESCHEDULE}
)

ACTION_MATRIX: dict[int, tuple[str, ...]] = {
    BS.BATCH_STATUS_PENDING: (ACTION_VIEW, ACTION_CANCEL, ACTION_DELETE, ACTION_RESCHEDULE),
    BS.BATCH_STATUS_SCHEDULED: (ACTION_VIEW, ACTION_CANCEL, ACTION_DELETE, ACTION_RESCHEDULE),
    BS.BATCH_STATUS_RUNNING: (ACTION_VIEW, ACTION_PAUSE, ACTION_CANCEL),
    BS.BATCH_STATUS_PAUSED: (ACTION_VIEW, ACTION_RESUME, ACTION_CANCEL, ACTION_DELETE),
    BS.BATCH_STATUS_COMPLETED: (ACTION_VIEW, ACTION_DELETE, ACTION_EXPORT),
    BS.BATCH_STATUS_FAILED: (ACTION_VIEW, ACTION_DELETE, ACTION_EXPORT),
    BS.BATCH_STATUS_CANCELLED: (ACTION_VIEW, ACTION_DELETE),
}

ACTION_LABELS = {
    ACTION_VIEW: "View",
    ACTION_PAUSE: "Pause",
    ACTION_RESUME: "Resume",
    ACTION_CANCEL: "Cancel",
    ACTION_DELETE: "Delete",
    ACTION_RESCHEDULE: "Reschedule",
    ACTION_EXPORT: "Export",
}

ACTION_ICONS = {
    ACTION_VIEW: "👁️",
    ACTION_PAUSE: "⏸️",
    ACTION_RESUME: "▶️",
    ACTION_CANCEL: "⛔",
    ACTION_DELETE: "🗑️",
    ACTION_RESCHEDULE: "🗓️",
    ACTION_EXPORT: "⬇️",
}


def allowed_actions(status: int) -> tuple[str, ...]:
    return ACTION_MATRIX.get(status, (ACTION_VIEW,))


def action_allowed(status: int, action: str) -> bool:
    return action in allowed_actions(status)


def action_confirm_text(action: str, batch_label: str) -> str:
    name = f"“{batch_label}”"
    return {
        ACTION_PAUSE: f"Pause {name}? Running calls complete normally; no new calls start "
        "and the queued contacts wait until you resume.",
        ACTION_RESUME: f"Resume {name}? Queue processing resumes.",
        ACTION_CANCEL: f"Cancel {name}? Running calls complete, pending contacts are not "
        "called and the queue is discarded. This action cannot be undone.",
        ACTION_DELETE: f"Delete {name} and all its contacts? This action cannot be undone.",
        ACTION_RESCHEDULE: f"Choose a new start time for {name}. It must be in the future.",
    }.get(action, f"{ACTION_LABELS.get(action, action)} {name}?")


# --- roles ---------------------------------------------------------------------

MEMBER_READ_ONLY_REASON = "Members can view batches; owners and admins can create and manage them"
OWNER_ONLY_REASON = "Only owners can change this"

ROLE_LABELS = {
    Role.ROLE_UNSPECIFIED: "Unknown",
    Role.ROLE_OWNER: "Owner",
    Role.ROLE_ADMIN: "Admin",
    Role.ROLE_MEMBER: "Member",
}


def role_label(role: int) -> str:
    return ROLE_LABELS.get(role, "Unknown")


def can_write(role: int) -> bool:
    return role in (Role.ROLE_OWNER, Role.ROLE_ADMIN)


def is_owner(role: int) -> bool:
    return role == Role.ROLE_OWNER


# --- agents, numbers, trunks ------------------------------------------------------

ARCHITECTURE_LABELS = {
    resources_pb2.AGENT_ARCHITECTURE_UNSPECIFIED: "Unspecified",
    resources_pb2.AGENT_ARCHITECTURE_PIPELINE: "Pipeline",
    resources_pb2.AGENT_ARCHITECTURE_REALTIME: "Realtime",
    resources_pb2.AGENT_ARCHITECTURE_TEXT: "Text",
}
TRUNK_KIND_LABELS = {
    resources_pb2.TRUNK_KIND_UNSPECIFIED: "—",
    resources_pb2.TRUNK_KIND_SIMULATED: "Simulated",
    resources_pb2.TRUNK_KIND_SIP: "SIP",
}
TRANSPORT_LABELS = {
    resources_pb2.SIP_TRANSPORT_UNSPECIFIED: "—",
    resources_pb2.SIP_TRANSPORT_UDP: "UDP",
    resources_pb2.SIP_TRANSPORT_TCP: "TCP",
}
CALLER_ID_LABELS = {
    resources_pb2.CALLER_ID_FORMAT_UNSPECIFIED: "E.164 (default)",
    resources_pb2.CALLER_ID_FORMAT_E164: "E.164 (+12025550100)",
    resources_pb2.CALLER_ID_FORMAT_E164_NO_PLUS: "E.164 without + (12025550100)",
    resources_pb2.CALLER_ID_FORMAT_NATIONAL: "National (2025550100)",
}


def agent_option_label(agent: resources_pb2.Agent) -> str:
    return f"{agent.display_name or agent.name} · {ARCHITECTURE_LABELS.get(agent.architecture, '?')}"


def phone_option_label(number: resources_pb2.PhoneNumber) -> str:
    kind = ""
    if number.HasField("outbound_trunk"):
        kind = f" · {TRUNK_KIND_LABELS.get(number.outbound_trunk.kind, '?')} trunk"
    name = f" ({number.display_name})" if number.display_name else ""
    return f"{number.phone_number}{name}{kind}"


def agent_row(agent: resources_pb2.Agent) -> dict[str, Any]:
    return {
        "Name": agent.display_name,
        "Architecture": ARCHITECTURE_LABELS.get(agent.architecture, "?"),
        "Active": "Yes" if agent.active else "No",
        "Can call": "Yes" if agent.active and agent.architecture in (
            resources_pb2.AGENT_ARCHITECTURE_PIPELINE, resources_pb2.AGENT_ARCHITECTURE_REALTIME
        ) else "No",
        "Recording": "On" if agent.recording_enabled else "Off",
        "Transcript": "On" if agent.transcript_enabled else "Off",
        "Created": format_ts(agent, "create_time"),
        "Resource": agent.name,
    }


def phone_number_row(number: resources_pb2.PhoneNumber) -> dict[str, Any]:
    row: dict[str, Any] = {
        "Number": number.phone_number,
        "Label": number.display_name,
        "Outbound trunk": "None (cannot place calls)",
        "Host": "",
        "Port": "",
        "Transport": "",
        "Username": "",
        "Password": "",
        "Caller ID": "",
        "Created": format_ts(number, "create_time"),
        "Resource": number.name,
    }
    if number.HasField("outbound_trunk"):
        t = number.outbound_trunk
        row.update(
            {
                "Outbound trunk": TRUNK_KIND_LABELS.get(t.kind, "?"),
                "Host": t.host,
                "Port": str(t.port) if t.port else "",
                "Transport": TRANSPORT_LABELS.get(t.transport, "") if t.kind == resources_pb2.TRUNK_KIND_SIP else "",
                "Username": t.username,
                "Password": "set" if t.password_set else "",
                "Caller ID": CALLER_ID_LABELS.get(t.caller_id_format, ""),
            }
        )
    return row


# --- money -----------------------------------------------------------------------

MICROS_PER_USD = 1_000_000


def format_money(micros: int | None) -> str:
    if micros is None:
        return "—"
    sign = "-" if micros < 0 else ""
    usd = abs(micros) / MICROS_PER_USD
    if 0 < usd < 0.01:
        return f"{sign}${usd:.4f}"
    return f"{sign}${usd:,.2f}"


_MONEY_RE = re.compile(r"^\$?\s*(\d{1,12})(?:\.(\d{1,6}))?$")


def parse_money_to_micros(text: str) -> int:
    """"12.5" / "$12.50" → 12_500_000. Raises ValueError on anything else."""
    m = _MONEY_RE.match((text or "").strip().replace(",", ""))
    if not m:
        raise ValueError("Enter an amount in US dollars, for example 25 or 12.50")
    whole, frac = m.group(1), (m.group(2) or "")
    return int(whole) * MICROS_PER_USD + int(frac.ljust(6, "0"))


def cost_estimate_text(est: batch_pb2.CostEstimate) -> str:
    minutes = est.assumed_minutes_per_call or 3.0
    return (
        f"{est.contacts:,} contacts × {minutes:g} min × "
        f"{format_money(est.rate_micros_per_minute)}/min ≈ {format_money(est.estimated_cost_micros)}"
    )


# --- time ----------------------------------------------------------------------------

UTC = dt.timezone.utc


def ts_to_dt(msg: Any, field_name: str) -> dt.datetime | None:
    """The datetime (UTC, aware) of a Timestamp field, or None when unset."""
    try:
        if not msg.HasField(field_name):
            return None
    except ValueError:
        return None
    ts = getattr(msg, field_name)
    if ts.seconds == 0 and ts.nanos == 0:
        return None
    return ts.ToDatetime(tzinfo=UTC)


def format_dt(value: dt.datetime | None, tz: str = "UTC", empty: str = "—") -> str:
    if value is None:
        return empty
    try:
        zone = ZoneInfo(tz)
    except Exception:
        zone = ZoneInfo("UTC")
    local = value.astimezone(zone)
    # "Jan 15, 2024 10:30 AM" as in the seed's details card.
    text = local.strftime("%b %d, %Y %I:%M %p")
    text = re.sub(r" 0(\d):", r" \1:", text)
    return f"{text} {tz}" if tz and tz != "UTC" else f"{text} UTC"


def format_ts(msg: Any, field_name: str, tz: str = "UTC", empty: str = "—") -> str:
    return format_dt(ts_to_dt(msg, field_name), tz, empty)


def format_duration(seconds: float | None, empty: str = "—") -> str:
    if seconds is None or seconds <= 0:
        return empty
    total = int(round(seconds))
    h, rem = divmod(total, 3600)
    m, s = divmod(rem, 60)
    if h:
        return f"{h}h {m:02d}m {s:02d}s"
    if m:
        return f"{m}m {s:02d}s"
    return f"{s}s"


def format_rate(rate: float) -> str:
    return f"{rate * 100:.1f}%"


def ratio(part: int, whole: int) -> float:
    return (part / whole) if whole else 0.0


@lru_cache(maxsize=1)
def timezone_options() -> list[str]:
    """IANA zones, UTC first."""
    zones = sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/")))
    return ["UTC", *zones]


def scheduled_local_time(date: dt.date, time: dt.time) -> str:
    """The API's wall-clock form, "YYYY-MM-DDTHH:MM:00"."""
    return f"{date.isoformat()}T{time.hour:02d}:{time.minute:02d}:00"


def schedule_instant(date: dt.date, time: dt.time, tz: str) -> dt.datetime:
    return dt.datetime.combine(date, dt.time(time.hour, time.minute), tzinfo=ZoneInfo(tz))


def schedule_is_future(date: dt.date, time: dt.time, tz: str, now: dt.datetime | None = None) -> bool:
    now = now or dt.datetime.now(UTC)
    return schedule_instant(date, time, tz) > now


def hhmm(text: str) -> str | None:
    """Normalise "9:00" → "09:00"; None when not a valid 24 h time."""
    m = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", text or "")
    if not m:
        return None
    h, mi = int(m.group(1)), int(m.group(2))
    if h > 24 or mi > 59 or (h == 24 and mi != 0):
        return None
    return f"{h:02d}:{mi:02d}"


WEEKDAY_NAMES = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def weekday_numbers(names: Iterable[str]) -> list[int]:
    return sorted(WEEKDAY_NAMES.index(n) + 1 for n in names)


def weekday_names(numbers: Iterable[int]) -> list[str]:
    return [WEEKDAY_NAMES[n - 1] for n in sorted(numbers) if 1 <= n <= 7]


def calling_window_text(window: resources_pb2.CallingWindow | None) -> str:
    if window is None or not (window.start_local_time or window.end_local_time):
        return "Any time"
    days = ", ".join(weekday_names(window.weekdays)) if window.weekdays else "every day"
    return f"{window.start_local_time}–{window.end_local_time} callee's local time, {days}"


def calling_window_mode_text(batch: batch_pb2.Batch) -> str:
    mode = {
        resources_pb2.CALLING_WINDOW_MODE_UNSPECIFIED: "Organization default",
        resources_pb2.CALLING_WINDOW_MODE_NONE: "None",
        resources_pb2.CALLING_WINDOW_MODE_CUSTOM: "Custom",
    }.get(batch.calling_window_mode, "?")
    window = batch.calling_window if batch.HasField("calling_window") else None
    return f"{mode}: {calling_window_text(window)}"


# --- create form: checklist -----------------------------------------------------------

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


@dataclass(frozen=True)
class CheckItem:
    ok: bool
    label: str
    detail: str = ""

    @property
    def icon(self) -> str:
        return "✅" if self.ok else "⚠️"

    def markdown(self) -> str:
        tail = f" — {self.detail}" if self.detail else ""
        return f"{self.icon} {self.label}{tail}"


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


# --- batch detail ----------------------------------------------------------------------------


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
        ("Waiting For Calling Window", f"{s.waiting_for_window:,}"),
    ]
    if batch.custom_columns:
        rows.append(("Custom Columns", ", ".join(batch.custom_columns)))
    if batch.status_reason:
        rows.append(("Status Reason", batch.status_reason))
    return rows


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


# --- pagination -------------------------------------------------------------------------------


@dataclass
class PageCursor:
    """Next/previous over opaque page tokens: a stack of the tokens seen."""

    tokens: list[str] = field(default_factory=lambda: [""])
    page_size: int = 50

    @property
    def current(self) -> str:
        return self.tokens[-1]

    @property
    def page_index(self) -> int:
        return len(self.tokens) - 1

    @property
    def offset(self) -> int:
        return self.page_index * self.page_size

    @property
    def has_prev(self) -> bool:
        return len(self.tokens) > 1

    def next(self, next_token: str) -> None:
        if next_token:
            self.tokens.append(next_token)

    def prev(self) -> None:
        if len(self.tokens) > 1:
            self.tokens.pop()

    def reset(self, page_size: int | None = None) -> None:
        self.tokens = [""]
        if page_size is not None:
            self.page_size = page_size


# --- misc -----------------------------------------------------------------------------------------


def split_numbers(text: str) -> list[str]:
    """Phone numbers typed one per line or separated by commas/semicolons."""
    parts = re.split(r"[\s,;]+", text or "")
    seen: dict[str, None] = {}
    for p in parts:
        p = p.strip()
        if p:
            seen.setdefault(p, None)
    return list(seen)


def date_range_to_bounds(
    start: dt.date | None, end: dt.date | None
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """Inclusive UTC date range → [from, to) instants."""
    lo = dt.datetime.combine(start, dt.time(0), tzinfo=UTC) if start else None
    hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(0), tzinfo=UTC) if end else None
    return lo, hi


def export_filename(batch: batch_pb2.Batch, which: str, ext: str) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", batch.display_name or batch.batch_id).strip("-") or "batch"
    return f"{base[:60]}-{which}.{ext}"
