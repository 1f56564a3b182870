"""Batch actions (pause, resume, cancel, delete, reschedule) behind a confirm dialog."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from admin_ui import view_models as vm
from admin_ui.client import ApiError, BatchcallsClient, batch_id_of
from admin_ui.pages_impl.common import flash, show_api_error

QP_BATCH = "batch"


def open_batch(batch_id: str) -> None:
    """Switches to the detail view (the shareable ?batch=<id> deep link)."""
    st.query_params[QP_BATCH] = batch_id_of(batch_id)


def close_batch() -> None:
    if QP_BATCH in st.query_params:
        del st.query_params[QP_BATCH]


K_PENDING = "pending_batch_action"


def confirm_action_dialog(client: BatchcallsClient, name: str, label: str, action: str, tz: str = "UTC") -> None:
    """Asks for confirmation of an action.

    The request is kept in session state and the dialog is opened by
    render_pending_action() at the end of the page, so it stays open across
    full reruns until it is confirmed, closed or dismissed.
    """
    st.session_state[K_PENDING] = {"name": name, "label": label, "action": action, "tz": tz}


def render_pending_action(client: BatchcallsClient) -> None:
    pending = st.session_state.get(K_PENDING)
    if pending:
        _action_dialog(client, pending["name"], pending["label"], pending["action"], pending["tz"])


def _clear_pending() -> None:
    st.session_state.pop(K_PENDING, None)


@st.dialog("Confirm", on_dismiss=_clear_pending)
def _action_dialog(client: BatchcallsClient, name: str, label: str, action: str, tz: str = "UTC") -> None:
    st.markdown(f"### {vm.ACTION_ICONS.get(action, '')} {vm.ACTION_LABELS.get(action, action)} batch")
    text = vm.action_confirm_text(action, vm.user_text(label))
    if action in (vm.ACTION_CANCEL, vm.ACTION_DELETE):
        st.warning(text)
    else:
        st.write(text)
    local = ""
    zone = tz
    if action == vm.ACTION_RESCHEDULE:
        tzs = vm.timezone_options()
        d = st.date_input("New date", value=dt.date.today() + dt.timedelta(days=1), min_value=dt.date.today(),
                          key="resched_date")
        t = st.time_input("New time (HH:MM)", value=dt.time(9, 0), step=60, key="resched_time")
        zone = st.selectbox("Timezone", tzs, index=tzs.index(tz) if tz in tzs else 0, key="resched_tz")
        local = vm.scheduled_local_time(d, t)
        if not vm.schedule_is_future(d, t, zone):
            st.warning("The new time must be in the future.")
    c1, c2 = st.columns(2)
    if c1.button(f"Confirm {vm.ACTION_LABELS.get(action, action).lower()}", type="primary", key="dlg_confirm"):
        try:
            if action == vm.ACTION_PAUSE:
                client.pause_batch(name)
            elif action == vm.ACTION_RESUME:
                client.resume_batch(name)
            elif action == vm.ACTION_CANCEL:
                client.cancel_batch(name)
            elif action == vm.ACTION_DELETE:
                client.delete_batch(name)
                if st.query_params.get(QP_BATCH) == batch_id_of(name):
                    del st.query_params[QP_BATCH]
            elif action == vm.ACTION_RESCHEDULE:
                client.reschedule_batch(name, local, zone)
        except ApiError as err:
            show_api_error(err, what=f"{vm.ACTION_LABELS.get(action, action)} failed")
            return
        _clear_pending()
        done = {
            vm.ACTION_PAUSE: "paused",
            vm.ACTION_RESUME: "resumed",
            vm.ACTION_CANCEL: "cancelled",
            vm.ACTION_DELETE: "deleted",
            vm.ACTION_RESCHEDULE: f"rescheduled to {local.replace('T', ' ')[:16]} {zone}",
        }.get(action, "updated")
        flash(f"Batch “{vm.user_text(label)}” {done}.")
        st.rerun()
    if c2.button("Close", key="dlg_close"):
        _clear_pending()
        st.rerun()
