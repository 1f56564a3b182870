"""Role rules of the UI: who may write, who may change organization settings.

The server enforces these too; the UI only disables what the role cannot do,
with a reason, instead of letting a click fail.
"""

from __future__ import annotations

from batchcalls.v1 import resources_pb2

Role = resources_pb2.Role

MEMBER_READ_ONLY_REASON = "Members can view batches; owners and admins can create and manage them"
OWNER_ONLY_REASON = "Only owners can change this"

ROLE_LABELS = {
    Role.ROLE_UNSPECIFIED: "Unknown",
    Role.ROLE_OWNER: "Owner",
    Role.ROLE_ADMIN: "Admin",
    Role.ROLE_MEMBER: "Member",
}


def role_label(role: int) -> str:
    return ROLE_LABELS.get(role, "Unknown")


def can_write(role: int) -> bool:
    return role in (Role.ROLE_OWNER, Role.ROLE_ADMIN)


def is_owner(role: int) -> bool:
    return role == Role.ROLE_OWNER
