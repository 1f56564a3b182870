"""Pure formatting and state helpers of the admin UI (no Streamlit, no I/O),
one module per section of the UI:

- ``statuses``: status labels, colors and badges;
- ``actions``: batch actions as offered (the server says which are allowed);
- ``roles``: what each role may do;
- ``formatting``: money, timestamps, durations;
- ``schedule``: start times, time zones and calling windows;
- ``catalog``: agents, phone numbers and trunks;
- ``create_form``: the create form's checklist, request and validation report;
- ``batch_list``, ``batch_detail``, ``contacts``, ``charts``: the batch pages;
- ``pagination``, ``dnc``: page tokens and the do-not-call input;
- ``escaping``: ``user_text``, the one way user data enters markdown/HTML.

Pages import the package as ``vm`` and use the names re-exported here, so a
page does not need to know which module holds a helper. Everything is unit
tested without a server.
"""

from __future__ import annotations

from admin_ui.view_models.actions import (
    ACTION_CANCEL,
    ACTION_DELETE,
    ACTION_EXPORT,
    ACTION_ICONS,
    ACTION_LABELS,
    ACTION_OF_API,
    ACTION_PAUSE,
    ACTION_RESCHEDULE,
    ACTION_RESUME,
    ACTION_VIEW,
    ALL_ACTIONS,
    WRITE_ACTIONS,
    action_allowed,
    action_confirm_text,
    allowed_actions,
)
from admin_ui.view_models.batch_detail import (
    Card,
    batch_details_rows,
    export_filename,
    overview_cards,
)
from admin_ui.view_models.batch_list import (
    batch_list_row,
    is_live,
    progress_fraction,
)
from admin_ui.view_models.catalog import (
    ARCHITECTURE_LABELS,
    CALLER_ID_LABELS,
    TRANSPORT_LABELS,
    TRUNK_KIND_LABELS,
    agent_option_label,
    agent_row,
    phone_number_row,
    phone_option_label,
)
from admin_ui.view_models.charts import (
    completions_over_time,
    durations_of,
    status_breakdown,
)
from admin_ui.view_models.contacts import (
    DISPOSITION_LABELS,
    call_result_view,
    callability_view,
    contact_row,
    date_range_to_bounds,
    showing_text,
)
from admin_ui.view_models.create_form import (
    MAX_NAME_LEN,
    CheckItem,
    CreateFormState,
    build_create_request,
    checklist_ready,
    duplicate_rows_table,
    invalid_rows_table,
    report_metrics,
    review_checklist,
    suppressed_rows_table,
)
from admin_ui.view_models.dnc import (
    split_numbers,
)
from admin_ui.view_models.formatting import (
    MICROS_PER_USD,
    UTC,
    cost_estimate_text,
    format_dt,
    format_duration,
    format_money,
    format_rate,
    format_ts,
    parse_money_to_micros,
    ratio,
    ts_to_dt,
)
from admin_ui.view_models.pagination import (
    PageCursor,
)
from admin_ui.view_models.roles import (
    MEMBER_READ_ONLY_REASON,
    OWNER_ONLY_REASON,
    ROLE_LABELS,
    Role,
    can_write,
    is_owner,
    role_label,
)
from admin_ui.view_models.schedule import (
    WEEKDAY_NAMES,
    calling_window_mode_text,
    calling_window_text,
    hhmm,
    schedule_instant,
    schedule_is_future,
    scheduled_local_time,
    timezone_options,
    weekday_names,
    weekday_numbers,
)
from admin_ui.view_models.escaping import user_text
from admin_ui.view_models.statuses import (
    BATCH_STATUS_FILTER_ORDER,
    BATCH_STATUS_INFO,
    BS,
    COLOR_HEX,
    CONTACT_STATUS_FILTER_ORDER,
    CONTACT_STATUS_INFO,
    CS,
    OUTCOME_LABELS,
    STATUS_EMOJI,
    badge_html,
    batch_status_badge,
    batch_status_color,
    batch_status_from_label,
    batch_status_label,
    contact_status_badge,
    contact_status_color,
    contact_status_from_label,
    contact_status_label,
    status_with_dot,
)

__all__ = [
    "user_text",
    "ACTION_CANCEL",
    "ACTION_DELETE",
    "ACTION_EXPORT",
    "ACTION_ICONS",
    "ACTION_LABELS",
    "ACTION_OF_API",
    "ACTION_PAUSE",
    "ACTION_RESCHEDULE",
    "ACTION_RESUME",
    "ACTION_VIEW",
    "ALL_ACTIONS",
    "ARCHITECTURE_LABELS",
    "BATCH_STATUS_FILTER_ORDER",
    "BATCH_STATUS_INFO",
    "BS",
    "CALLER_ID_LABELS",
    "COLOR_HEX",
    "CONTACT_STATUS_FILTER_ORDER",
    "CONTACT_STATUS_INFO",
    "CS",
    "MAX_NAME_LEN",
    "MEMBER_READ_ONLY_REASON",
    "MICROS_PER_USD",
    "OUTCOME_LABELS",
    "OWNER_ONLY_REASON",
    "ROLE_LABELS",
    "STATUS_EMOJI",
    "TRANSPORT_LABELS",
    "TRUNK_KIND_LABELS",
    "UTC",
    "WEEKDAY_NAMES",
    "WRITE_ACTIONS",
    "Card",
    "CheckItem",
    "CreateFormState",
    "PageCursor",
    "Role",
    "action_allowed",
    "action_confirm_text",
    "agent_option_label",
    "agent_row",
    "allowed_actions",
    "badge_html",
    "batch_details_rows",
    "batch_list_row",
    "batch_status_badge",
    "batch_status_color",
    "batch_status_from_label",
    "batch_status_label",
    "build_create_request",
    "calling_window_mode_text",
    "calling_window_text",
    "can_write",
    "checklist_ready",
    "completions_over_time",
    "DISPOSITION_LABELS",
    "call_result_view",
    "callability_view",
    "contact_row",
    "contact_status_badge",
    "contact_status_color",
    "contact_status_from_label",
    "contact_status_label",
    "cost_estimate_text",
    "date_range_to_bounds",
    "duplicate_rows_table",
    "durations_of",
    "export_filename",
    "format_dt",
    "format_duration",
    "format_money",
    "format_rate",
    "format_ts",
    "hhmm",
    "invalid_rows_table",
    "is_live",
    "is_owner",
    "overview_cards",
    "parse_money_to_micros",
    "phone_number_row",
    "phone_option_label",
    "progress_fraction",
    "ratio",
    "report_metrics",
    "review_checklist",
    "role_label",
    "schedule_instant",
    "schedule_is_future",
    "scheduled_local_time",
    "showing_text",
    "split_numbers",
    "status_breakdown",
    "status_with_dot",
    "suppressed_rows_table",
    "timezone_options",
    "ts_to_dt",
    "weekday_names",
    "weekday_numbers",
]
