"""Hostile data through the real server into every admin UI page (AppTest).

An organization, an agent, a batch (name, description, CSV headers) and a
contact are created with names that are HTML and markdown payloads; the pages
that show them are rendered and every markdown-rendered element (the ones
Streamlit turns into HTML, some with ``unsafe_allow_html``) must carry the
payload escaped, never as a tag or a markdown link/image, while the reader
still sees the characters typed.
"""

from __future__ import annotations

import datetime as dt
import html
import re
import uuid
from pathlib import Path

import pytest
from batchcalls.v1 import batch_service_pb2
from batchcalls.v1 import resources_pb2 as res
from streamlit.testing.v1 import AppTest

from admin_ui import view_models as vm
from admin_ui.client import BatchcallsClient

APP = str(Path(__file__).resolve().parents[2] / "admin_ui" / "app.py")
IMG = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>alert('xss')</script>"
PIXEL = "![p](https://evil.example/pixel.png)"
ORG_NAME = f"{IMG} Org"
AGENT_NAME = f"{SCRIPT} agent"
BATCH_NAME = f"{IMG} batch {PIXEL}"
DESCRIPTION = f"{SCRIPT} <b>bold</b> | x |"
CONTACT_NAME = "<img src=y onerror=alert(3)> Ann"
HEADER_1 = "<b>plan</b>"
HEADER_2 = "<img src=z onerror=alert(2)>"
CSV = (
    f"phone,name,{HEADER_1},{HEADER_2}\n"
    f"+14155550101,{CONTACT_NAME},gold,<i>v</i>\n"
    "+14155550102,Bob,silver,x\n"
).encode()

TAG = re.compile(r"<\s*/?\s*(img|script|b|i|svg|a)\b", re.IGNORECASE)
MD_IMAGE_OR_LINK = re.compile(r"(?<!\\)!?(?<!\\)\[[^\]]*(?<!\\)\]\(")


def markdown_elements(at: AppTest) -> list[tuple[str, str]]:
    """Every element whose text Streamlit renders as markdown (to HTML)."""
    out: list[tuple[str, str]] = []
    for kind in ("markdown", "caption", "title", "header", "subheader", "error", "warning", "info", "success"):
        out += [(kind, str(e.value)) for e in getattr(at, kind)]
    return out


def displayed(markdown: str) -> str:
    return html.unescape(re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown))


def assert_inert(at: AppTest, *typed: str) -> None:
    """No payload is markup in any element; each one is shown as typed."""
    assert not at.exception, at.exception
    elements = markdown_elements(at)
    for kind, value in elements:
        # The UI's own badges are the only tags allowed.
        own = re.sub(r'<span class="bc-badge[^>]*>[^<]*</span>', "", value)
        assert not TAG.search(own), (kind, value)
        assert not MD_IMAGE_OR_LINK.search(own), (kind, value)
    seen = displayed("\n".join(v for _k, v in elements))
    for text in typed:
        assert text in seen, (text, seen[:3000])


@pytest.fixture(scope="module")
def hostile(stack):
    keys = stack.new_org(ORG_NAME)
    client = BatchcallsClient(stack.grpc_address, keys.owner_key)
    agent = client.create_agent(
        res.Agent(display_name=AGENT_NAME, architecture=res.AGENT_ARCHITECTURE_PIPELINE, active=True)
    )
    batch = client.create_batch(
        batch_service_pb2.CreateBatchRequest(
            request_id=str(uuid.uuid4()),
            display_name=BATCH_NAME,
            description=DESCRIPTION,
            agent=agent.name,
            from_phone_number=keys.phone_number_name,
            csv_content=CSV,
            filename="contacts.csv",
            # Scheduled far ahead: the batch stays put while the pages render.
            scheduled_local_time=(dt.date.today() + dt.timedelta(days=30)).isoformat() + "T09:00",
            timezone="UTC",
            calling_window_mode=res.CALLING_WINDOW_MODE_NONE,
        )
    ).batch
    contacts = client.list_contacts(batch.name, page_size=25).contacts
    contact = next(c for c in contacts if c.display_name == CONTACT_NAME)
    return keys, client, batch, contact


def signed_in(stack, monkeypatch, key: str) -> AppTest:
    monkeypatch.setenv("BATCHCALLS_GRPC_ADDR", stack.grpc_address)
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.text_input(key="signin_key").input(key)
    at.button[0].click()
    at.run()
    assert not at.exception, at.exception
    return at


def test_batch_list_and_sidebar(stack, hostile, monkeypatch):
    keys, _client, _batch, _contact = hostile
    at = signed_in(stack, monkeypatch, keys.owner_key)
    assert_inert(at, ORG_NAME, BATCH_NAME)


def test_validation_report_shows_csv_headers_escaped(stack, hostile, monkeypatch):
    keys, _client, _batch, _contact = hostile
    at = signed_in(stack, monkeypatch, keys.owner_key)
    at.file_uploader[0].set_value(("contacts.csv", CSV, "text/csv"))
    at.run()
    at.text_input(key=next(t.key for t in at.text_input if t.label.startswith("Batch name"))).input(BATCH_NAME)
    at.run()
    assert_inert(at, HEADER_1, HEADER_2, BATCH_NAME)


def test_batch_detail(stack, hostile, monkeypatch):
    keys, _client, batch, _contact = hostile
    at = signed_in(stack, monkeypatch, keys.member_key)
    at.query_params["batch"] = batch.batch_id
    at.run()
    assert_inert(at, BATCH_NAME, AGENT_NAME, HEADER_1, HEADER_2)
    # The description is shown as plain text, not markdown.
    assert DESCRIPTION in [t.value for t in at.text]
    # The details table (rendered with unsafe_allow_html) keeps its shape: the
    # "|" of the description does not add cells.
    table = next(v for k, v in markdown_elements(at) if k == "markdown" and v.startswith("| Field | Value |"))
    for line in table.splitlines():
        assert len(re.findall(r"(?<!\\)\|", line)) == 3, line


def test_contact_detail(stack, hostile, monkeypatch):
    keys, _client, _batch, contact = hostile
    monkeypatch.setenv("BATCHCALLS_GRPC_ADDR", stack.grpc_address)

    def page(api_key: str, name: str) -> None:
        from admin_ui.pages_impl.batch_detail import _contact_detail
        from admin_ui.pages_impl.common import client_for

        _contact_detail(client_for(api_key), name)

    at = AppTest.from_function(page, args=(keys.owner_key, contact.name), default_timeout=60)
    at.run()
    assert_inert(at, CONTACT_NAME)
    assert any(vm.user_text(CONTACT_NAME) in m.value for m in at.markdown)


def test_confirm_dialog_and_flash(stack, hostile, monkeypatch):
    keys, _client, batch, _contact = hostile
    at = signed_in(stack, monkeypatch, keys.owner_key)
    at.query_params["batch"] = batch.batch_id
    at.run()
    next(b for b in at.button if "Cancel" in b.label).click()
    at.run()
    assert_inert(at, BATCH_NAME)
    # The confirmation names the batch, escaped.
    warnings = [w.value for w in at.warning]
    assert any(f"Cancel “{BATCH_NAME}”?" in displayed(w) for w in warnings), warnings
