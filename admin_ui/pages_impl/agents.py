"""Agents page: the organization's voice agents."""

from __future__ import annotations

import streamlit as st

from admin_ui import view_models as vm
from admin_ui.client import ApiError
from admin_ui.pages_impl.common import Ctx, flash, read_only_notice, show_api_error, show_flash

from batchcalls.v1 import resources_pb2

ARCHS = [
    resources_pb2.AGENT_ARCHITECTURE_PIPELINE,
    resources_pb2.AGENT_ARCHITECTURE_REALTIME,
    resources_pb2.AGENT_ARCHITECTURE_TEXT,
]


def render(ctx: Ctx) -> None:
    st.title("🤖 Agents")
    show_flash()
    st.caption("Only active Pipeline or Realtime agents can be chosen for a batch; text agents cannot make calls.")
    agents = ctx.client.list_all_agents()
    if agents:
        st.dataframe([vm.agent_row(a) for a in agents], hide_index=True, width="stretch")
    else:
        st.info("No agents yet.")
    if not ctx.can_write:
        read_only_notice(ctx, "Members can view agents; owners and admins can create and change them")
        return

    create_col, edit_col = st.columns(2)
    with create_col, st.form("agent_create", clear_on_submit=True):
        st.markdown("**New agent**")
        name = st.text_input("Name *", max_chars=200)
        arch = st.selectbox("Architecture *", ARCHS, format_func=lambda a: vm.ARCHITECTURE_LABELS[a])
        active = st.checkbox("Active", value=True)
        rec = st.checkbox("Recording enabled")
        tr = st.checkbox("Transcript enabled")
        if st.form_submit_button("Create agent", type="primary"):
            try:
                a = ctx.client.create_agent(
                    resources_pb2.Agent(
                        display_name=name.strip(), architecture=arch, active=active,
                        recording_enabled=rec, transcript_enabled=tr,
                    )
                )
            except ApiError as err:
                show_api_error(err, what="The agent was not created")
            else:
                flash(f"Agent “{vm.user_text(a.display_name)}” created.")
                st.rerun()

    with edit_col:
        if not agents:
            return
        amap = {a.name: a for a in agents}
        chosen = st.selectbox("Edit agent", list(amap), format_func=lambda n: vm.agent_option_label(amap[n]),
                              key="agent_edit_pick")
        a = amap[chosen]
        with st.form(f"agent_edit_{a.agent_id or a.name}"):
            name = st.text_input("Name", value=a.display_name, max_chars=200)
            arch = st.selectbox("Architecture", ARCHS, index=ARCHS.index(a.architecture) if a.architecture in ARCHS
                                else 0, format_func=lambda x: vm.ARCHITECTURE_LABELS[x])
            active = st.checkbox("Active", value=a.active,
                                 help="Deactivating an agent stops running batches that use it (with a reason).")
            rec = st.checkbox("Recording enabled", value=a.recording_enabled)
            tr = st.checkbox("Transcript enabled", value=a.transcript_enabled)
            if st.form_submit_button("Save changes"):
                upd = resources_pb2.Agent(name=a.name, display_name=name.strip(), architecture=arch,
                                          active=active, recording_enabled=rec, transcript_enabled=tr)
                try:
                    ctx.client.update_agent(upd, ["display_name", "architecture", "active", "recording_enabled",
                                                  "transcript_enabled"])
                except ApiError as err:
                    show_api_error(err, what="The agent was not updated")
                else:
                    flash(f"Agent “{vm.user_text(upd.display_name)}” saved.")
                    st.rerun()
