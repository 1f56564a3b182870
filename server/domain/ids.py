"""Resource ids and names (AIP-122): ``batches/{id}``, ``agents/{id}`` …"""

from __future__ import annotations

import re
import secrets

from server.domain.errors import InvalidArgument, FieldViolation, NotFound

_ID_RE = re.compile(r"^[a-z]+_[0-9a-f]{16,32}$")


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def parse_name(name: str, collection: str, field: str = "name") -> str:
    """``collection/{id}`` -> id. A malformed name is INVALID_ARGUMENT; a
    well-formed one that does not exist is the caller's NOT_FOUND."""
    prefix = collection + "/"
    if not name:
        raise InvalidArgument(FieldViolation(field, f"required, e.g. {collection}/<id>"))
    if not name.startswith(prefix) or "/" in name[len(prefix):]:
        raise InvalidArgument(FieldViolation(field, f"must look like {collection}/<id>"))
    ident = name[len(prefix):]
    if not _ID_RE.match(ident):
        raise NotFound(f"{name} not found")
    return ident


def parse_contact_name(name: str, field: str = "name") -> tuple[str, int]:
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != "batches" or parts[2] != "contacts":
        raise InvalidArgument(FieldViolation(field, "must look like batches/<id>/contacts/<id>"))
    batch_id = parse_name(f"batches/{parts[1]}", "batches", field)
    if not (parts[3].isascii() and parts[3].isdigit()) or len(parts[3]) > 18:  # "²".isdigit() but int() refuses it
        raise NotFound(f"{name} not found")
    return batch_id, int(parts[3])


def batch_name(batch_id: str) -> str:
    return f"batches/{batch_id}"


def contact_name(batch_id: str, contact_id: int | str) -> str:
    return f"batches/{batch_id}/contacts/{contact_id}"
