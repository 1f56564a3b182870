"""Opaque page tokens (AIP-158), bound to the filters they were issued for.

A token is ``base64url(mac || json)`` where ``mac`` is the first 16 bytes of
HMAC-SHA256 over the JSON under a server key: clients cannot read positions
out of it (opaque in practice: it is meant to be passed back untouched) nor
forge or alter one (tamper-evident). The key is a parameter, so this module
stays pure; the service derives it from the settings
(server/service/page_keys.py: BATCHCALLS_PAGE_TOKEN_KEY, else the service
token, so every replica accepts the tokens of the others).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from server.domain.errors import FieldViolation, InvalidArgument

TOKEN_MAX_CHARS = 512
_MAC_BYTES = 16
NOT_OURS = "not a token this API issued"


def filter_fingerprint(**filters: Any) -> str:
    blob = json.dumps(filters, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def _mac(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, payload, hashlib.sha256).digest()[:_MAC_BYTES]


def encode_token(position: dict[str, Any], fingerprint: str, key: bytes) -> str:
    raw = json.dumps({"p": position, "f": fingerprint}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(_mac(key, raw) + raw).decode().rstrip("=")


def decode_token(token: str, fingerprint: str, key: bytes) -> dict[str, Any] | None:
    if not token:
        return None
    if len(token) > TOKEN_MAX_CHARS:
        raise InvalidArgument(FieldViolation("page_token", NOT_OURS))
    try:
        if not token.isascii():
            raise ValueError
        blob = base64.urlsafe_b64decode((token + "=" * (-len(token) % 4)).encode())
        mac, raw = blob[:_MAC_BYTES], blob[_MAC_BYTES:]
        if len(mac) != _MAC_BYTES or not hmac.compare_digest(mac, _mac(key, raw)):
            raise ValueError
        data = json.loads(raw)
        position, fp = data["p"], data["f"]
        if not isinstance(position, dict):
            raise ValueError
    except Exception:
        raise InvalidArgument(FieldViolation("page_token", NOT_OURS)) from None
    if fp != fingerprint:
        raise InvalidArgument(
            FieldViolation("page_token", "was issued for different filters; start again without it")
        )
    return position


def page_size(requested: int, *, default: int = 50, maximum: int = 100,
              allowed: tuple[int, ...] | None = None) -> int:
    if requested == 0:
        return default
    if allowed is not None and requested not in allowed:
        raise InvalidArgument(
            FieldViolation("page_size", "must be one of " + ", ".join(map(str, allowed)))
        )
    if requested < 0 or requested > maximum:
        raise InvalidArgument(FieldViolation("page_size", f"must be between 1 and {maximum}"))
    return requested
