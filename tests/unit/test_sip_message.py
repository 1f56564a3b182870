"""SIP message parsing/building (dialer/providers/sip/message.py)."""

from __future__ import annotations

import phonenumbers
import pytest

from dialer.providers.sip.message import (
    SipParseError,
    SipRequest,
    StreamFramer,
    format_caller_id,
    header_param,
    name_addr_uri,
    parse_message,
    parse_sip_uri,
    request_uri,
    response_for,
    sdp_offer,
    split_header_values,
)
from tests.sip.sipp import NUMBERS

INVITE = (
    "INVITE sip:+14155550100@127.0.0.1:5060;transport=udp SIP/2.0\r\n"
    "v: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bKabc;rport, SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKdef\r\n"
    "f: <sip:+12025550100@127.0.0.1>;tag=123\r\n"
    "t: <sip:+14155550100@127.0.0.1>\r\n"
    "i: call-1@host\r\n"
    "CSeq: 7 INVITE\r\n"
    "Subject: folded\r\n line\r\n"
    "c: application/sdp\r\n"
    "l: 4\r\n"
    "\r\n"
    "v=0\r\nEXTRA"
).encode()


def test_parse_request_compact_forms_and_body():
    msg = parse_message(INVITE)
    assert isinstance(msg, SipRequest)
    assert msg.method == "INVITE"
    assert msg.uri == "sip:+14155550100@127.0.0.1:5060;transport=udp"
    assert msg.call_id == "call-1@host"
    assert msg.cseq == (7, "INVITE")
    assert msg.branch == "z9hG4bKabc"
    assert len(msg.get_all("Via")) == 2
    assert msg.from_tag == "123"
    assert msg.to_tag == ""
    assert msg.get("subject") == "folded line"
    assert msg.get("Content-Type") == "application/sdp"
    assert msg.body == b"v=0\r"  # cut to Content-Length


def test_parse_response():
    data = (
        b"SIP/2.0 486 Busy Here\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=x\r\n"
        b"To: <sip:c@d>;tag=y\r\nCall-ID: c\r\nCSeq: 2 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
    msg = parse_message(data)
    assert msg.status == 486 and msg.reason == "Busy Here"
    assert msg.to_tag == "y"


@pytest.mark.parametrize(
    "data",
    [
        b"garbage",
        b"SIP/2.0 99x OK\r\nCall-ID: a\r\nCSeq: 1 INVITE\r\nVia: x\r\n\r\n",
        b"INVITE sip:a SIP/3.0\r\nCall-ID: a\r\nCSeq: 1 INVITE\r\nVia: x\r\n\r\n",
        b"INVITE sip:a SIP/2.0\r\nCSeq: 1 INVITE\r\nVia: x\r\n\r\n",  # no Call-ID
        b"INVITE sip:a SIP/2.0\r\nCall-ID: a\r\nCSeq: 1 INVITE\r\nVia: x\r\nContent-Length: 10\r\n\r\nabc",
    ],
)
def test_parse_rejects(data):
    with pytest.raises(SipParseError):
        parse_message(data)


def test_build_round_trip_sets_content_length():
    req = SipRequest(method="BYE", uri="sip:x@127.0.0.1:5060")
    req.add("Via", "SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKx")
    req.add("Call-ID", "abc")
    req.add("CSeq", "3 BYE")
    req.add("Content-Length", "999")  # replaced on the wire
    req.body = b"hello"
    raw = req.to_bytes()
    assert raw.startswith(b"BYE sip:x@127.0.0.1:5060 SIP/2.0\r\n")
    assert b"Content-Length: 5\r\n\r\nhello" in raw
    back = parse_message(raw)
    assert back.body == b"hello" and back.cseq == (3, "BYE")


def test_header_injection_refused():
    req = SipRequest(method="INVITE", uri="sip:x@y")
    with pytest.raises(ValueError):
        req.add("X-Batch-Id", "abc\r\nEvil: 1")
    with pytest.raises(ValueError):
        req.add("Bad Name", "v")


def test_stream_framer_cuts_by_content_length():
    one = b"SIP/2.0 100 Trying\r\nVia: v;branch=z9hG4bK1\r\nCall-ID: a\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    two = b"SIP/2.0 200 OK\r\nVia: v;branch=z9hG4bK1\r\nCall-ID: a\r\nCSeq: 1 INVITE\r\nl: 3\r\n\r\nabc"
    stream = b"\r\n\r\n" + one + two
    f = StreamFramer()
    out = []
    for i in range(0, len(stream), 7):  # arbitrary chunking
        out += f.feed(stream[i : i + 7])
    assert out == [one, two]
    assert parse_message(out[1]).body == b"abc"


def test_stream_framer_requires_content_length():
    with pytest.raises(SipParseError):
        StreamFramer().feed(b"SIP/2.0 100 Trying\r\nCall-ID: a\r\n\r\n")


def test_helpers():
    assert header_param("<sip:a@b;transport=udp>;tag=xyz", "tag") == "xyz"
    assert header_param("sip:a@b;tag=q", "tag") == "q"
    assert header_param('"A, B" <sip:a@b>', "tag") == ""
    assert name_addr_uri('"x" <sip:1@2:5060;transport=tcp>;expires=3') == "sip:1@2:5060;transport=tcp"
    assert split_header_values('<sip:a@b>, "x,y" <sip:c@d;p=1,2>') == ['<sip:a@b>', '"x,y" <sip:c@d;p=1,2>']
    u = parse_sip_uri("sip:+14155550100@example.com:5070;transport=tcp")
    assert (u.user, u.host, u.port, u.params["transport"]) == ("+14155550100", "example.com", 5070, "tcp")
    assert request_uri("+14155550100", "trunk.example", 5060, "UDP") == "sip:+14155550100@trunk.example:5060;transport=udp"
    assert request_uri("+14155550100", "::1", 5060, "tcp") == "sip:+14155550100@[::1]:5060;transport=tcp"


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [("e164", "+12025550100"), ("e164_no_plus", "12025550100"), ("national", "2025550100"), ("", "+12025550100")],
)
def test_caller_id_format(fmt, expected):
    assert format_caller_id("+12025550100", fmt) == expected


def test_caller_id_format_unknown():
    with pytest.raises(ValueError):
        format_caller_id("+12025550100", "weird")


def test_sdp_offer_is_pcmu_on_loopback():
    sdp = sdp_offer(42).decode()
    assert "c=IN IP4 127.0.0.1\r\n" in sdp
    assert "m=audio 9 RTP/AVP 0\r\n" in sdp and "a=rtpmap:0 PCMU/8000" in sdp


def test_response_for_copies_dialog_headers():
    req = parse_message(INVITE)
    resp = response_for(req, 200, "OK", to_tag="t1")
    assert resp.get_all("Via") == req.get_all("Via")
    assert resp.to_tag == "t1" and resp.cseq == (7, "INVITE")


def test_scenario_numbers_are_valid_us_numbers():
    for number in NUMBERS.values():
        num = phonenumbers.parse(number, None)
        assert phonenumbers.is_valid_number(num), number
        assert phonenumbers.region_code_for_number(num) == "US"
