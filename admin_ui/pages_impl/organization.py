"""Organization settings: concurrency, credits, default calling window, caps."""

from __future__ import annotations

import streamlit as st

from admin_ui import view_models as vm
from admin_ui.client import ApiError
from admin_ui.pages_impl.common import Ctx, flash, read_only_notice, show_api_error, show_flash

from batchcalls.v1 import organization_service_pb2, resources_pb2


def render(ctx: Ctx) -> None:
    org = ctx.org
    st.title("🏢 Organization")
    show_flash()
    c = st.columns(4)
    c[0].metric("Organization", org.display_name)
    c[1].metric("Your role", vm.role_label(ctx.role))
    c[2].metric("Credit balance", vm.format_money(org.credit_balance_micros))
    c[3].metric("Concurrency limit", f"{org.concurrency_limit} calls",
                help=f"{org.reserved_concurrency} reserved: batches use at most "
                     f"{org.concurrency_limit - org.reserved_concurrency}")
    window = org.default_calling_window if org.HasField("default_calling_window") else None
    st.markdown(
        "\n".join(
            [
                f"- **Organization ID:** `{org.organization_id}`",
                f"- **Default calling window:** "
                + ("call at any time (owner's choice; federal and state calling rules still apply)"
                   if org.calling_any_time else vm.calling_window_text(window)),
                (f"- **Reserved capacity:** {org.reserved_concurrency} of {org.concurrency_limit} slots kept "
                 f"free of batch calls (batches use at most {org.concurrency_limit - org.reserved_concurrency})"),
                f"- **Consent required in uploads:** {'yes' if org.require_consent else 'no'}",
                f"- **Frequency cap:** {org.frequency_cap_per_24h or 'none'} calls per number per 24 h",
                f"- **Circuit breaker:** pause when more than {org.circuit_breaker_threshold * 100:.0f}% of the "
                f"last {org.circuit_breaker_window} attempts are carrier errors, blocked or agent errors",
                f"- **Credits enforced:** {'yes' if org.credits_enforced else 'no'}",
                f"- **Created:** {vm.format_ts(org, 'create_time')}",
            ]
        )
    )
    if not ctx.is_owner:
        read_only_notice(ctx, "Only owners can change organization settings and top up credits")
        return

    left, right = st.columns([3, 2])
    with left, st.form("org_settings"):
        st.markdown("**Settings**")
        name = st.text_input("Name", value=org.display_name, max_chars=200)
        limit = st.number_input("Concurrency limit (live calls across all batches)", min_value=1, max_value=500,
                                value=max(1, min(500, org.concurrency_limit or 1)))
        reserve = st.number_input("Reserved capacity (slots kept free of batch calls; below the limit)",
                                  min_value=0, max_value=499, value=max(0, org.reserved_concurrency))
        cap = st.number_input("Frequency cap (calls to one number per 24 h, 0 = none)", min_value=0, max_value=1000,
                              value=org.frequency_cap_per_24h)
        any_time = st.checkbox(
            "Call at any time (no default window; federal and state calling rules still apply)",
            value=org.calling_any_time,
        )
        w1, w2 = st.columns(2)
        start = w1.text_input("Opens (HH:MM)", value=window.start_local_time if window else "08:00")
        end = w2.text_input("Closes (HH:MM)", value=window.end_local_time if window else "21:00")
        days = st.multiselect("Weekdays (empty = every day)", vm.WEEKDAY_NAMES,
                              default=vm.weekday_names(window.weekdays) if window else vm.WEEKDAY_NAMES[:5])
        b1, b2 = st.columns(2)
        cbw = b1.number_input("Circuit breaker window (attempts)", min_value=0, max_value=10000,
                              value=org.circuit_breaker_window)
        cbt = b2.number_input("Circuit breaker threshold (0–1)", min_value=0.0, max_value=1.0,
                              value=float(org.circuit_breaker_threshold), step=0.05)
        enforced = st.checkbox("A batch needs a positive balance to start", value=org.credits_enforced)
        consent = st.checkbox("Uploaded CSVs must have a consent_at column (rows without valid consent are suppressed)",
                              value=org.require_consent)
        if st.form_submit_button("Save settings", type="primary"):
            upd = organization_service_pb2.Organization(
                name=org.name, display_name=name.strip(), concurrency_limit=int(limit),
                frequency_cap_per_24h=int(cap), circuit_breaker_window=int(cbw),
                circuit_breaker_threshold=float(cbt), credits_enforced=enforced,
                calling_any_time=any_time, require_consent=consent, reserved_concurrency=int(reserve),
            )
            if not any_time:
                s, e = vm.hhmm(start), vm.hhmm(end)
                if not s or not e:
                    st.error("Use HH:MM (24 h) for the calling window.")
                    return
                upd.default_calling_window.CopyFrom(
                    resources_pb2.CallingWindow(start_local_time=s, end_local_time=e,
                                                weekdays=vm.weekday_numbers(days))
                )
            try:
                ctx.client.update_organization(
                    upd,
                    ["display_name", "concurrency_limit", "frequency_cap_per_24h", "default_calling_window",
                     "circuit_breaker_window", "circuit_breaker_threshold", "credits_enforced",
                     "calling_any_time", "require_consent", "reserved_concurrency"],
                )
            except ApiError as err:
                show_api_error(err, what="Settings not saved")
            else:
                flash("Settings saved.")
                st.rerun()
    with right, st.form("org_topup", clear_on_submit=True):
        st.markdown("**Top up credits**")
        amount = st.text_input("Amount (USD)", placeholder="25.00")
        if st.form_submit_button("Add credits"):
            try:
                micros = vm.parse_money_to_micros(amount)
                if micros <= 0:
                    raise ValueError("Enter a positive amount")
            except ValueError as exc:
                st.error(vm.user_text(exc))
                return
            try:
                o = ctx.client.top_up_credits(micros)
            except ApiError as err:
                show_api_error(err, what="Credits not added")
            else:
                flash(f"{vm.format_money(micros)} added; balance {vm.format_money(o.credit_balance_micros)}.")
                st.rerun()
