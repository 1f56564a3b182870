"""The lease record: what one lease's info hash holds, typed.

A lease is written by the dialers' Lua scripts (claim, attach, activate,
end_call) and by the server's rebuild (restore_lease), and read by both: the
dialers' reapers judge an expired lease from it, the server restores it after
a Redis data loss. Its field names and its safety TTL are therefore part of
the contract. The key itself is ``contract.keys.lease_info``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["LEASE_FIELDS", "LEASE_INFO_TTL_MS", "LeaseRecord"]

#: Field names of a lease info hash, in the order a lease's life adds them:
#: claim.lua writes the first eight, attach.lua ``attempt_id``,
#: ``max_call_ms``, ``trunk`` (and ``started_ms`` again: the grant
#: instant), activate.lua (lib_activate.lua, also run by end_call.lua)
#: ``activated_ms`` on a reservation, end_call.lua ``ended_ms``. The
#: server's rebuild (restore_lease.lua) writes the fields of claim.lua and
#: attach.lua plus ``restored`` (1: re-created from Postgres after a Redis
#: data loss; for whoever inspects the hash, no script reads it).
LEASE_FIELDS = (
    "batch",
    "contact",
    "token",
    "dialer",
    "provider_call_id",
    "claimed_ms",
    "started_ms",
    "due_ms",
    "attempt_id",
    "max_call_ms",
    "trunk",
    "activated_ms",
    "ended_ms",
    "restored",
)

#: Safety TTL of a lease info hash (ms), refreshed by renew.lua. Long: the
#: zsets decide whether a lease is held; the TTL only bounds the garbage a
#: lost lease could leave behind.
LEASE_INFO_TTL_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class LeaseRecord:
    """One lease as a reaper sees it."""

    org_id: str
    lease_id: str
    expiry_ms: int
    info: dict[str, str] = field(default_factory=dict)

    @property
    def batch_id(self) -> str:
        return self.info.get("batch", "")

    @property
    def contact_id(self) -> str:
        return self.info.get("contact", "")

    @property
    def fencing_token(self) -> int:
        return int(self.info.get("token") or 0)

    @property
    def dialer_id(self) -> str:
        return self.info.get("dialer", "")

    @property
    def attempt_id(self) -> str:
        return self.info.get("attempt_id", "")

    @property
    def provider_call_id(self) -> str:
        return self.info.get("provider_call_id", "")

    @property
    def claimed_ms(self) -> int:
        return int(float(self.info.get("claimed_ms") or 0))

    @property
    def started_ms(self) -> int:
        return int(float(self.info.get("started_ms") or self.info.get("claimed_ms") or 0))

    @property
    def max_call_ms(self) -> int:
        return int(float(self.info.get("max_call_ms") or 0))

    @property
    def trunk_json(self) -> str:
        return self.info.get("trunk", "")

    @property
    def ended_ms(self) -> int:
        """When its dialer learned that the call was over (end_call.lua); 0
        while the call may be live."""
        return int(float(self.info.get("ended_ms") or 0))
