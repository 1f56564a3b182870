"""The agent leg's pure parts: AgentSettings, the X- header sanitiser, the inactive SDP answer."""

from __future__ import annotations

import pytest

from contract.agent import (
    MAX_HEADER_NAME_CHARS,
    MAX_HEADER_VALUE_BYTES,
    MAX_VARIABLE_HEADERS,
    AgentSettings,
    agent_headers,
    id_headers,
    sanitize_header_name,
    sanitize_header_value,
)
from dialer.providers.sip.message import (
    SipRequest,
    is_sdp,
    parse_message,
    sdp_inactive_answer,
)
from dialer.providers.sip.provider import agent_call_id


@pytest.mark.parametrize(
    ("name", "header"),
    [
        ("first_name", "X-BC-first_name"),
        ("First Name", "X-BC-First-Name"),
        ("plan.tier", "X-BC-plan.tier"),
        ("a:b;c=d", "X-BC-a-b-c-d"),
        ("  spaced  out  ", "X-BC-spaced-out"),
        ("Crème brûlée", "X-BC-Creme-brulee"),
        ("x\r\nEvil: 1", "X-BC-x-Evil-1"),
        ("--lead--", "X-BC-lead"),
        ("日本", ""),
        ("!!!", ""),
        ("", ""),
    ],
)
def test_header_names_are_tokens(name, header):
    assert sanitize_header_name(name) == header
    if header:
        SipRequest(method="INVITE", uri="sip:a@b").add(header, "v")  # a valid header name


def test_header_name_is_bounded():
    name = sanitize_header_name("n" * 200)
    assert len(name) == MAX_HEADER_NAME_CHARS and name.startswith("X-BC-nnn")
    # A cut landing on a separator does not leave it dangling.
    assert not sanitize_header_name("a" * 58 + "-b" * 10).endswith("-")


@pytest.mark.parametrize(
    ("value", "clean"),
    [
        ("Ada", "Ada"),
        ("Ada\r\nX-Evil: 1", "Ada X-Evil: 1"),
        ("a\tb\x00c\x1bd\x7f", "a bcd"),
        ("  both  ends  ", "both ends"),
        ("Zoë ☎", "Zoë ☎"),
        ("a\u2028b\u200bc", "a bc"),  # line separator -> space; zero-width (Cf) dropped
        ("", ""),
    ],
)
def test_header_values_are_one_printable_line(value, clean):
    assert sanitize_header_value(value) == clean


def test_header_value_is_bounded_without_splitting_a_character():
    v = sanitize_header_value("é" * 300)
    assert len(v.encode()) <= MAX_HEADER_VALUE_BYTES and v == "é" * (MAX_HEADER_VALUE_BYTES // 2)
    v = sanitize_header_value("a" + "é" * 300)
    assert len(v.encode()) <= MAX_HEADER_VALUE_BYTES
    v.encode("utf-8")  # whole characters only


def test_agent_headers_select_order_dedupe_and_bound():
    variables = {"first name": "Ada", "First-Name": "dup", "plan": "gold", "empty": " \r\n ", "secret": "x"}
    assert agent_headers(variables, ["plan", "first name", "First-Name", "missing", "empty"]) == [
        ("X-BC-plan", "gold"),
        ("X-BC-first-name", "Ada"),  # "First-Name" sanitises to the same header: the first wins
    ]
    assert agent_headers(variables, []) == []
    many = {f"v{i:02d}": str(i) for i in range(30)}
    out = agent_headers(many, ["*"])
    assert len(out) == MAX_VARIABLE_HEADERS and out[0] == ("X-BC-v00", "0")
    # Every produced header fits in a SIP message built by our own builder.
    req = SipRequest(method="INVITE", uri="sip:a@b")
    req.add("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx")
    req.add("Call-ID", "c")
    req.add("CSeq", "1 INVITE")
    hostile = {f"k{i}\r\n": "v\r\n" * 200 for i in range(5)}
    for n, v in agent_headers(hostile, ["*"]):
        req.add(n, v)
    parsed = parse_message(req.to_bytes())
    assert len([n for n, _ in parsed.headers if n.startswith("X-BC-")]) == 5


def test_id_headers():
    assert id_headers(batch_id="b", contact_id="c", attempt_id="", call_id="x@y") == [
        ("X-BatchCalls-Batch-Id", "b"),
        ("X-BatchCalls-Contact-Id", "c"),
        ("X-BatchCalls-Call-Id", "x@y"),
    ]


def test_agent_settings_uri_json_and_validation():
    a = AgentSettings(host="agent.example", port=5080, user="bot", transport="tcp", password="pw",
                      header_fields=["first_name"])  # fmt: skip
    assert a.uri == "sip:bot@agent.example:5080;transport=tcp"
    assert a.header_fields == ("first_name",)
    assert "pw" not in repr(a)
    assert AgentSettings.from_json(a.to_json()) == a
    assert a.validate() == []
    assert AgentSettings(host="::1", port=5060).uri == "sip:[::1]:5060;transport=udp"
    bad = AgentSettings(host="bad host", port=0, scheme="sips", transport="udp", header_fields=("!!",),
                        answer_timeout_seconds=0)  # fmt: skip
    problems = " ".join(bad.validate())
    for f in ("host:", "port:", "transport:", "header_fields:", "answer_timeout_seconds:"):
        assert f in problems


def test_inactive_answer_answers_every_stream():
    offer = (
        b"v=0\r\no=callee 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
        b"m=audio 6000 RTP/AVP 8 0\r\na=rtpmap:8 PCMA/8000\r\nm=video 6002 RTP/AVP 96\r\n"
    )
    ans = sdp_inactive_answer(offer, address="192.0.2.5").decode()
    assert "c=IN IP4 192.0.2.5" in ans
    assert ans.count("m=") == 2 and "m=audio 9 RTP/AVP 8" in ans and "m=video 9 RTP/AVP 96" in ans
    assert ans.count("a=inactive") == 2 and " 0 RTP" not in ans
    assert "IN IP6 ::1" in sdp_inactive_answer(offer, address="::1").decode()


def test_is_sdp_and_agent_call_id():
    msg = parse_message(b"SIP/2.0 200 OK\r\nVia: x\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n"
                        b"Content-Type: application/sdp\r\nContent-Length: 4\r\n\r\nv=0\n")  # fmt: skip
    assert is_sdp(msg)
    assert agent_call_id("abc@batchcalls") == "abc-agent@batchcalls"
    assert agent_call_id("abc") == "abc-agent"
