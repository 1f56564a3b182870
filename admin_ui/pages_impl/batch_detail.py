"""Batch detail view (deep link ``?batch=<batchId>``).

Overview cards, details card, live refresh while the batch is live (a
fragment polling GetBatch, so the rest of the page is not reloaded), Plotly
charts, the contacts table with search/filters/pagination, actions and export.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import grpc
import plotly.graph_objects as go
import streamlit as st

from admin_ui import view_models as vm
from admin_ui.client import ApiError, BatchcallsClient, batch_id_of, batch_name
from admin_ui.pages_impl.actions import close_batch, confirm_action_dialog
from admin_ui.pages_impl.common import Ctx, guarded, show_api_error, show_flash

from batchcalls.v1 import batch_service_pb2

LIVE_REFRESH_S = 2.0
CHART_REFRESH_S = 10.0
CHART_CONTACT_LIMIT = 2000


def render(ctx: Ctx, batch_ref: str) -> None:
    client = ctx.client
    bid = batch_id_of(batch_ref)
    if st.button("← All batches", key="detail_back"):
        close_batch()
        st.rerun()
    try:
        batch = client.get_batch(bid)
    except ApiError as err:
        if err.code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
            st.error(f"Batch {vm.user_text(bid)} was not found in your organization (it may have been deleted).")
            return
        raise
    show_flash()

    title_col, status_col = st.columns([5, 1], vertical_alignment="center")
    title_col.title(vm.user_text(batch.display_name or bid))
    status_col.markdown(vm.batch_status_badge(batch.status), unsafe_allow_html=True)
    shown_id = vm.user_text(batch.batch_id or bid)
    st.caption(f"Batch ID {shown_id} · share this view: ?batch={shown_id}")
    if batch.description:
        st.text(batch.description)

    _action_bar(ctx, batch)

    live = vm.is_live(batch.status)
    token = uuid.uuid4().hex
    if live:
        _overview_live(client, batch.name, batch.status, batch, token)
    else:
        _overview_static(client, batch.name, batch.status, batch, token)

    st.subheader("Charts")
    if live:
        _charts_live(client, batch.name)
    else:
        _charts_static(client, batch.name)

    st.subheader("Contacts")
    _contacts_fragment(client, batch.name, batch.max_attempts)

    if vm.action_allowed(batch, vm.ACTION_EXPORT):
        st.subheader("Export")
        guarded(_export_section, client, batch)


def _action_bar(ctx: Ctx, batch: Any) -> None:
    actions = [a for a in vm.allowed_actions(batch) if a in vm.WRITE_ACTIONS]
    if not actions:
        return
    cols = st.columns(len(actions) + 3)
    for col, action in zip(cols, actions, strict=False):
        if col.button(
            f"{vm.ACTION_ICONS[action]} {vm.ACTION_LABELS[action]}",
            key=f"detail_{action}",
            disabled=not ctx.can_write,
            help=None if ctx.can_write else vm.MEMBER_READ_ONLY_REASON,
            width="stretch",
        ):
            confirm_action_dialog(ctx.client, batch.name, batch.display_name, action, batch.timezone or "UTC")


# --- overview (cards + details), live while running ---------------------------------


def _overview_body(
    client: BatchcallsClient, name: str, rendered_status: int, initial: Any = None, run_token: str = ""
) -> None:
    # On a full page run, use the batch the page just read (one GetBatch per
    # run); on the fragment's own timed reruns, poll GetBatch.
    key = f"_overview_token_{name}"
    if initial is not None and st.session_state.get(key) != run_token:
        st.session_state[key] = run_token
        batch = initial
    else:
        try:
            batch = client.get_batch(name)
        except ApiError as err:
            show_api_error(err)
            return
    if batch.status != rendered_status:
        # The status changed (e.g. RUNNING → COMPLETED): actions, export and
        # refresh policy change with it, so rerun the whole page once.
        st.rerun(scope="app")
    cards = vm.overview_cards(batch.stats)
    cols = st.columns(4)
    for col, card in zip(cols, cards, strict=True):
        with col.container(border=True):
            st.metric(f"{card.icon} {card.label}", card.value)
            st.caption(card.caption)
    st.progress(vm.progress_fraction(batch.stats), text=f"{vm.progress_fraction(batch.stats) * 100:.0f}% processed")
    if vm.is_live(batch.status):
        st.caption(f"🔴 Live · refreshed {dt.datetime.now(dt.timezone.utc).strftime('%H:%M:%S')} UTC")
    left, right = st.columns([3, 2])
    with left.container(border=True):
        st.markdown("**Batch information**")
        rows = vm.batch_details_rows(batch)
        lines = ["| Field | Value |", "|---|---|"]
        for k, v in rows:
            value = vm.batch_status_badge(batch.status) if k == "Status" else vm.user_text(v or "—")
            lines.append(f"| {vm.user_text(k)} | {value} |")
        st.markdown("\n".join(lines), unsafe_allow_html=True)
    with right:
        breakdown = vm.status_breakdown(batch.stats)
        if breakdown:
            fig = go.Figure(
                go.Pie(
                    labels=[b[0] for b in breakdown],
                    values=[b[1] for b in breakdown],
                    marker={"colors": [b[2] for b in breakdown]},
                    hole=0.5,
                    sort=False,
                )
            )
            fig.update_layout(title="Status breakdown", height=340, margin={"t": 40, "b": 10, "l": 10, "r": 10})
            st.plotly_chart(fig, key="chart_status", config={"displayModeBar": False})
        else:
            st.caption("No contacts yet.")
        if batch.stats.attempts_histogram:
            hist = sorted(batch.stats.attempts_histogram, key=lambda a: a.attempts)
            fig = go.Figure(go.Bar(x=[f"{h.attempts}" for h in hist], y=[h.contacts for h in hist]))
            fig.update_layout(
                title="Contacts by attempts needed", height=260, xaxis_title="attempts", xaxis_type="category",
                yaxis_tickformat=",d",
                margin={"t": 40, "b": 10, "l": 10, "r": 10},
            )
            st.plotly_chart(fig, key="chart_attempts", config={"displayModeBar": False})


_overview_live = st.fragment(run_every=LIVE_REFRESH_S)(_overview_body)
_overview_static = st.fragment(_overview_body)


# --- charts from the contacts ---------------------------------------------------------------


def _fetch_chart_contacts(client: BatchcallsClient, name: str) -> tuple[list[Any], int]:
    contacts: list[Any] = []
    token = ""
    total = 0
    while len(contacts) < CHART_CONTACT_LIMIT:
        resp = client.list_contacts(name, page_size=100, page_token=token)
        contacts.extend(resp.contacts)
        total = resp.total_size
        token = resp.next_page_token
        if not token:
            break
    return contacts, total


def _charts_body(client: BatchcallsClient, name: str) -> None:
    try:
        contacts, total = _fetch_chart_contacts(client, name)
    except ApiError as err:
        show_api_error(err)
        return
    if len(contacts) < total:
        st.caption(f"Charts use the first {len(contacts):,} of {total:,} contacts.")
    c1, c2 = st.columns(2)
    series = vm.completions_over_time(contacts)
    with c1:
        if series:
            fig = go.Figure()
            for label, color in (("Successful", vm.COLOR_HEX["green"]), ("Failed", vm.COLOR_HEX["red"])):
                pts = [(t, n) for t, n, lab in series if lab == label]
                if pts:
                    fig.add_trace(
                        go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines+markers",
                                   name=label, line={"shape": "hv", "color": color})
                    )
            fig.update_layout(title="Completions over time (cumulative)", height=320,
                              margin={"t": 40, "b": 10, "l": 10, "r": 10}, yaxis_title="contacts",
                              yaxis_tickformat=",d")
            st.plotly_chart(fig, key="chart_completions", config={"displayModeBar": False})
        else:
            st.caption("No finished calls yet.")
    with c2:
        durations = vm.durations_of(contacts)
        if durations:
            fig = go.Figure(go.Histogram(x=durations, nbinsx=min(30, max(5, len(durations) // 3)),
                                         marker={"color": vm.COLOR_HEX["blue"]}))
            fig.update_layout(title="Call duration distribution", height=320, xaxis_title="seconds",
                              yaxis_title="calls", yaxis_tickformat=",d", margin={"t": 40, "b": 10, "l": 10, "r": 10})
            st.plotly_chart(fig, key="chart_durations", config={"displayModeBar": False})
        else:
            st.caption("No connected calls yet.")


_charts_live = st.fragment(run_every=CHART_REFRESH_S)(_charts_body)
_charts_static = st.fragment(_charts_body)


# --- contacts table -------------------------------------------------------------------------------


@st.fragment
def _contacts_fragment(client: BatchcallsClient, name: str, max_attempts: int) -> None:
    bid = batch_id_of(name)
    labels = [vm.contact_status_label(s) for s in vm.CONTACT_STATUS_FILTER_ORDER]
    f1, f2, f3, f4 = st.columns([3, 3, 2, 2])
    search = f1.text_input("Search", key=f"ct_search_{bid}", placeholder="Phone, name or status…")
    chosen = f2.multiselect("Status", labels, key=f"ct_status_{bid}", placeholder="All statuses")
    top = max(int(max_attempts or 10), 1)
    lo, hi = f3.slider("Attempts", min_value=0, max_value=top, value=(0, top), key=f"ct_attempts_{bid}")
    dates = f4.date_input("Last attempt (UTC dates)", value=(), key=f"ct_dates_{bid}")
    p1, p2 = st.columns([1, 5])
    page_size = p1.selectbox("Page size", [25, 50, 100], index=1, key=f"ct_page_size_{bid}")

    start = end = None
    if isinstance(dates, (tuple, list)):
        if len(dates) >= 1:
            start = dates[0]
        if len(dates) >= 2:
            end = dates[1]
    elif isinstance(dates, dt.date):
        start = end = dates
    frm, to = vm.date_range_to_bounds(start, end)
    statuses = [vm.contact_status_from_label(x) for x in chosen]

    ckey = f"ct_cursor_{bid}"
    cursor: vm.PageCursor = st.session_state.setdefault(ckey, vm.PageCursor(page_size=page_size))
    sig = (search.strip(), tuple(statuses), lo, hi, frm, to, page_size)
    if st.session_state.get(ckey + "_sig") != sig:
        cursor.reset(page_size)
        st.session_state[ckey + "_sig"] = sig
    try:
        resp = client.list_contacts(
            name,
            page_size=page_size,
            page_token=cursor.current,
            statuses=statuses,
            min_attempts=lo if lo > 0 else None,
            max_attempts=hi if hi < top else None,
            last_attempt_from=frm,
            last_attempt_to=to,
            search=search.strip(),
        )
    except ApiError as err:
        show_api_error(err)
        return
    rows = [vm.contact_row(c) for c in resp.contacts]
    p2.write("")
    p2.caption(vm.showing_text(len(rows), resp.total_size, cursor.offset))
    event = st.dataframe(
        rows,
        hide_index=True,
        width="stretch",
        key=f"ct_table_{bid}",
        on_select="rerun",
        selection_mode="single-row",
        column_config={
            "Contact": st.column_config.TextColumn(width="medium"),
            "Failure Reason": st.column_config.TextColumn(width="medium"),
        },
    )
    n1, n2, _ = st.columns([1, 1, 6])
    if n1.button("← Previous", disabled=not cursor.has_prev, key=f"ct_prev_{bid}"):
        cursor.prev()
        st.rerun(scope="fragment")
    if n2.button("Next →", disabled=not resp.next_page_token, key=f"ct_next_{bid}"):
        cursor.next(resp.next_page_token)
        st.rerun(scope="fragment")
    selected = []
    try:
        selected = list(event.selection.rows)  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001 - selection API absent (tests)
        selected = []
    if selected and selected[0] < len(resp.contacts):
        _contact_detail(client, resp.contacts[selected[0]].name)
    else:
        st.caption("Select a row to see every attempt of the contact.")


def _contact_detail(client: BatchcallsClient, contact_name: str) -> None:
    try:
        c = client.get_contact(contact_name)
    except ApiError as err:
        show_api_error(err)
        return
    with st.container(border=True):
        st.markdown(
            f"**{vm.user_text(c.display_name or c.phone_number)}** · {vm.user_text(c.phone_number)} · "
            + vm.contact_status_badge(c.status),
            unsafe_allow_html=True,
        )
        meta = []
        if c.email:
            meta.append(c.email)
        if c.timezones:
            meta.append("timezone " + ", ".join(c.timezones) + (" (fallback)" if c.timezone_fallback else ""))
        if c.wait_reason:
            meta.append(f"waiting: {c.wait_reason}")
        if c.HasField("consent_time"):
            meta.append(f"consent {vm.format_ts(c, 'consent_time')} {c.consent_source}".rstrip())
        if meta:
            st.caption(" · ".join(vm.user_text(m) for m in meta))
        if (why := vm.callability_view(c)) is not None:  # issue 16: why it waits
            st.caption(vm.user_text(why["summary"]))
            if why["reason"]:
                st.caption(vm.user_text(why["reason"]))
            st.dataframe(why["rules"], hide_index=True, width="stretch")
        if c.variables:
            st.json(dict(c.variables), expanded=False)
        _call_result(c)
        if c.attempt_details:
            st.dataframe(
                [
                    {
                        "#": a.attempt_number,
                        "Outcome": vm.OUTCOME_LABELS.get(a.outcome, "?"),
                        "Start": vm.format_ts(a, "start_time"),
                        "Answered": vm.format_ts(a, "answer_time"),
                        "End": vm.format_ts(a, "end_time"),
                        "Duration": vm.format_duration(a.duration_seconds),
                        "SIP": a.sip_code or "",
                        "Cost": vm.format_money(a.cost_micros),
                        "Recording": a.recording_uri,
                        "Agent result": vm.DISPOSITION_LABELS.get(a.result.disposition, "")
                        if a.HasField("result") else "",
                    }
                    for a in c.attempt_details
                ],
                hide_index=True,
                width="stretch",
            )
            transcripts = [a for a in c.attempt_details if a.transcript]
            for a in transcripts:
                with st.expander(f"Transcript of attempt {a.attempt_number}"):
                    st.text(a.transcript)
        else:
            st.caption("No attempt yet.")


def _call_result(c: Any) -> None:
    """What the agent reported (ResultsService): labels in markdown through
    user_text, free text in plain-text sinks, the recording as a link button
    (http(s) only)."""
    view = vm.call_result_view(c)
    if view is None:
        return
    line = f"**Agent result:** {vm.user_text(view['disposition'])} · answered by {vm.user_text(view['answered_by'])}"
    if view["callback"]:
        line += f" · callback {vm.user_text(view['callback'])}"
    st.markdown(line)
    if view["summary"]:
        st.text(view["summary"])
    if view["recording"]:
        st.link_button("Open recording", view["recording"])
    elif view["recording_text"]:
        st.text(f"Recording: {view['recording_text']}")
    if view["fields"]:
        st.dataframe(view["fields"], hide_index=True, width="stretch")
    if view["transcript"]:
        with st.expander("Agent transcript"):
            st.text(view["transcript"])


# --- export ---------------------------------------------------------------------------------------------


def _exporter(client: BatchcallsClient, name: str, flt: int, fmt: int):
    def produce() -> bytes:
        try:
            return client.export_batch(name, filter=flt, format=fmt).content
        except ApiError as err:
            raise RuntimeError(err.readable()) from None

    return produce


def _export_section(client: BatchcallsClient, batch: Any) -> None:
    st.caption(
        "CSV columns: contact name, phone number, call status, attempts, call duration, failure reason, "
        "call timestamp, custom variables, then the agent's result: disposition, answered by, summary and "
        "one column per extracted field. Phone numbers are plain E.164; other cells that could be read as spreadsheet "
        "formulas are prefixed with ' ."
    )
    cols = st.columns(4)
    options = [
        ("CSV — all contacts", batch_service_pb2.EXPORT_FILTER_ALL, batch_service_pb2.EXPORT_FORMAT_CSV, "all", "csv",
         "text/csv"),
        ("CSV — successful only", batch_service_pb2.EXPORT_FILTER_SUCCESSFUL, batch_service_pb2.EXPORT_FORMAT_CSV,
         "successful", "csv", "text/csv"),
        ("CSV — failed only", batch_service_pb2.EXPORT_FILTER_FAILED, batch_service_pb2.EXPORT_FORMAT_CSV, "failed",
         "csv", "text/csv"),
        ("PDF report", batch_service_pb2.EXPORT_FILTER_ALL, batch_service_pb2.EXPORT_FORMAT_PDF, "report", "pdf",
         "application/pdf"),
    ]
    for col, (label, flt, fmt, which, ext, mime) in zip(cols, options, strict=True):
        col.download_button(
            f"⬇️ {label}",
            data=_exporter(client, batch_name(batch.name), flt, fmt),
            file_name=vm.export_filename(batch, which, ext),
            mime=mime,
            key=f"export_{which}_{ext}",
            on_click="ignore",
            width="stretch",
        )
