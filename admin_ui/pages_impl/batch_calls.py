"""Batch Calls page: tab "Create New" (default) and tab "Your Batches".

A ``?batch=<batchId>`` query parameter opens the batch detail view instead
(a shareable deep link).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import streamlit as st

from admin_ui import view_models as vm
from admin_ui.client import ApiError, batch_id_of, new_request_id
from admin_ui.pages_impl import batch_detail
from admin_ui.pages_impl.actions import QP_BATCH, confirm_action_dialog, open_batch, render_pending_action
from admin_ui.pages_impl.common import Ctx, flash, guarded, show_api_error, show_flash, write_help


# session keys of the create form
K_NONCE = "create_nonce"
K_REQUEST_ID = "create_request_id"
K_VALIDATION = "create_validation"  # (key, response | None, ApiError | None)

WINDOW_CHOICES = {
    "org": "Organization default",
    "none": "None (call at any time)",
    "custom": "Custom window",
}


def render(ctx: Ctx) -> None:
    batch = st.query_params.get(QP_BATCH)
    if batch:
        guarded(batch_detail.render, ctx, batch)
    else:
        st.title("📞 Batch Calls")
        show_flash()
        tab_create, tab_list = st.tabs(["Create New", "Your Batches"])
        with tab_create:
            guarded(render_create, ctx)
        with tab_list:
            guarded(render_list, ctx)
    # The confirm dialog of a requested action (list or detail view).
    guarded(render_pending_action, ctx.client)


# ---------------------------------------------------------------------------
# Create New
# ---------------------------------------------------------------------------


def _k(name: str) -> str:
    """Widget key of the current create form (a new nonce resets the form)."""
    return f"create_{st.session_state.setdefault(K_NONCE, 0)}_{name}"


def render_create(ctx: Ctx) -> None:
    client = ctx.client
    disabled = not ctx.can_write
    if disabled:
        st.info(f"🔒 {vm.MEMBER_READ_ONLY_REASON}.")
    request_id = st.session_state.setdefault(K_REQUEST_ID, new_request_id())

    st.subheader("1 · Upload contacts")
    st.caption(
        "CSV with a **phone** column (any case), numbers in E.164 (+12025550123); optional "
        "**name**, **email** and custom columns. Up to 10,000 contacts, 10 MB."
    )
    up_col, region_col = st.columns([3, 1])
    with up_col:
        uploaded = st.file_uploader(
            "Upload CSV (drag and drop or browse)",
            type=["csv"],
            key=_k("csv"),
            max_upload_size=10,
            disabled=disabled,
        )
    with region_col:
        region = st.text_input(
            "Default region",
            key=_k("region"),
            max_chars=2,
            placeholder="e.g. US",
            help="ISO country code used for numbers written without +country code. "
            "Empty: such numbers are invalid.",
            disabled=disabled,
        ).strip().upper()

    report = None
    estimate = None
    csv_bytes = b""
    filename = ""
    if uploaded is not None:
        csv_bytes = uploaded.getvalue()
        filename = uploaded.name
        vkey = hashlib.sha256(csv_bytes).hexdigest() + "|" + filename + "|" + region
        cached = st.session_state.get(K_VALIDATION)
        if not cached or cached[0] != vkey:
            try:
                with st.spinner("Validating contacts…"):
                    resp = client.validate_contacts(csv_bytes, filename, region)
                cached = (vkey, resp, None)
            except ApiError as err:
                cached = (vkey, None, err)
            st.session_state[K_VALIDATION] = cached
        _, resp, err = cached
        if err is not None:
            show_api_error(err, what="The CSV could not be validated")
        elif resp is not None:
            report = resp.report
            estimate = resp.cost_estimate if resp.HasField("cost_estimate") else None
            render_validation_report(report)
            if estimate is not None:
                st.info(f"💰 **Estimated cost:** {vm.cost_estimate_text(estimate)}")

    st.subheader("2 · Configure the batch")
    form = vm.CreateFormState(report=report)
    left, right = st.columns(2)
    with left:
        form.name = st.text_input(
            "Batch name *",
            key=_k("name"),
            max_chars=vm.MAX_NAME_LEN,
            placeholder="e.g. 2024-01-Payment-Reminders",
            disabled=disabled,
        )
        description = st.text_area(
            "Description",
            key=_k("description"),
            placeholder="Internal notes about the campaign",
            disabled=disabled,
            height=80,
        )
    with right:
        agents = client.list_all_agents(voice_only=True)
        agent_map = {a.name: a for a in agents}
        form.agent = st.selectbox(
            "Agent *",
            options=list(agent_map),
            index=0 if len(agent_map) == 1 else None,
            format_func=lambda n: vm.agent_option_label(agent_map[n]),
            placeholder="Choose a voice agent",
            key=_k("agent"),
            help="Active Pipeline or Realtime agents (text agents cannot make calls).",
            disabled=disabled,
        ) or ""
        if not agents:
            st.warning("No active voice agent in this organization: add one on the Agents page.")
        numbers = client.list_all_phone_numbers(with_outbound_trunk_only=True)
        number_map = {n.name: n for n in numbers}
        form.from_number = st.selectbox(
            "From phone number *",
            options=list(number_map),
            index=0 if len(number_map) == 1 else None,
            format_func=lambda n: vm.phone_option_label(number_map[n]),
            placeholder="Choose a caller number",
            key=_k("from"),
            help="Registered numbers with an outbound trunk.",
            disabled=disabled,
        ) or ""
        if not numbers:
            st.warning("No phone number with an outbound trunk: add one on the Phone Numbers page.")
    c1, c2 = st.columns(2)
    form.concurrency = int(
        c1.number_input(
            "Concurrent call limit",
            min_value=1,
            max_value=50,
            value=5,
            step=1,
            key=_k("concurrency"),
            help="Default 5, max 50. Recommended 5–10 for most campaigns. "
            f"The organization limit ({ctx.org.concurrency_limit}) applies across all batches.",
            disabled=disabled,
        )
    )
    form.max_attempts = int(
        c2.number_input(
            "Max retry attempts",
            min_value=1,
            max_value=10,
            value=3,
            step=1,
            key=_k("attempts"),
            help="Default 3. No answer, busy and timeout are retried (after 5 min, then 30 min); "
            "voicemail after 60 min unless it counts as done.",
            disabled=disabled,
        )
    )
    with st.expander("Retries by outcome and voicemail"):
        form.voicemail_done = st.checkbox(
            "A voicemail counts as done (the agent leaves a message); otherwise it is retried later",
            key=_k("vm_done"), disabled=disabled,
        )
        r = st.columns(4)
        for i, (word, label, hint) in enumerate((("busy", "Busy", "5, 30"), ("no_answer", "No answer", "5, 30"),
                                                  ("timeout", "Timeout", "5, 30"), ("voicemail", "Voicemail", "60"))):
            form.retry_minutes[word] = r[i].text_input(
                f"{label}: minutes before attempt 2, 3, …", placeholder=hint, key=_k(f"retry_{word}"),
                help="Empty = the default shown. Up to 10 delays, each at most 7 days.", disabled=disabled,
            )

    st.markdown("**Schedule** (optional)")
    form.schedule_enabled = st.checkbox(
        "Schedule start time (leave unchecked to start immediately)", key=_k("schedule"), disabled=disabled
    )
    if form.schedule_enabled:
        s1, s2, s3 = st.columns(3)
        tomorrow = dt.date.today() + dt.timedelta(days=1)
        form.schedule_date = s1.date_input("Date", value=tomorrow, min_value=dt.date.today(), key=_k("date"),
                                           disabled=disabled)
        form.schedule_time = s2.time_input("Time (HH:MM)", value=dt.time(9, 0), step=60, key=_k("time"),
                                           disabled=disabled)
        tzs = vm.timezone_options()
        form.timezone = s3.selectbox("Timezone", tzs, index=0, key=_k("tz"), disabled=disabled)

    st.markdown("**Calling window**")
    org_window = ctx.org.default_calling_window if ctx.org.HasField("default_calling_window") else None
    form.window_mode = st.radio(
        "Calling window",
        options=list(WINDOW_CHOICES),
        format_func=lambda k: WINDOW_CHOICES[k]
        + (f" ({vm.calling_window_text(org_window)})" if k == "org" else ""),
        key=_k("window_mode"),
        horizontal=True,
        label_visibility="collapsed",
        disabled=disabled,
    )
    if form.window_mode == "custom":
        w1, w2, w3 = st.columns([1, 1, 2])
        form.window_start = w1.text_input("Opens (HH:MM)", value="09:00", key=_k("win_start"), disabled=disabled)
        form.window_end = w2.text_input("Closes (HH:MM)", value="18:00", key=_k("win_end"), disabled=disabled)
        form.window_days = w3.multiselect(
            "Weekdays (empty = every day)", vm.WEEKDAY_NAMES, default=vm.WEEKDAY_NAMES[:5],
            key=_k("win_days"), disabled=disabled,
        )
        st.caption("The window is applied in each callee's local time.")
    with st.expander("Advanced"):
        max_minutes = st.number_input(
            "Maximum call duration (minutes, 0 = default 30)", min_value=0, max_value=240, value=0,
            key=_k("max_minutes"), disabled=disabled,
        )

    st.subheader("3 · Review & create")
    items = vm.review_checklist(form)
    st.markdown("\n".join(f"- {i.markdown()}" for i in items))
    ready = vm.checklist_ready(items)
    if st.button(
        "🚀 Create batch",
        type="primary",
        disabled=disabled or not ready,
        help=write_help(ctx) or (None if ready else "Complete the checklist first"),
        key=_k("create"),
    ):
        req = vm.build_create_request(
            form,
            request_id=request_id,
            description=description,
            csv_content=csv_bytes,
            filename=filename,
            default_region=region,
            max_call_duration_seconds=int(max_minutes) * 60,
        )
        try:
            with st.spinner("Creating batch…"):
                resp = client.create_batch(req)
        except ApiError as err:
            show_api_error(err, what="The batch was not created")
            return
        batch = resp.batch
        # A fresh form (and a fresh idempotency key) for the next batch.
        st.session_state[K_NONCE] = st.session_state.get(K_NONCE, 0) + 1
        st.session_state[K_REQUEST_ID] = new_request_id()
        st.session_state.pop(K_VALIDATION, None)
        flash(f"Batch “{vm.user_text(batch.display_name)}” created with {batch.stats.total_contacts:,} contacts.")
        open_batch(batch.batch_id or batch.name)
        st.rerun()


def render_validation_report(r: Any) -> None:
    st.markdown("#### Validation report")
    metrics = vm.report_metrics(r)
    for chunk in (metrics[:4], metrics[4:]):
        cols = st.columns(4)
        for col, (icon, label, value) in zip(cols, chunk, strict=False):
            col.metric(f"{icon} {label}", value)
    info = []
    info.append("Header detected" if r.header_detected else "No header row detected")
    if r.delimiter:
        info.append(
            "delimiter "
            + {"\t": "tab", ",": "comma", ";": "semicolon"}.get(r.delimiter, vm.user_text(repr(r.delimiter)))
        )
    info.append(
        "custom columns: " + ", ".join(vm.user_text(c) for c in r.custom_columns)
        if r.custom_columns
        else "no custom columns"
    )
    st.caption(" · ".join(info))
    for w in r.warnings:
        st.warning(vm.user_text(w))
    if r.valid_rows == 0:
        st.error("No valid contacts in this file: fix the rows below and upload it again.")
    if r.invalid_rows:
        with st.expander(f"⚠️ Invalid rows ({r.invalid_count:,})", expanded=True):
            st.dataframe(vm.invalid_rows_table(r), hide_index=True, width="stretch")
            if r.invalid_count > len(r.invalid_rows):
                st.caption(f"First {len(r.invalid_rows):,} of {r.invalid_count:,} shown.")
    if r.duplicate_rows:
        with st.expander(f"⚠️ Duplicate phones ({r.duplicate_count:,})"):
            st.dataframe(vm.duplicate_rows_table(r), hide_index=True, width="stretch")
    if r.suppressed_rows:
        with st.expander(f"⚠️ On the do-not-call list ({r.suppressed_count:,})"):
            st.caption("These contacts will not be called.")
            st.dataframe(vm.suppressed_rows_table(r), hide_index=True, width="stretch")


# ---------------------------------------------------------------------------
# Your Batches
# ---------------------------------------------------------------------------

K_LIST_CURSOR = "batches_cursor"
K_LIST_SIG = "batches_filter_sig"


def render_list(ctx: Ctx) -> None:
    client = ctx.client
    f1, f2, f3, f4 = st.columns([3, 3, 1, 1])
    labels = [vm.batch_status_label(s) for s in vm.BATCH_STATUS_FILTER_ORDER]
    chosen = f1.multiselect("Status", labels, key="batches_status_filter", placeholder="All statuses")
    search = f2.text_input("Search", key="batches_search", placeholder="Batch name contains…")
    page_size = f3.selectbox("Per page", [10, 20, 50], index=1, key="batches_page_size")
    f4.write("")
    f4.button("🔄 Refresh", key="batches_refresh")
    statuses = [vm.batch_status_from_label(x) for x in chosen]

    cursor: vm.PageCursor = st.session_state.setdefault(K_LIST_CURSOR, vm.PageCursor(page_size=page_size))
    sig = (tuple(statuses), search.strip(), page_size)
    if st.session_state.get(K_LIST_SIG) != sig:
        cursor.reset(page_size)
        st.session_state[K_LIST_SIG] = sig
    resp = client.list_batches(
        statuses=statuses, search=search.strip(), page_size=page_size, page_token=cursor.current
    )
    if not resp.batches:
        if cursor.has_prev:
            cursor.prev()
            st.rerun()
        st.info("No batches yet." if not (statuses or search) else "No batch matches these filters.")
        return

    head = st.columns([2.6, 1.2, 1.5, 1.6, 5.5])
    for col, text in zip(head, ["Batch", "Status", "Progress", "Created", "Actions"], strict=True):
        col.markdown(f"**{text}**")
    for b in resp.batches:
        _batch_row(ctx, b)

    p1, p2, p3 = st.columns([1, 3, 1])
    if p1.button("← Previous", disabled=not cursor.has_prev, key="batches_prev"):
        cursor.prev()
        st.rerun()
    first = cursor.offset + 1
    last = cursor.offset + len(resp.batches)
    p2.caption(f"Page {cursor.page_index + 1} · batches {first:,}–{last:,} of {resp.total_size:,}")
    if p3.button("Next →", disabled=not resp.next_page_token, key="batches_next"):
        cursor.next(resp.next_page_token)
        st.rerun()


def _batch_row(ctx: Ctx, b: Any) -> None:
    bid = b.batch_id or batch_id_of(b.name)
    with st.container(border=True):
        c = st.columns([2.6, 1.2, 1.5, 1.6, 5.5], vertical_alignment="center")
        c[0].markdown(f"**{vm.user_text(b.display_name)}**  \n{vm.user_text(bid)}")
        c[1].markdown(vm.batch_status_badge(b.status), unsafe_allow_html=True)
        s = b.stats
        c[2].progress(vm.progress_fraction(s), text=vm.batch_list_row(b)["Progress"])
        c[3].caption(vm.format_ts(b, "create_time"))
        # The server's action matrix row for this batch (Batch.allowed_actions).
        actions = vm.allowed_actions(b)
        bcols = c[4].columns(len(actions))
        for col, action in zip(bcols, actions, strict=True):
            write = action in vm.WRITE_ACTIONS
            if col.button(
                f"{vm.ACTION_ICONS[action]} {vm.ACTION_LABELS[action]}",
                key=f"row_{bid}_{action}",
                help=(vm.MEMBER_READ_ONLY_REASON if write and not ctx.can_write else vm.ACTION_LABELS[action]),
                disabled=write and not ctx.can_write,
                width="stretch",
            ):
                if action in (vm.ACTION_VIEW, vm.ACTION_EXPORT):
                    open_batch(bid)
                    st.rerun()
                else:
                    confirm_action_dialog(ctx.client, b.name, b.display_name, action, b.timezone or "UTC")
