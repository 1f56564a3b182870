"""Do-not-call list: add, remove, list, CSV import."""

from __future__ import annotations

import streamlit as st

from admin_ui import view_models as vm
from admin_ui.client import ApiError
from admin_ui.pages_impl.common import Ctx, flash, read_only_notice, show_api_error, show_flash

K_CURSOR = "dnc_cursor"
K_SIG = "dnc_sig"


def render(ctx: Ctx) -> None:
    st.title("🚫 Do-Not-Call List")
    show_flash()
    st.caption("Contacts whose number is on this list end Suppressed without a call, in every batch.")
    s1, s2 = st.columns([4, 1])
    search = s1.text_input("Search", key="dnc_search", placeholder="Number contains…").strip()
    page_size = s2.selectbox("Per page", [25, 50, 100], index=1, key="dnc_page_size")
    cursor: vm.PageCursor = st.session_state.setdefault(K_CURSOR, vm.PageCursor(page_size=page_size))
    if st.session_state.get(K_SIG) != (search, page_size):
        cursor.reset(page_size)
        st.session_state[K_SIG] = (search, page_size)
    resp = ctx.client.list_do_not_call_numbers(page_size=page_size, page_token=cursor.current, search=search)
    rows = [
        {"Phone": e.phone_number, "Reason": e.reason, "Added": vm.format_ts(e, "create_time")} for e in resp.entries
    ]
    st.caption(f"Showing {len(rows):,} of {resp.total_size:,} numbers")
    if rows:
        st.dataframe(rows, hide_index=True, width="stretch")
    n1, n2, _ = st.columns([1, 1, 6])
    if n1.button("← Previous", disabled=not cursor.has_prev, key="dnc_prev"):
        cursor.prev()
        st.rerun()
    if n2.button("Next →", disabled=not resp.next_page_token, key="dnc_next"):
        cursor.next(resp.next_page_token)
        st.rerun()

    if not ctx.can_write:
        read_only_notice(ctx, "Members can view the do-not-call list; owners and admins can change it")
        return

    add_tab, remove_tab, import_tab = st.tabs(["Add numbers", "Remove numbers", "Import CSV"])
    with add_tab, st.form("dnc_add", clear_on_submit=True):
        text = st.text_area("Numbers (E.164, one per line or comma separated)", placeholder="+14155552671")
        reason = st.text_input("Reason", placeholder="e.g. customer request")
        if st.form_submit_button("Add to list", type="primary"):
            nums = vm.split_numbers(text)
            if not nums:
                st.warning("Enter at least one number.")
            else:
                try:
                    r = ctx.client.add_do_not_call_numbers(nums, reason.strip())
                except ApiError as err:
                    show_api_error(err, what="The numbers were not added")
                else:
                    flash(f"{r.added_count:,} added, {r.already_listed_count:,} already listed.")
                    st.rerun()
    with remove_tab, st.form("dnc_remove", clear_on_submit=True):
        on_page = [e.phone_number for e in resp.entries]
        picked = st.multiselect("Numbers on this page", on_page)
        text = st.text_area("Or type numbers", placeholder="+14155552671")
        if st.form_submit_button("Remove from list"):
            nums = list(dict.fromkeys([*picked, *vm.split_numbers(text)]))
            if not nums:
                st.warning("Choose or enter at least one number.")
            else:
                try:
                    r = ctx.client.remove_do_not_call_numbers(nums)
                except ApiError as err:
                    show_api_error(err, what="The numbers were not removed")
                else:
                    flash(f"{r.removed_count:,} removed.")
                    st.rerun()
    with import_tab:
        up = st.file_uploader("CSV with a phone column (or one number a line)", type=["csv"], key="dnc_csv",
                              max_upload_size=10)
        c1, c2 = st.columns(2)
        region = c1.text_input("Default region", max_chars=2, key="dnc_region", placeholder="e.g. US")
        reason = c2.text_input("Reason", key="dnc_import_reason")
        if st.button("Import", disabled=up is None, key="dnc_import", type="primary") and up is not None:
            try:
                with st.spinner("Importing…"):
                    r = ctx.client.import_do_not_call_numbers(up.getvalue(), up.name, region.strip().upper(),
                                                              reason.strip())
            except ApiError as err:
                show_api_error(err, what="The import failed")
            else:
                st.success(f"{r.added_count:,} added, {r.already_listed_count:,} already listed.")
                if r.HasField("report") and r.report.invalid_count:
                    st.warning(f"{r.report.invalid_count:,} invalid rows were skipped.")
                    st.dataframe(vm.invalid_rows_table(r.report), hide_index=True)
