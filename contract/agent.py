"""How the dialer reaches a voice agent over SIP, and what the agent's INVITE carries.

The server resolves a batch's agent when it grants an attempt and hands it
to the dialer with the trunk; like :mod:`contract.trunk` it travels as JSON
(``to_json`` / ``from_json``) so that both processes share one definition.

When a SIP attempt's callee answers, the dialer INVITEs the agent at
``AgentSettings.uri`` and bridges the two under third-party call control
(``dialer/providers/sip/README.md``). The agent's INVITE carries the ids of
the call (``X-BatchCalls-*``) and the contact's selected custom variables as
``X-BC-<Name>`` headers, built by ``agent_headers`` (pure, bounded and
sanitised: a contact's CSV cell must never break or bloat a SIP message).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field

__all__ = [
    "HEADER_PREFIX",
    "ID_HEADERS",
    "MAX_HEADER_NAME_CHARS",
    "MAX_HEADER_VALUE_BYTES",
    "MAX_VARIABLE_HEADERS",
    "AgentSettings",
    "agent_headers",
    "id_headers",
    "sanitize_header_name",
    "sanitize_header_value",
]

#: Prefix of the headers that carry a contact's custom variables.
HEADER_PREFIX = "X-BC-"
#: Bounds of one variable header and of their number.
MAX_HEADER_NAME_CHARS = 64
MAX_HEADER_VALUE_BYTES = 256
MAX_VARIABLE_HEADERS = 20
#: Header names of the call's ids, in the order they are sent.
ID_HEADERS = (
    "X-BatchCalls-Batch-Id",
    "X-BatchCalls-Contact-Id",
    "X-BatchCalls-Attempt-Id",
    "X-BatchCalls-Call-Id",
)

_SCHEMES = ("sip", "sips")
_TRANSPORTS = ("udp", "tcp", "tls")
# What a variable name keeps: a conservative subset of the RFC 3261 token
# characters (no ! % * + ` ' ~, which some SIP stacks and attribute mappers
# mishandle); every other run of characters becomes one "-".
_NAME_DROP = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class AgentSettings:
    """Where and how a voice agent takes SIP calls.

    ``user@host:port`` over ``transport`` with ``scheme`` sip or sips (sips
    implies tls). ``username``/``password``: digest credentials for a 401/407
    from the agent side (the password stays out of reprs). ``header_fields``:
    names of the contact's custom variables sent as ``X-BC-<Name>`` headers,
    in this order; ``("*",)`` sends every variable (sorted by name); empty
    sends none. ``answer_timeout_seconds``: how long the agent may take to
    answer after the callee did; the SIP provider clamps it below the
    callee's 2xx retransmission window (64*T1).
    """

    host: str
    port: int = 5060
    user: str = ""
    scheme: str = "sip"  # "sip" | "sips"
    transport: str = "udp"  # "udp" | "tcp" | "tls"
    username: str = ""
    password: str = field(default="", repr=False)
    header_fields: tuple[str, ...] = ()
    answer_timeout_seconds: float = 10.0

    def __post_init__(self) -> None:
        # Lists from JSON become tuples so the settings stay hashable.
        if not isinstance(self.header_fields, tuple):
            object.__setattr__(self, "header_fields", tuple(self.header_fields))

    def validate(self) -> list[str]:
        """Problems with these settings, as (field: reason) strings; empty when valid."""
        out: list[str] = []
        if self.scheme not in _SCHEMES:
            out.append("scheme: must be sip or sips")
        if self.transport not in _TRANSPORTS:
            out.append("transport: must be udp, tcp or tls")
        if self.scheme == "sips" and self.transport != "tls":
            out.append("transport: a sips URI needs tls")
        if not self.host or any(c in self.host for c in " \t\r\n;?@<>\"") or len(self.host) > 253:
            out.append("host: must be a host name or IP address")
        if not 0 < self.port < 65536:
            out.append("port: must be 1..65535")
        if self.user and not re.fullmatch(r"[A-Za-z0-9\-_.!~*'()&=+$,;?/%]{1,64}", self.user):
            out.append("user: only SIP URI user characters, at most 64")
        if not 0 < self.answer_timeout_seconds <= 60:
            out.append("answer_timeout_seconds: must be in (0, 60]")
        for name in self.header_fields:
            if name != "*" and not sanitize_header_name(name):
                out.append(f"header_fields: {name!r} has no letter or digit to send")
        return out

    @property
    def uri(self) -> str:
        """The Request-URI of the agent's INVITE."""
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        user = f"{self.user}@" if self.user else ""
        return f"{self.scheme}:{user}{host}:{self.port};transport={self.transport}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> AgentSettings:
        data = json.loads(text)
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def sanitize_header_name(name: str) -> str:
    """The header name a variable travels under, ``X-BC-<Name>``; "" if nothing is left.

    Characters other than letters, digits, ``.``, ``_`` and ``-`` (spaces,
    colons, non-ASCII, CR/LF) become ``-``; runs of ``-`` collapse; the
    whole name is cut to ``MAX_HEADER_NAME_CHARS``.
    """
    core = unicodedata.normalize("NFKD", name)
    core = core.encode("ascii", "ignore").decode("ascii")
    core = _NAME_DROP.sub("-", core)
    core = re.sub(r"-{2,}", "-", core).strip("-.")
    if not any(c.isalnum() for c in core):
        return ""
    full = (HEADER_PREFIX + core)[:MAX_HEADER_NAME_CHARS].rstrip("-.")
    return full


def sanitize_header_value(value: str, max_bytes: int = MAX_HEADER_VALUE_BYTES) -> str:
    """A header value: printable text on one line, at most ``max_bytes`` of UTF-8.

    CR, LF, tabs and other whitespace become one space; control and other
    non-printable characters (categories C*, and Z* other than space) are
    dropped; leading/trailing spaces go; the cut never splits a character.
    """
    out: list[str] = []
    for ch in str(value):
        if ch in "\r\n\t\v\f" or ch.isspace():
            out.append(" ")
        elif unicodedata.category(ch)[0] == "C":
            continue
        else:
            out.append(ch)
    text = re.sub(r" {2,}", " ", "".join(out)).strip()
    data = text.encode("utf-8")
    if len(data) > max_bytes:
        text = data[:max_bytes].decode("utf-8", "ignore").rstrip()
    return text


def agent_headers(
    variables: Mapping[str, str],
    header_fields: Iterable[str],
    *,
    max_headers: int = MAX_VARIABLE_HEADERS,
) -> list[tuple[str, str]]:
    """The ``X-BC-*`` headers of the selected variables, bounded and sanitised.

    Fields in ``header_fields`` order (``"*"`` adds every variable, sorted),
    each once; a field the contact lacks, or whose name or value sanitises
    to nothing, is skipped; two fields that sanitise to the same name
    (case-insensitive, as SIP compares header names) keep the first; at most
    ``max_headers``.
    """
    names: list[str] = []
    for f in header_fields:
        if f == "*":
            names.extend(sorted(variables))
        else:
            names.append(f)
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for f in names:
        if len(out) >= max_headers:
            break
        if f not in variables:
            continue
        header = sanitize_header_name(f)
        if not header or header.lower() in seen:
            continue
        value = sanitize_header_value(variables[f])
        if not value:
            continue
        seen.add(header.lower())
        out.append((header, value))
    return out


def id_headers(*, batch_id: str, contact_id: str, attempt_id: str, call_id: str) -> list[tuple[str, str]]:
    """The ``X-BatchCalls-*`` headers of the call's ids (each value sanitised too)."""
    values = (batch_id, contact_id, attempt_id, call_id)
    return [(name, sanitize_header_value(v)) for name, v in zip(ID_HEADERS, values, strict=True) if v]
