"""The admin UI driven headless with streamlit.testing.v1.AppTest.

Each scenario runs against the real server on the embedded stack, from the session
  fixture ``stack`` of tests/conftest.py (``stack.grpc_address``,
  ``stack.new_org(name)`` → owner/admin/member keys, agent, caller number).
"""

from __future__ import annotations

import datetime as dt
import html
import re
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "admin_ui" / "app.py")
CSV = (
    b"phone,name,plan\n"
    b"+14155552671,Ann Lee,gold\n"
    b"+442071838750,Bob Smith,silver\n"
    b"not-a-number,Bad Row,\n"
    b"+14155552671,Ann Again,\n"
    b",,\n"
)


@pytest.fixture()
def backend(stack_with_dialer, monkeypatch):
    stack = stack_with_dialer
    b = SimpleNamespace(grpc_address=stack.grpc_address, new_org=stack.new_org)
    monkeypatch.setenv("BATCHCALLS_GRPC_ADDR", b.grpc_address)
    return b


def new_app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    return at


def texts(at: AppTest) -> str:
    """The page's markdown as a reader sees it: user data is escaped for
    markdown and HTML (vm.user_text), so undo the escapes; HTML tags the UI
    writes itself (badges) stay."""
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [e.value for e in at.error] + [w.value for w in at.warning] + [i.value for i in at.info]
    parts += [s.value for s in at.success]
    return html.unescape(re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", "\n".join(str(p) for p in parts)))


def sign_in(at: AppTest, key: str) -> AppTest:
    at.text_input(key="signin_key").input(key)
    at.button[0].click()
    at.run()
    assert not at.exception, at.exception
    return at


def button(at: AppTest, label_part: str):
    found = [b for b in at.button if label_part in b.label]
    assert found, f"no button with {label_part!r} in {[b.label for b in at.button]}"
    return found[0]


def text_input(at: AppTest, label_part: str):
    return next(t for t in at.text_input if t.label.startswith(label_part))


def create_batch(at: AppTest, name: str, csv: bytes = CSV) -> str:
    at.file_uploader[0].set_value(("contacts.csv", csv, "text/csv"))
    at.run()
    assert not at.exception, at.exception
    text_input(at, "Batch name").input(name)
    at.run()
    b = button(at, "Create batch")
    assert not b.disabled
    b.click()
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    bid = at.query_params.get("batch")
    assert bid, "the new batch's detail view did not open"
    return bid if isinstance(bid, str) else bid[0]


def wait_for_status(at: AppTest, label: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        at.run()
        assert not at.exception, at.exception
        if f">{label}</span>" in texts(at):
            return
        time.sleep(1)
    raise AssertionError(f"batch did not reach {label}: {texts(at)[:2000]}")


def test_sign_in_rejects_a_bad_key(backend):
    at = new_app()
    sign_in(at, "definitely-not-a-key")
    assert any("not valid" in e.value for e in at.error)


def test_server_down_shows_a_banner(monkeypatch):
    monkeypatch.setenv("BATCHCALLS_GRPC_ADDR", "127.0.0.1:9")
    at = new_app()
    sign_in(at, "any")
    assert any("Cannot reach the batchcalls server at 127.0.0.1:9" in e.value for e in at.error)


def test_owner_creates_a_batch_and_sees_it_complete(backend):
    keys = backend.new_org("AppTest Owner Org")
    at = sign_in(new_app(), keys.owner_key)
    assert "AppTest Owner Org" in texts(at)
    assert [t.label for t in at.tabs][:2] == ["Create New", "Your Batches"]

    at.file_uploader[0].set_value(("contacts.csv", CSV, "text/csv"))
    at.run()
    assert not at.exception, at.exception
    metrics = {m.label.split(" ", 1)[1]: m.value for m in at.metric}
    assert metrics["Total rows"] == "5"
    assert metrics["Valid rows"] == "2"
    assert metrics["Invalid rows"] == "1"
    assert metrics["Duplicate phones"] == "1"
    invalid = at.dataframe[0].value
    assert list(invalid["Row"]) == [4]
    assert "Estimated cost" in texts(at)
    assert "⚠️ Batch name entered" in texts(at)

    text_input(at, "Batch name").input("AppTest batch")
    at.run()
    assert "✅ Batch name entered" in texts(at)
    button(at, "Create batch").click()
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    bid = at.query_params.get("batch")
    assert bid
    assert "created with 2 contacts" in texts(at)
    labels = [m.label for m in at.metric]
    assert labels[:4] == ["👥 Total Contacts", "✅ Successful Calls", "❌ Failed Calls", "🕒 Processing"]
    assert at.metric[0].value == "2"

    wait_for_status(at, "Completed")
    assert "Showing 2 of 2 contacts" in texts(at)
    assert {d.label for d in at.get("download_button")} >= {
        "⬇️ CSV — all contacts", "⬇️ CSV — successful only", "⬇️ CSV — failed only", "⬇️ PDF report"}

    # deep link in a fresh session
    at2 = sign_in(new_app(), keys.member_key)
    at2.query_params["batch"] = bid
    at2.run()
    assert not at2.exception, at2.exception
    assert "AppTest batch" in [t.value for t in at2.title]
    assert "Batch information" in texts(at2)


def test_member_is_read_only(backend):
    keys = backend.new_org("AppTest Member Org")
    owner = sign_in(new_app(), keys.owner_key)
    create_batch(owner, "Owner's batch")

    at = sign_in(new_app(), keys.member_key)
    reason = "Members can view batches; owners and admins can create and manage them"
    assert reason in texts(at)
    assert at.file_uploader[0].disabled
    assert button(at, "Create batch").disabled
    # The list shows the owner's batch; its write actions are disabled.
    assert "Owner's batch" in texts(at)
    write_buttons = [b for b in at.button if b.key and b.key.startswith("row_") and not b.key.endswith(
        ("_view", "_export"))]
    assert write_buttons and all(b.disabled for b in write_buttons)


def test_cancel_a_scheduled_batch_through_the_dialog(backend):
    keys = backend.new_org("AppTest Cancel Org")
    at = sign_in(new_app(), keys.owner_key)
    at.file_uploader[0].set_value(("contacts.csv", CSV, "text/csv"))
    at.run()
    text_input(at, "Batch name").input("Later batch")
    next(c for c in at.checkbox if c.label.startswith("Schedule start time")).check()
    at.run()
    date = next(d for d in at.date_input if d.label == "Date")
    date.set_value(dt.date.today() + dt.timedelta(days=2))
    at.run()
    button(at, "Create batch").click()
    at.run()
    assert not at.error, [e.value for e in at.error]
    assert ">Scheduled</span>" in texts(at)
    # Cancel from the detail view's action bar, confirm in the dialog.
    button(at, "Cancel").click()
    at.run()
    assert "This action cannot be undone" in texts(at)
    button(at, "Confirm cancel").click()
    at.run()
    assert not at.exception, at.exception
    assert ">Cancelled</span>" in texts(at)


@pytest.mark.parametrize("role", ["owner_key", "member_key"])
def test_every_page_renders(backend, role):
    keys = backend.new_org(f"AppTest Pages {role}")
    at = sign_in(new_app(), getattr(keys, role))
    for page in list(at.sidebar.radio[0].options):
        at.sidebar.radio[0].set_value(page)
        at.run()
        assert not at.exception, (page, at.exception)
        assert not at.error, (page, [e.value for e in at.error])
        assert page.split()[0] in " ".join(t.value for t in at.title), page
