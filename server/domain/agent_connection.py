"""An agent's SIP connection: parsing and validating the URI, the digest
credentials and the header fields an operator sets through AgentService.

The URI is stored normalized (``sip:user@host:port;transport=t``) and split
into :class:`contract.agent.AgentSettings` for the dialer, whose own
``validate()`` is applied too (one definition of what the dialer accepts).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from contract.agent import MAX_VARIABLE_HEADERS, AgentSettings, sanitize_header_name
from server.domain.errors import Violations

__all__ = [
    "URI_MAX",
    "USERNAME_MAX",
    "PASSWORD_MAX",
    "HEADER_FIELDS_MAX",
    "HEADER_FIELD_NAME_MAX",
    "SipUri",
    "parse_sip_uri",
    "check_connection",
    "settings_of",
]

URI_MAX = 512
USERNAME_MAX = 128
PASSWORD_MAX = 256
HEADER_FIELDS_MAX = MAX_VARIABLE_HEADERS
HEADER_FIELD_NAME_MAX = 64
_HOST_MAX = 253

_URI = re.compile(
    r"^(?P<scheme>sips?):"
    r"(?:(?P<user>[^@\s]+)@)?"
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[^:;@\[\]\s]+)"
    r"(?::(?P<port>\d{1,5}))?"
    r"(?P<params>(?:;[^;\s]*)*)$",
    re.IGNORECASE,
)
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_USER = re.compile(r"^[A-Za-z0-9\-_.!~*'()&=+$,;?/%]{1,64}$")
_TRANSPORTS = ("udp", "tcp", "tls")


@dataclass(frozen=True)
class SipUri:
    scheme: str
    user: str
    host: str  # without brackets
    port: int
    transport: str

    @property
    def text(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.user}@" if self.user else ""
        return f"{self.scheme}:{user}{host}:{self.port};transport={self.transport}"


def _valid_host(host: str) -> bool:
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return False
        return True
    if len(host) > _HOST_MAX:
        return False
    if re.fullmatch(r"[0-9.]+", host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return False
        return True
    labels = host.rstrip(".").split(".")
    return all(_LABEL.match(label) for label in labels)


def parse_sip_uri(text: str) -> tuple[SipUri | None, str]:
    """The parsed URI, or (None, why it is refused)."""
    text = (text or "").strip()
    if not text:
        return None, "required: a sip: or sips: URI, e.g. sip:agent@10.0.0.5:5080;transport=tcp"
    if len(text) > URI_MAX:
        return None, f"at most {URI_MAX} characters"
    m = _URI.match(text)
    if m is None:
        return None, "must be sip:[user@]host[:port][;transport=udp|tcp|tls] or sips:…"
    scheme = m["scheme"].lower()
    user = m["user"] or ""
    if user and not _USER.match(user):
        return None, "user part: at most 64 SIP URI user characters"
    host = m["host"]
    if not _valid_host(host):
        return None, "host must be a host name or an IPv4 or [IPv6] address"
    port = int(m["port"]) if m["port"] else (5061 if scheme == "sips" else 5060)
    if not 1 <= port <= 65535:
        return None, "port must be between 1 and 65535"
    transport = "tls" if scheme == "sips" else "udp"
    for param in (m["params"] or "").split(";")[1:]:
        name, _, value = param.partition("=")
        if name.lower() != "transport":
            return None, f"unsupported URI parameter {name!r}: only transport"
        transport = value.lower()
        if transport not in _TRANSPORTS:
            return None, "transport must be udp, tcp or tls"
    if scheme == "sips" and transport != "tls":
        return None, "a sips URI needs transport=tls"
    parsed = SipUri(scheme, user, host.strip("[]").lower(), port, transport)
    problems = settings_of(parsed).validate()
    if problems:
        return None, "; ".join(problems)
    return parsed, ""


def settings_of(
    uri: SipUri, username: str = "", password: str = "", header_fields: tuple[str, ...] = ()
) -> AgentSettings:
    """What the dialer needs to bring the agent in."""
    return AgentSettings(
        host=uri.host, port=uri.port, user=uri.user, scheme=uri.scheme, transport=uri.transport,
        username=username, password=password, header_fields=tuple(header_fields),
    )


def check_connection(
    values: dict[str, object], v: Violations, field: str = "agent.sip_connection"
) -> None:
    """Validates (and normalizes in place) the connection values present in
    ``values``: ``sip_uri`` (normalized text), ``sip_username``,
    ``sip_password``, ``sip_header_fields`` (a list)."""
    if "sip_uri" in values:
        raw = str(values["sip_uri"] or "")
        if raw.strip():
            parsed, why = parse_sip_uri(raw)
            if parsed is None:
                v.add(f"{field}.uri", why)
            else:
                values["sip_uri"] = parsed.text
        else:
            values["sip_uri"] = ""
    if "sip_username" in values:
        name = str(values["sip_username"] or "")
        if len(name) > USERNAME_MAX or any(c in name for c in "\r\n\"\\"):
            v.add(f"{field}.username", f"at most {USERNAME_MAX} characters, no quotes, backslashes or line breaks")
    if "sip_password" in values:
        secret = str(values["sip_password"] or "")
        if len(secret) > PASSWORD_MAX or any(c in secret for c in "\r\n"):
            v.add(f"{field}.password", f"at most {PASSWORD_MAX} characters, no line breaks")
    if "sip_header_fields" in values:
        names = list(values["sip_header_fields"] or [])  # type: ignore[call-overload]
        if len(names) > HEADER_FIELDS_MAX:
            v.add(f"{field}.header_fields", f"at most {HEADER_FIELDS_MAX} names")
        seen: set[str] = set()
        for i, name in enumerate(names):
            if name == "*":
                pass
            elif not 1 <= len(name) <= HEADER_FIELD_NAME_MAX or not sanitize_header_name(name):
                v.add(f"{field}.header_fields[{i}]",
                      f"1–{HEADER_FIELD_NAME_MAX} characters with a letter or digit, or \"*\"")
            if name in seen:
                v.add(f"{field}.header_fields[{i}]", f"{name!r} is listed twice")
            seen.add(name)
        values["sip_header_fields"] = names
