"""Every Redis key and channel name of batchcalls, in one place.

Per-organization keys carry the organization id as a hash tag,
``bc:{org_…}:…``, so every Lua script touches a single cluster slot and the
same code runs on Redis Cluster. The few global keys are only ever touched by
single-key commands.
"""

from __future__ import annotations

PREFIX = "bc"

# Global (single-key commands only).
#: SET of organization ids that have at least one RUNNING batch.
ACTIVE_ORGS = f"{PREFIX}:active-orgs"
#: Marker written by the reconciler after (re)building Redis state from
#: Postgres. Its absence means Redis lost its data: dialers stop claiming.
STATE_MARKER = f"{PREFIX}:state-marker"
#: SET NX lock so one server replica at a time rebuilds Redis.
REBUILD_LOCK = f"{PREFIX}:rebuild-lock"
#: Lock that elects the replica running the scheduler tick.
SCHEDULER_LOCK = f"{PREFIX}:scheduler-lock"


def _org(org_id: str) -> str:
    return f"{PREFIX}:{{{org_id}}}"


def org_config(org_id: str) -> str:
    """HASH: ``limit`` (org-wide live-call limit)."""
    return f"{_org(org_id)}:config"


def org_leases(org_id: str) -> str:
    """ZSET: lease id -> expiry (ms). Every live call of the organization."""
    return f"{_org(org_id)}:leases"


def org_running(org_id: str) -> str:
    """LIST used as a ring of RUNNING batch ids, rotated for round-robin."""
    return f"{_org(org_id)}:running"


def fence_counter(org_id: str) -> str:
    """STRING counter: INCR gives each claim its fencing token."""
    return f"{_org(org_id)}:fence"


def batch_meta(org_id: str, batch_id: str) -> str:
    """HASH: ``limit`` (batch live-call limit), ``max_call_ms``."""
    return f"{_org(org_id)}:batch:{batch_id}:meta"


def batch_leases(org_id: str, batch_id: str) -> str:
    """ZSET: lease id -> expiry (ms). Live calls of one batch."""
    return f"{_org(org_id)}:batch:{batch_id}:leases"


def batch_ready(org_id: str, batch_id: str) -> str:
    """ZSET: contact id -> due time (ms). Contacts waiting to be dialed."""
    return f"{_org(org_id)}:batch:{batch_id}:ready"


def lease_info(org_id: str, lease_id: str) -> str:
    """HASH describing one lease, for recovery: batch, contact, token,
    dialer, attempt, provider call id, started (ms), max call ms, trunk."""
    return f"{_org(org_id)}:lease:{lease_id}"


def batch_events(org_id: str, batch_id: str) -> str:
    """Pub/sub channel of a batch's progress and contact changes."""
    return f"{_org(org_id)}:batch:{batch_id}:events"
