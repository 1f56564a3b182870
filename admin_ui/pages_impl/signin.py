"""Sign-in with an API key, kept in st.session_state only."""

from __future__ import annotations

import streamlit as st

from admin_ui import view_models as vm
from admin_ui.client import ApiError
from admin_ui.pages_impl.common import SS_API_KEY, SS_ORG, client_for, grpc_address, show_api_error


def signed_in() -> bool:
    return bool(st.session_state.get(SS_API_KEY)) and st.session_state.get(SS_ORG) is not None


def sign_out() -> None:
    for k in (SS_API_KEY, SS_ORG):
        st.session_state.pop(k, None)


def try_sign_in(api_key: str) -> ApiError | None:
    api_key = (api_key or "").strip()
    client = client_for(api_key)
    try:
        resp = client.get_organization()
    except ApiError as err:
        return err
    st.session_state[SS_API_KEY] = api_key
    st.session_state[SS_ORG] = resp
    return None


def render() -> None:
    st.title("📞 batchcalls admin")
    st.caption(f"Server: {vm.user_text(grpc_address())}")
    with st.form("signin"):
        key = st.text_input(
            "API key",
            type="password",
            # Always empty: a default (e.g. from the environment) would be
            # served to every visitor of the page. What a user types stays
            # in that user's session only.
            value="",
            autocomplete="off",
            help="Owner, admin or member key of your organization. It stays in this browser session only.",
            key="signin_key",
        )
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        if not key.strip():
            st.error("Enter an API key.")
            return
        err = try_sign_in(key)
        if err is None:
            st.rerun()
        if err.is_unauthenticated:
            st.error("This API key is not valid (unknown or revoked).")
        else:
            show_api_error(err, what="Sign-in failed")


def sidebar_identity() -> None:
    resp = st.session_state[SS_ORG]
    with st.sidebar:
        st.markdown(f"### {vm.user_text(resp.organization.display_name)}")
        st.markdown(
            vm.badge_html(vm.role_label(resp.role), "green" if vm.can_write(resp.role) else "gray"),
            unsafe_allow_html=True,
        )
        if not vm.can_write(resp.role):
            st.caption(vm.MEMBER_READ_ONLY_REASON + ".")
        if st.button("Sign out", key="signout"):
            sign_out()
            st.query_params.clear()
            st.rerun()
