"""Phone numbers page: caller numbers and their outbound trunks."""

from __future__ import annotations

import streamlit as st

from admin_ui import view_models as vm
from admin_ui.client import ApiError, BatchcallsClient
from admin_ui.pages_impl.common import Ctx, flash, read_only_notice, show_api_error, show_flash

from batchcalls.v1 import resources_pb2

TRUNK_CHOICES = {"none": "No outbound trunk", "simulated": "Simulated", "sip": "SIP trunk"}


def render(ctx: Ctx) -> None:
    st.title("☎️ Phone Numbers")
    show_flash()
    st.caption("A number needs an outbound trunk to be chosen as the From number of a batch. "
               "Trunk passwords are write-only: they are never shown again.")
    numbers = ctx.client.list_all_phone_numbers()
    if numbers:
        st.dataframe([vm.phone_number_row(n) for n in numbers], hide_index=True, width="stretch")
        paced = [pacing_row(n) for n in numbers if n.HasField("outbound_trunk")]
        if paced:
            st.markdown("**Calls per second** — per trunk, across all dialers; lowered while the carrier "
                        "pushes back (503, Retry-After, channel limit)")
            st.dataframe(paced, hide_index=True, width="stretch")
    else:
        st.info("No phone numbers yet.")
    if not ctx.can_write:
        read_only_notice(ctx, "Members can view phone numbers; owners and admins can add and remove them")
        return

    left, right = st.columns([3, 2])
    with left:
        _create_form(ctx)
    with right:
        if numbers:
            nmap = {n.name: n for n in numbers}
            st.markdown("**Remove a number**")
            chosen = st.selectbox("Number", list(nmap), format_func=lambda n: vm.phone_option_label(nmap[n]),
                                  key="pn_delete_pick")
            st.caption("A running batch calling from it fails with a reason.")
            if st.button("🗑️ Remove number", key="pn_delete"):
                _confirm_delete(ctx.client, chosen, nmap[chosen].phone_number)


def pacing_row(number: resources_pb2.PhoneNumber) -> dict[str, str]:
    """A trunk's calls-per-second settings and pacing state (docs/pacing.md)."""
    p = number.pacing_state
    configured = number.outbound_trunk.calls_per_second
    effective = p.effective_calls_per_second if number.HasField("pacing_state") else configured
    return {
        "Number": number.phone_number,
        "Calls per second": f"{configured:g}",
        "Effective": f"{effective:.3g}",
        "State": f"Throttled until {vm.format_ts(p, 'throttled_until_time')}" if p.throttled else "OK",
        "Push-backs in a row": str(p.consecutive_pushbacks) if p.consecutive_pushbacks else "",
        "Last push-back": vm.format_ts(p, "last_pushback_time", empty=""),
    }


def _create_form(ctx: Ctx) -> None:
    st.markdown("**Add a number**")
    kind = st.radio("Outbound trunk", list(TRUNK_CHOICES), format_func=TRUNK_CHOICES.get, horizontal=True,
                    key="pn_kind", index=1)
    with st.form("pn_create", clear_on_submit=False):
        number = st.text_input("Phone number (E.164) *", placeholder="+12025550100")
        label = st.text_input("Label", max_chars=200)
        trunk = None
        if kind == "sip":
            c1, c2, c3 = st.columns([3, 1, 1])
            host = c1.text_input("Host *", placeholder="sip.carrier.example")
            port = c2.number_input("Port", min_value=1, max_value=65535, value=5060)
            transport = c3.selectbox("Transport", [resources_pb2.SIP_TRANSPORT_UDP, resources_pb2.SIP_TRANSPORT_TCP],
                                     format_func=vm.TRANSPORT_LABELS.get)
            u1, u2 = st.columns(2)
            username = u1.text_input("Username")
            password = u2.text_input("Password (write-only)", type="password")
            cid = st.selectbox("Caller ID format", list(vm.CALLER_ID_LABELS)[1:], format_func=vm.CALLER_ID_LABELS.get)
            trunk = resources_pb2.OutboundTrunk(
                kind=resources_pb2.TRUNK_KIND_SIP, host=host.strip(), port=int(port), transport=transport,
                username=username.strip(), password=password, caller_id_format=cid,
            )
        elif kind == "simulated":
            st.caption("The built-in simulated carrier and agent (demos and tests).")
            s1, s2 = st.columns(2)
            mean = s1.number_input("Mean call seconds (0 = 180)", min_value=0.0, value=0.0)
            ring = s2.number_input("Ring seconds (0 = 5)", min_value=0.0, value=0.0)
            with st.expander("Outcome weights (all 0 = built-in mix)"):
                w = {}
                wc = st.columns(4)
                for i, f in enumerate(["completed", "no_answer", "busy", "timeout", "invalid_number", "blocked",
                                       "carrier_error", "agent_error", "voicemail"]):
                    w[f] = wc[i % 4].number_input(f.replace("_", " "), min_value=0.0, value=0.0, key=f"pn_w_{f}")
            trunk = resources_pb2.OutboundTrunk(
                kind=resources_pb2.TRUNK_KIND_SIMULATED,
                simulation=resources_pb2.SimulationProfile(
                    mean_call_seconds=mean, ring_seconds=ring, **{f"weight_{k}": v for k, v in w.items()}
                ),
            )
        if trunk is not None:
            trunk.calls_per_second = st.number_input(
                "Calls per second (the carrier's limit for this trunk)", min_value=0.1, max_value=1000.0,
                value=1.0, step=1.0, help="Call attempts started per second on this trunk, by all dialers together.")
        if st.form_submit_button("Add number", type="primary"):
            pn = resources_pb2.PhoneNumber(phone_number=number.strip(), display_name=label.strip())
            if trunk is not None:
                pn.outbound_trunk.CopyFrom(trunk)
            try:
                created = ctx.client.create_phone_number(pn)
            except ApiError as err:
                show_api_error(err, what="The number was not added")
            else:
                flash(f"Number {vm.user_text(created.phone_number)} added.")
                st.rerun()


@st.dialog("Remove phone number")
def _confirm_delete(client: BatchcallsClient, name: str, e164: str) -> None:
    st.warning(f"Remove {vm.user_text(e164)}? Batches calling from it will fail. This action cannot be undone.")
    c1, c2 = st.columns(2)
    if c1.button("Confirm remove", type="primary"):
        try:
            client.delete_phone_number(name)
        except ApiError as err:
            show_api_error(err, what="The number was not removed")
            return
        flash(f"Number {vm.user_text(e164)} removed.")
        st.rerun()
    if c2.button("Close"):
        st.rerun()
