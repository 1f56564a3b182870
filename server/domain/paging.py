"""Opaque page tokens (AIP-158), bound to the filters they were issued for."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from server.domain.errors import FieldViolation, InvalidArgument


def filter_fingerprint(**filters: Any) -> str:
    blob = json.dumps(filters, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def encode_token(position: dict[str, Any], fingerprint: str) -> str:
    raw = json.dumps({"p": position, "f": fingerprint}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, fingerprint: str) -> dict[str, Any] | None:
    if not token:
        return None
    if len(token) > 512:
        raise InvalidArgument(FieldViolation("page_token", "too long"))
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        position, fp = data["p"], data["f"]
        if not isinstance(position, dict):
            raise ValueError
    except Exception:
        raise InvalidArgument(FieldViolation("page_token", "not a token this API issued")) from None
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
