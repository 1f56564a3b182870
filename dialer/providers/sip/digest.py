"""HTTP digest authentication for SIP (RFC 2617, RFC 7616, RFC 8760). Pure.

Answers a 401 WWW-Authenticate or a 407 Proxy-Authenticate challenge:
MD5 (the SIP default), SHA-256 and SHA-512-256 with their "-sess" variants,
with qop=auth (nc and cnonce) when the challenge offers it, and the RFC 2069
form (no qop) when it does not. qop=auth-int is not offered by trunks in
practice and is not supported: a challenge that offers only auth-int is
answered without qop only if it also allows that, otherwise refused.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field

_ALGORITHMS = {
    "MD5": "md5",
    "SHA-256": "sha256",
    "SHA-512-256": "sha512_256",
}


class DigestError(ValueError):
    """A challenge we cannot answer."""


@dataclass(frozen=True)
class Challenge:
    scheme: str
    realm: str
    nonce: str
    algorithm: str = "MD5"
    opaque: str | None = None
    qop_options: tuple[str, ...] = ()
    stale: bool = False
    params: dict[str, str] = field(default_factory=dict)


def parse_auth_params(text: str) -> dict[str, str]:
    """key=value or key="quoted, value" pairs separated by commas."""
    out: dict[str, str] = {}
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t,":
            i += 1
        start = i
        while i < n and text[i] not in "=, \t":
            i += 1
        key = text[start:i].strip().lower()
        while i < n and text[i] in " \t":
            i += 1
        if i >= n or text[i] != "=":
            if key:
                out[key] = ""
            continue
        i += 1
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] == '"':
            i += 1
            val: list[str] = []
            while i < n and text[i] != '"':
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                val.append(text[i])
                i += 1
            i += 1  # closing quote
            value = "".join(val)
        else:
            start = i
            while i < n and text[i] != ",":
                i += 1
            value = text[start:i].strip()
        if key:
            out[key] = value
    return out


def parse_challenge(header_value: str) -> Challenge:
    scheme, _, rest = header_value.strip().partition(" ")
    if scheme.lower() != "digest":
        raise DigestError(f"unsupported auth scheme {scheme!r}")
    p = parse_auth_params(rest)
    if "nonce" not in p:
        raise DigestError("challenge without nonce")
    qops = tuple(q.strip().lower() for q in p.get("qop", "").split(",") if q.strip())
    return Challenge(
        scheme="Digest",
        realm=p.get("realm", ""),
        nonce=p["nonce"],
        algorithm=p.get("algorithm", "MD5") or "MD5",
        opaque=p.get("opaque"),
        qop_options=qops,
        stale=p.get("stale", "").lower() == "true",
        params=p,
    )


def _hash_fn(algorithm: str):
    base = algorithm.upper()
    if base.endswith("-SESS"):
        base = base[: -len("-SESS")]
    name = _ALGORITHMS.get(base)
    if name is None:
        raise DigestError(f"unsupported digest algorithm {algorithm!r}")
    try:
        hashlib.new(name)
    except ValueError as exc:  # sha512_256 missing from this OpenSSL
        raise DigestError(f"digest algorithm {algorithm!r} not available") from exc

    def h(s: str) -> str:
        return hashlib.new(name, s.encode("utf-8")).hexdigest()

    return h


def can_answer(challenge: Challenge) -> bool:
    """True when ``authorization`` can answer this challenge: a hash we have,
    and qop=auth or no qop at all (a server may offer several challenges,
    RFC 7616 §3.7, and the UAC answers the first it can)."""
    try:
        _hash_fn(challenge.algorithm)
    except DigestError:
        return False
    return not challenge.qop_options or "auth" in challenge.qop_options


def compute_response(
    *,
    username: str,
    password: str,
    realm: str,
    nonce: str,
    method: str,
    uri: str,
    algorithm: str = "MD5",
    qop: str | None = None,
    nc: str | None = None,
    cnonce: str | None = None,
) -> str:
    """The request-digest (RFC 2617 §3.2.2.1, RFC 7616 §3.4.1)."""
    h = _hash_fn(algorithm)
    ha1 = h(f"{username}:{realm}:{password}")
    if algorithm.upper().endswith("-SESS"):
        if not cnonce:
            raise DigestError("-sess algorithm needs a cnonce")
        ha1 = h(f"{ha1}:{nonce}:{cnonce}")
    ha2 = h(f"{method}:{uri}")
    if qop:
        if qop != "auth":
            raise DigestError(f"unsupported qop {qop!r}")
        return h(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return h(f"{ha1}:{nonce}:{ha2}")


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def authorization(
    challenge: Challenge,
    *,
    username: str,
    password: str,
    method: str,
    uri: str,
    nc: int = 1,
    cnonce: str | None = None,
) -> str:
    """The value of the Authorization / Proxy-Authorization header answering ``challenge``."""
    qop: str | None = None
    if challenge.qop_options:
        if "auth" not in challenge.qop_options:
            raise DigestError(f"no supported qop in {challenge.qop_options}")
        qop = "auth"
    sess = challenge.algorithm.upper().endswith("-SESS")
    if qop or sess:
        cnonce = cnonce or secrets.token_hex(8)
    nc_s = f"{nc:08x}"
    resp = compute_response(
        username=username,
        password=password,
        realm=challenge.realm,
        nonce=challenge.nonce,
        method=method,
        uri=uri,
        algorithm=challenge.algorithm,
        qop=qop,
        nc=nc_s if qop else None,
        cnonce=cnonce,
    )
    parts = [
        f"username={_quote(username)}",
        f"realm={_quote(challenge.realm)}",
        f"nonce={_quote(challenge.nonce)}",
        f"uri={_quote(uri)}",
        f"response={_quote(resp)}",
        f"algorithm={challenge.algorithm}",
    ]
    if qop:
        parts += [f"qop={qop}", f"nc={nc_s}", f"cnonce={_quote(cnonce or '')}"]
    elif sess:
        parts.append(f"cnonce={_quote(cnonce or '')}")
    if challenge.opaque is not None:
        parts.append(f"opaque={_quote(challenge.opaque)}")
    return "Digest " + ", ".join(parts)
