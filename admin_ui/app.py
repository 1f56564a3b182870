"""batchcalls admin UI (Streamlit + Plotly), a client of the gRPC API only.

Run: ``streamlit run admin_ui/app.py`` (server address from
BATCHCALLS_GRPC_ADDR, default 127.0.0.1:50051).
"""

from __future__ import annotations

import os
import sys

# `streamlit run admin_ui/app.py` puts admin_ui/ (not the repository) on
# sys.path; make the package importable when it is not installed.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import streamlit as st  # noqa: E402

from admin_ui.client import ApiError  # noqa: E402
from admin_ui.pages_impl import (  # noqa: E402
    agents,
    api_keys,
    batch_calls,
    dnc,
    organization,
    phone_numbers,
    signin,
)
from admin_ui.pages_impl.common import (  # noqa: E402
    SS_API_KEY,
    SS_ORG,
    Ctx,
    client_for,
    guarded,
    show_api_error,
)

PAGES = {
    "Batch Calls": batch_calls.render,
    "Agents": agents.render,
    "Phone Numbers": phone_numbers.render,
    "API Keys": api_keys.render,
    "Do-Not-Call List": dnc.render,
    "Organization": organization.render,
}
PAGE_SLUGS = {
    "batch-calls": "Batch Calls",
    "agents": "Agents",
    "phone-numbers": "Phone Numbers",
    "api-keys": "API Keys",
    "do-not-call": "Do-Not-Call List",
    "organization": "Organization",
}


def _nav_changed() -> None:
    # Leaving (or re-clicking) a page closes an open batch detail view.
    if "batch" in st.query_params:
        del st.query_params["batch"]


def main() -> None:
    st.set_page_config(page_title="Batch Calls · batchcalls", page_icon="📞", layout="wide")
    if not signin.signed_in():
        guarded(signin.render)
        return

    client = client_for(st.session_state[SS_API_KEY])
    # Fresh organization and role on every run (role or credits may change).
    try:
        st.session_state[SS_ORG] = client.get_organization()
    except ApiError as err:
        show_api_error(err)
        if err.is_unauthenticated:
            if st.button("Sign in again"):
                signin.sign_out()
                st.rerun()
        signin.sidebar_identity()
        return
    ctx = Ctx(client=client, org_response=st.session_state[SS_ORG])
    signin.sidebar_identity()

    slug = st.query_params.get("page", "")
    default = PAGE_SLUGS.get(slug, "Batch Calls")
    if st.query_params.get("batch"):
        default = "Batch Calls"
    if "nav_page" not in st.session_state or (
        st.query_params.get("batch") and st.session_state.get("nav_page") != "Batch Calls"
    ):
        st.session_state["nav_page"] = default
    page = st.sidebar.radio("Go to", list(PAGES), key="nav_page", on_change=_nav_changed)
    slug_now = next(k for k, v in PAGE_SLUGS.items() if v == page)
    if st.query_params.get("page", "batch-calls") != slug_now:
        st.query_params["page"] = slug_now
    guarded(PAGES[page], ctx)


main()
