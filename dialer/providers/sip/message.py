"""SIP messages (RFC 3261 §7): parse, build, frame. Pure: no I/O, no clock.

Only what an outbound transaction-level UAC needs: a request line or a status
line, headers kept in order (with compact forms expanded and case-insensitive
lookup), a byte body framed by Content-Length, and a few helpers for the
header values the UAC reads (Via branch, tags, CSeq, Contact URI).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

import phonenumbers

SIP_VERSION = "SIP/2.0"
# RFC 3261 §8.1.1.7: branch ids of RFC 3261 transactions start with this cookie.
BRANCH_COOKIE = "z9hG4bK"
# Bounds for what we accept from the network (a stream peer can send anything).
MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 64 * 1024

# RFC 3261 §7.3.3 and the IANA registry: compact header names.
_COMPACT = {
    "v": "Via",
    "f": "From",
    "t": "To",
    "i": "Call-ID",
    "m": "Contact",
    "l": "Content-Length",
    "c": "Content-Type",
    "e": "Content-Encoding",
    "k": "Supported",
    "s": "Subject",
    "o": "Event",
    "r": "Refer-To",
    "b": "Referred-By",
    "u": "Allow-Events",
    "x": "Session-Expires",
}
_CANONICAL = {
    name.lower(): name
    for name in (
        "Via", "From", "To", "Call-ID", "CSeq", "Contact", "Content-Length", "Content-Type",
        "Max-Forwards", "WWW-Authenticate", "Proxy-Authenticate", "Authorization",
        "Proxy-Authorization", "Record-Route", "Route", "User-Agent", "Allow", "Supported",
        "Reason", "Retry-After", "Server",
    )
}
# Headers whose comma-separated values are separate header field values
# (RFC 3261 §7.3.1); the auth headers are not, as their params have commas.
_MULTI = {"via", "contact", "route", "record-route"}

_TOKEN_RE = re.compile(r"^[A-Za-z0-9.!%*_+`'~-]+$")


class SipParseError(ValueError):
    """The bytes are not a SIP message we can read."""


def canonical_name(name: str) -> str:
    name = name.strip()
    low = name.lower()
    if low in _COMPACT:
        return _COMPACT[low]
    return _CANONICAL.get(low, name)


@dataclass
class SipMessage:
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    # -- header access --------------------------------------------------
    def get(self, name: str, default: str | None = None) -> str | None:
        """First value of a header (case-insensitive, compact forms too)."""
        want = canonical_name(name).lower()
        for n, v in self.headers:
            if n.lower() == want:
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        want = canonical_name(name).lower()
        out: list[str] = []
        for n, v in self.headers:
            if n.lower() == want:
                if want in _MULTI:
                    out.extend(split_header_values(v))
                else:
                    out.append(v)
        return out

    def add(self, name: str, value: str) -> None:
        _check_header(name, value)
        self.headers.append((canonical_name(name), value))

    def set(self, name: str, value: str) -> None:
        self.remove(name)
        self.add(name, value)

    def remove(self, name: str) -> None:
        want = canonical_name(name).lower()
        self.headers = [(n, v) for n, v in self.headers if n.lower() != want]

    # -- common fields --------------------------------------------------
    @property
    def call_id(self) -> str:
        return self.get("Call-ID") or ""

    @property
    def cseq(self) -> tuple[int, str]:
        return parse_cseq(self.get("CSeq") or "")

    @property
    def branch(self) -> str:
        vias = self.get_all("Via")
        return via_param(vias[0], "branch") if vias else ""

    @property
    def from_tag(self) -> str:
        return header_param(self.get("From") or "", "tag")

    @property
    def to_tag(self) -> str:
        return header_param(self.get("To") or "", "tag")

    def _head_and_body(self, start_line: str) -> bytes:
        lines = [start_line]
        for n, v in self.headers:
            if n.lower() == "content-length":
                continue
            lines.append(f"{n}: {v}")
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + self.body


@dataclass
class SipRequest(SipMessage):
    method: str = ""
    uri: str = ""

    def to_bytes(self) -> bytes:
        return self._head_and_body(f"{self.method} {self.uri} {SIP_VERSION}")

    def summary(self) -> str:
        return f"{self.method} (Call-ID {self.call_id}, CSeq {self.get('CSeq')})"


@dataclass
class SipResponse(SipMessage):
    status: int = 0
    reason: str = ""

    def to_bytes(self) -> bytes:
        return self._head_and_body(f"{SIP_VERSION} {self.status} {self.reason}")

    def summary(self) -> str:
        return f"{self.status} {self.reason} (Call-ID {self.call_id}, CSeq {self.get('CSeq')})"


def _check_header(name: str, value: str) -> None:
    if not _TOKEN_RE.match(name):
        raise ValueError(f"bad SIP header name {name!r}")
    if "\r" in value or "\n" in value:
        raise ValueError(f"header {name} value has a line break")


# ---------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------


def parse_message(data: bytes) -> SipRequest | SipResponse:
    """Parses one whole message (a UDP datagram, or one framed TCP message).

    The body is cut to Content-Length when the header is present; over UDP
    a datagram without Content-Length has the rest of the datagram as body.
    """
    sep = data.find(b"\r\n\r\n")
    if sep < 0:
        # Tolerate bare LF line ends (RFC 3261 §7.5 asks for CRLF; be lenient).
        sep_lf = data.find(b"\n\n")
        if sep_lf < 0:
            raise SipParseError("no end of headers")
        head, body = data[:sep_lf], data[sep_lf + 2 :]
    else:
        head, body = data[:sep], data[sep + 4 :]
    if len(head) > MAX_HEADER_BYTES:
        raise SipParseError("headers too large")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SipParseError("headers are not UTF-8") from exc
    raw_lines = text.replace("\r\n", "\n").split("\n")
    # Unfold continuation lines (RFC 3261 §7.3.1).
    lines: list[str] = []
    for line in raw_lines:
        if line[:1] in (" ", "\t") and lines:
            lines[-1] += " " + line.strip()
        else:
            lines.append(line)
    while lines and not lines[0].strip():
        lines.pop(0)
    if not lines:
        raise SipParseError("empty message")
    start = lines[0].strip()
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise SipParseError(f"bad header line {line[:40]!r}")
        headers.append((canonical_name(name), value.strip()))

    msg: SipRequest | SipResponse
    if start.startswith(SIP_VERSION + " "):
        parts = start.split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit() or len(parts[1]) != 3:
            raise SipParseError(f"bad status line {start[:40]!r}")
        msg = SipResponse(headers=headers, status=int(parts[1]), reason=parts[2] if len(parts) > 2 else "")
    else:
        parts = start.split(" ")
        if len(parts) != 3 or parts[2] != SIP_VERSION or not _TOKEN_RE.match(parts[0]):
            raise SipParseError(f"bad request line {start[:40]!r}")
        msg = SipRequest(headers=headers, method=parts[0].upper(), uri=parts[1])

    clen = msg.get("Content-Length")
    if clen is not None:
        try:
            n = int(clen)
        except ValueError as exc:
            raise SipParseError("bad Content-Length") from exc
        if n < 0 or n > MAX_BODY_BYTES:
            raise SipParseError("bad Content-Length")
        if len(body) < n:
            raise SipParseError("body shorter than Content-Length")
        body = body[:n]
    msg.body = body
    for required in ("Call-ID", "CSeq", "Via"):
        if msg.get(required) is None:
            raise SipParseError(f"missing {required}")
    return msg


class StreamFramer:
    """Cuts a byte stream (TCP) into messages by Content-Length (RFC 3261 §18.3).

    CRLF keep-alives between messages (RFC 5626 §3.5.1) are skipped.
    """

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out: list[bytes] = []
        while True:
            # Skip keep-alive CRLFs before a message.
            while self._buf[:2] == b"\r\n":
                del self._buf[:2]
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buf) > MAX_HEADER_BYTES:
                    raise SipParseError("headers too large on stream")
                return out
            head = bytes(self._buf[:end])
            m = re.search(rb"(?im)^(?:content-length|l)[ \t]*:[ \t]*(\d+)[ \t]*$", head)
            if m is None:
                raise SipParseError("stream message without Content-Length")
            n = int(m.group(1))
            if n > MAX_BODY_BYTES:
                raise SipParseError("body too large on stream")
            total = end + 4 + n
            if len(self._buf) < total:
                return out
            out.append(bytes(self._buf[:total]))
            del self._buf[:total]


# ---------------------------------------------------------------------------
# Header value helpers
# ---------------------------------------------------------------------------


def split_header_values(value: str) -> list[str]:
    """Splits a comma-joined header value, ignoring commas in quotes or <>."""
    out: list[str] = []
    cur: list[str] = []
    quoted = False
    angle = False
    for ch in value:
        if ch == '"' and not angle:
            quoted = not quoted
        elif ch == "<" and not quoted:
            angle = True
        elif ch == ">" and not quoted:
            angle = False
        if ch == "," and not quoted and not angle:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if "".join(cur).strip():
        out.append("".join(cur).strip())
    return out


def parse_cseq(value: str) -> tuple[int, str]:
    parts = value.split()
    if len(parts) != 2 or not parts[0].isdigit():
        return (0, "")
    return (int(parts[0]), parts[1].upper())


def _params(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        k, _, v = part.partition("=")
        out[k.strip().lower()] = v.strip().strip('"')
    return out


def header_param(value: str, name: str) -> str:
    """A header parameter of a name-addr header (From/To/Contact): after '>'."""
    gt = value.rfind(">")
    tail = value[gt + 1 :] if gt >= 0 else value.partition(";")[2]
    if gt < 0:
        tail = ";" + tail
    return _params(tail).get(name.lower(), "")


def via_param(via: str, name: str) -> str:
    _, _, params = via.partition(";")
    return _params(params).get(name.lower(), "")


def name_addr_uri(value: str) -> str:
    """The URI of a name-addr or addr-spec value (Contact, From, To)."""
    lt = value.find("<")
    if lt >= 0:
        gt = value.find(">", lt)
        return value[lt + 1 : gt if gt >= 0 else None].strip()
    return value.split(";", 1)[0].strip()


@dataclass(frozen=True)
class SipUri:
    user: str
    host: str
    port: int | None
    params: dict[str, str]


def parse_sip_uri(uri: str) -> SipUri:
    if not uri.lower().startswith("sip:"):
        raise SipParseError(f"not a sip URI: {uri[:40]!r}")
    rest = uri[4:]
    rest, _, _headers = rest.partition("?")
    hostport, *param_parts = rest.split(";")
    user = ""
    if "@" in hostport:
        user, _, hostport = hostport.rpartition("@")
        user = user.split(":", 1)[0]
    port: int | None = None
    if hostport.startswith("["):
        end = hostport.find("]")
        host = hostport[1:end]
        if hostport[end + 1 : end + 2] == ":":
            port = int(hostport[end + 2 :])
    elif ":" in hostport:
        host, _, p = hostport.partition(":")
        port = int(p)
    else:
        host = hostport
    return SipUri(user=user, host=host, port=port, params=_params(";".join(param_parts)))


def new_branch() -> str:
    return BRANCH_COOKIE + secrets.token_hex(10)


def new_tag() -> str:
    return secrets.token_hex(8)


def format_caller_id(e164: str, fmt: str) -> str:
    """The user part for From per CallerIdFormat: e164 | e164_no_plus | national."""
    fmt = (fmt or "e164").lower()
    if fmt in ("e164", "", "unspecified", "caller_id_format_e164", "caller_id_format_unspecified"):
        return e164
    if fmt in ("e164_no_plus", "caller_id_format_e164_no_plus"):
        return e164.lstrip("+")
    if fmt in ("national", "caller_id_format_national"):
        try:
            num = phonenumbers.parse(e164, None)
        except phonenumbers.NumberParseException:
            return e164.lstrip("+")
        return phonenumbers.national_significant_number(num)
    raise ValueError(f"unknown caller_id_format {fmt!r}")


def host_for_uri(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def request_uri(number: str, host: str, port: int, transport: str) -> str:
    return f"sip:{number}@{host_for_uri(host)}:{port};transport={transport.lower()}"


def sdp_offer(session_id: int, address: str = "127.0.0.1", port: int = 9) -> bytes:
    """A minimal audio offer (PCMU). No media is sent; the port is the discard port."""
    return (
        "v=0\r\n"
        f"o=batchcalls {session_id} {session_id} IN IP4 {address}\r\n"
        "s=batchcalls\r\n"
        f"c=IN IP4 {address}\r\n"
        "t=0 0\r\n"
        f"m=audio {port} RTP/AVP 0\r\n"
        "a=rtpmap:0 PCMU/8000\r\n"
        "a=sendrecv\r\n"
    ).encode("ascii")


def response_for(
    request: SipRequest, status: int, reason: str, to_tag: str = ""
) -> SipResponse:
    """A response to a received request (RFC 3261 §8.2.6.2): copies Via, From, To, Call-ID, CSeq."""
    resp = SipResponse(status=status, reason=reason)
    for v in request.get_all("Via"):
        resp.add("Via", v)
    resp.add("From", request.get("From") or "")
    to = request.get("To") or ""
    if to_tag and not header_param(to, "tag"):
        to = f"{to};tag={to_tag}"
    resp.add("To", to)
    resp.add("Call-ID", request.call_id)
    resp.add("CSeq", request.get("CSeq") or "")
    return resp


def is_valid_call_id(call_id: str) -> bool:
    """RFC 3261 callid = word ["@" word]; word chars are alphanum and -.!%*_+`'~()<>:\\"/[]?{}"""
    if not call_id or len(call_id) > 256:
        return False
    allowed = set("-.!%*_+`'~()<>:\\\"/[]?{}")
    parts = call_id.split("@")
    if len(parts) > 2:
        return False
    return all(p and all(ch.isascii() and (ch.isalnum() or ch in allowed) for ch in p) for p in parts)


def sdp_inactive_answer(offer: bytes, session_id: int = 0, address: str = "127.0.0.1") -> bytes:
    """An SDP answer to ``offer`` that sets up no media: every stream inactive.

    Third-party call control must answer the callee's offer in the ACK of
    its 2xx even when there is nothing to bridge it to (the agent failed,
    or the call ends before the agent answered); the BYE follows at once.
    Each offered stream is answered ``a=inactive`` (RFC 3264 §6.1) on the
    discard port of our own address, not rejected with port 0: an answer
    whose streams are all port 0 makes some endpoints fail the call outright
    (sipp 3.6 exits on it), and inactive streams send nothing either way.
    """
    lines = offer.decode("utf-8", "replace").replace("\r\n", "\n").split("\n")
    media = [ln for ln in lines if ln.startswith("m=")]
    ip = "IP6" if ":" in address else "IP4"
    out = [
        "v=0",
        f"o=batchcalls {session_id} {session_id} IN {ip} {address}",
        "s=batchcalls",
        f"c=IN {ip} {address}",
        "t=0 0",
    ]
    for m in media or ["m=audio 9 RTP/AVP 0"]:
        parts = m[2:].split(" ")
        if len(parts) >= 3:
            fmt = parts[3] if len(parts) > 3 else "0"
            out.append(f"m={parts[0]} 9 {parts[2]} {fmt}")
            out.append("a=inactive")
    return ("\r\n".join(out) + "\r\n").encode("ascii", "replace")


def is_sdp(msg: SipMessage) -> bool:
    """True when the message carries an SDP body."""
    ctype = (msg.get("Content-Type") or "").split(";", 1)[0].strip().lower()
    return bool(msg.body.strip()) and ctype == "application/sdp"
