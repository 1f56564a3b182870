"""API keys page: list, create (secret shown once), delete."""

from __future__ import annotations

import streamlit as st

from admin_ui import view_models as vm
from admin_ui.client import ApiError, BatchcallsClient
from admin_ui.pages_impl.common import Ctx, flash, read_only_notice, show_api_error, show_flash

from batchcalls.v1 import resources_pb2

K_NEW_SECRET = "apikeys_new_secret"
ROLES = [resources_pb2.ROLE_OWNER, resources_pb2.ROLE_ADMIN, resources_pb2.ROLE_MEMBER]


def render(ctx: Ctx) -> None:
    st.title("🔑 API Keys")
    show_flash()
    new = st.session_state.get(K_NEW_SECRET)
    if new:
        label, secret = new
        with st.container(border=True):
            st.success(f"Key “{vm.user_text(label)}” created. Copy the secret now: it is shown only once and stored hashed.")
            st.code(secret, language=None)
            st.caption("Send it as `authorization: Bearer <secret>`.")
            if st.button("I have copied it", key="apikeys_dismiss"):
                st.session_state.pop(K_NEW_SECRET, None)
                st.rerun()

    if not ctx.can_write:
        # The API lists keys to owners and admins only.
        st.info("Only owners and admins can see this organization's API keys.")
        return
    keys = []
    token = ""
    for _ in range(20):
        resp = ctx.client.list_api_keys(page_size=100, page_token=token)
        keys.extend(resp.api_keys)
        token = resp.next_page_token
        if not token:
            break
    own = ctx.org_response.api_key
    st.dataframe(
        [
            {
                "Name": k.display_name,
                "Role": vm.role_label(k.role),
                "Prefix": f"{k.prefix}…" if k.prefix else "",
                "Created": vm.format_ts(k, "create_time"),
                "Last used": vm.format_ts(k, "last_used_time", empty="never"),
                "This session": "✓" if k.name == own else "",
                "Resource": k.name,
            }
            for k in keys
        ],
        hide_index=True,
        width="stretch",
    )
    if not ctx.is_owner:
        read_only_notice(ctx, "Only owners can create and revoke API keys")
        return

    left, right = st.columns(2)
    with left, st.form("apikey_create", clear_on_submit=True):
        st.markdown("**New key**")
        name = st.text_input("Name *", max_chars=200, placeholder="e.g. CRM integration")
        role = st.selectbox("Role", ROLES, index=1, format_func=vm.role_label,
                            help="Owners manage everything; admins create and manage batches; members read.")
        if st.form_submit_button("Create key", type="primary"):
            try:
                resp = ctx.client.create_api_key(name.strip(), role)
            except ApiError as err:
                show_api_error(err, what="The key was not created")
            else:
                st.session_state[K_NEW_SECRET] = (resp.api_key.display_name, resp.secret)
                st.rerun()
    with right:
        others = {k.name: k for k in keys}
        if others:
            st.markdown("**Revoke a key**")
            chosen = st.selectbox("Key", list(others),
                                  format_func=lambda n: f"{others[n].display_name} ({vm.role_label(others[n].role)})"
                                  + (" — this session" if n == own else ""), key="apikey_delete_pick")
            if st.button("🗑️ Revoke key", key="apikey_delete"):
                _confirm_delete(ctx.client, chosen, others[chosen].display_name, chosen == own)


@st.dialog("Revoke API key")
def _confirm_delete(client: BatchcallsClient, name: str, label: str, is_own: bool) -> None:
    st.warning(f"Revoke “{vm.user_text(label)}”? Anything using it stops working. This action cannot be undone.")
    if is_own:
        st.error("This is the key you are signed in with: you will be signed out.")
    c1, c2 = st.columns(2)
    if c1.button("Confirm revoke", type="primary"):
        try:
            client.delete_api_key(name)
        except ApiError as err:
            show_api_error(err, what="The key was not revoked")
            return
        flash(f"Key “{vm.user_text(label)}” revoked.")
        if is_own:
            from admin_ui.pages_impl.signin import sign_out

            sign_out()
        st.rerun()
    if c2.button("Close"):
        st.rerun()
