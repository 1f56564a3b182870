"""Principals, roles and API key secrets. Keys are stored as sha256 hashes;
the secret is shown once when created."""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from server.domain.errors import PermissionDenied

KEY_PREFIX = "bck_"


class Role(str, enum.Enum):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"
    #: Reporting only: ResultsService, nothing else (the agent runtime's key).
    REPORTER = "reporter"


#: Who may report call results: the reporter key, and owners and admins
#: (they write everything else of the organization too; manual corrections
#: and the README's grpcurl walk-through). Members only read.
REPORTING_ROLES = frozenset({Role.REPORTER, Role.OWNER, Role.ADMIN})


@dataclass(frozen=True)
class Principal:
    org_id: str
    role: Role
    key_id: str

    def require_write(self) -> None:
        """Owners and admins write; members read (the seed's permission)."""
        if self.role not in (Role.OWNER, Role.ADMIN):
            raise PermissionDenied(
                "members can view; only owners and admins can create or change resources"
            )

    def require_reporter(self) -> None:
        if self.role not in REPORTING_ROLES:
            raise PermissionDenied("reporting call results needs a reporter, admin or owner key")

    def require_owner(self) -> None:
        if self.role is not Role.OWNER:
            raise PermissionDenied("only an owner can do this")


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_prefix(secret: str) -> str:
    return secret[: len(KEY_PREFIX) + 6]


def same_secret(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
