"""Shared page plumbing: session, client, error display, guards."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import streamlit as st

from admin_ui import view_models as vm
from admin_ui.client import ApiError, BatchcallsClient, grpc_address_from_env

SS_API_KEY = "bc_api_key"
SS_ORG = "bc_org"  # GetOrganizationResponse of the signed-in key
SS_FLASH = "bc_flash"


@dataclass
class Ctx:
    """What every page needs: the client and who is calling."""

    client: BatchcallsClient
    org_response: Any  # organization_service_pb2.GetOrganizationResponse

    @property
    def org(self) -> Any:
        return self.org_response.organization

    @property
    def role(self) -> int:
        return self.org_response.role

    @property
    def can_write(self) -> bool:
        return vm.can_write(self.role)

    @property
    def is_owner(self) -> bool:
        return vm.is_owner(self.role)

    @property
    def address(self) -> str:
        return self.client.address


def grpc_address() -> str:
    return grpc_address_from_env()


def client_for(api_key: str) -> BatchcallsClient:
    return BatchcallsClient(grpc_address(), api_key)


def show_api_error(err: ApiError, *, what: str = "") -> None:
    """A readable message for a failed call: never a traceback."""
    if err.code == grpc.StatusCode.UNAVAILABLE:
        st.error(
            f"🔌 Cannot reach the batchcalls server at {vm.user_text(err.address or grpc_address())}. "
            "Check that it is running (`batchcalls up`) and that BATCHCALLS_GRPC_ADDR points to it; "
            "this page will work again as soon as it answers.",
        )
        return
    prefix = f"{what}: " if what else ""
    head = err.message or err.readable().splitlines()[0]
    lines = [f"{vm.user_text(prefix)}{vm.user_text(head)}"]
    if err.field_violations:
        lines.append("")
        lines.extend(
            f"- **{vm.user_text(v.field or 'request')}**: {vm.user_text(v.description)}" for v in err.field_violations
        )
    if err.reason:
        lines.append("")
        lines.append(f"{vm.user_text(err.code_name)} · reason {vm.user_text(err.reason)}")
    else:
        lines.append("")
        lines.append(vm.user_text(err.code_name))
    if err.code == grpc.StatusCode.UNAUTHENTICATED:
        lines.append("")
        lines.append("Your API key is not accepted any more: sign out and sign in with a valid key.")
    st.error("\n".join(lines))


def guarded(fn: Callable[..., Any], *args: Any, what: str = "", **kwargs: Any) -> Any:
    """Runs a page body; API errors become messages, never tracebacks."""
    try:
        return fn(*args, **kwargs)
    except ApiError as err:
        show_api_error(err, what=what)
    except Exception as err:  # noqa: BLE001 - last line of defence for the UI
        st.error(f"Something went wrong: {type(err).__name__}: {vm.user_text(err)}")
        with st.expander("Technical details"):
            st.code(traceback.format_exc())
    return None


def flash(message: str, icon: str = "✅") -> None:
    """A message shown once on the next run (survives st.rerun).

    ``message`` is markdown: wrap user data in ``vm.user_text``."""
    st.session_state[SS_FLASH] = (message, icon)


def show_flash() -> None:
    item = st.session_state.pop(SS_FLASH, None)
    if item:
        message, icon = item
        st.success(message, icon=icon)


def read_only_notice(ctx: Ctx, reason: str = vm.MEMBER_READ_ONLY_REASON) -> None:
    st.info(f"🔒 {reason}.", icon="ℹ️")


def write_help(ctx: Ctx, owner_only: bool = False) -> str | None:
    """The tooltip of a disabled write control, None when allowed."""
    if owner_only and not ctx.is_owner:
        return vm.OWNER_ONLY_REASON
    if not ctx.can_write:
        return vm.MEMBER_READ_ONLY_REASON
    return None


def badge(html_snippet: str) -> None:
    """Renders HTML built by ``vm.badge_html`` (which escapes its label)."""
    st.markdown(html_snippet, unsafe_allow_html=True)
