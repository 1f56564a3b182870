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
#: Leader lease (holder id, TTL, renewed) electing the one server replica
#: that runs the background duties: scheduler and reconciler
#: (server/service/leader.py).
SCHEDULER_LOCK = f"{PREFIX}:scheduler-lock"
#: SET of organization ids that may hold leases (live or expired) or
#: reservations. A superset of ACTIVE_ORGS' lease holders: a paused or
#: cancelled batch leaves the ring (and maybe its org leaves ACTIVE_ORGS)
#: while its calls still hold leases, and the reapers must keep watching
#: them. Dialers SADD before their first claim in an org (then at most once
#: per heartbeat interval) and on every heartbeat; the server SADDs an org
#: as it leaves ACTIVE_ORGS and when its rebuild restores leases. Reapers
#: SREM an org only when its lease zset, its ended zset (``org_ended``) and
#: its reserved zset (``org_reserved``) are all empty, so neither an ended
#: lease whose outcome is not yet recorded nor a reservation whose dialer
#: died is ever forgotten (``LeaseClient.forget_lease_org_if_empty``).
LEASE_ORGS = f"{PREFIX}:lease-orgs"
#: Pub/sub channel prefix; a dialer's channel is this + its dialer id
#: (``dialer_handoffs``). end_call.lua PUBLISHes there the lease id of the
#: dialer's reservation that another dialer's call end just activated
#: (``org_waiting``); the dialer dials it at once. A lost message costs only
#: latency: the reservation's own activate.lua poll (every 200 ms,
#: ``dialer.grant_ahead.WAITER_POLL_SECONDS``) then answers "ok". Plain PUBLISH, also on Redis Cluster (it reaches a
#: subscriber on any node).
DIALER_HANDOFFS = f"{PREFIX}:handoffs:"


def _org(org_id: str) -> str:
    return f"{PREFIX}:{{{org_id}}}"


def org_config(org_id: str) -> str:
    """HASH: ``limit`` (org-wide live-call limit)."""
    return f"{_org(org_id)}:config"


def org_marker(org_id: str) -> str:
    """STRING ``<epoch>:<replid>``: the organization's state marker (Redis
    Cluster). Written LAST by the server's rebuild of the organization, with
    the organization's ``redis_epoch`` from Postgres and the replication id
    of the node holding the slot; claim.lua / activate.lua refuse while it
    is missing or names another node (a promoted replica that may have
    missed the last writes). See contract/lua/lib_marker.lua and
    docs/recovery.md, "Failover without loss"."""
    return f"{_org(org_id)}:marker"


def org_leases(org_id: str) -> str:
    """ZSET: lease id -> expiry (ms). Every live call of the organization."""
    return f"{_org(org_id)}:leases"


def org_reserved(org_id: str) -> str:
    """ZSET: lease id -> expiry (ms). Leases granted ahead (claim.lua in
    "reserve" mode): a contact claimed and its attempt granted while no slot
    is free yet, so that when a call ends the next one starts at once,
    without waiting for StartAttempt. They hold NO slot and guard no call:
    activate.lua moves one into ``org_leases`` and ``batch_leases``
    (checking both limits) right before its call is placed. Renewed by the
    holder's heartbeat; a reaper releases an expired one (never dialed) and
    tombstones it so the server closes its attempt as NOT_DIALED."""
    return f"{_org(org_id)}:reserved"


def org_waiting(org_id: str) -> str:
    """ZSET: lease id -> ms it began waiting. The org's granted reservations
    waiting for a slot, whichever dialer holds them: activate.lua adds one
    when it answers "org_full"/"batch_full" and removes it when it takes its
    slots; release.lua removes it. When a call ends and its own dialer has
    no reservation waiting, end_call.lua gives the freed slot to the oldest
    one here (another dialer's) and tells that dialer on its hand-off
    channel (``dialer_handoffs``), so N dialers share one pool of granted
    reservations instead of N small ones (docs/leases.md). Always a subset
    of ``org_reserved``; a stale member (its lease released by a path that
    did not know this key) is dropped by the next end_call that meets it.

    end_call.lua derives, from this org's prefix, the keys of a waiting
    lease that its caller cannot name (its info hash, its batch's meta and
    leases zset): ``org_prefix`` + ``lease:{id}`` / ``batch:{b}:meta`` /
    ``batch:{b}:leases``. They share the org's hash tag, so the script
    still touches one cluster slot; a unit test checks the derived names
    against ``lease_info``, ``batch_meta`` and ``batch_leases``."""
    return f"{_org(org_id)}:waiting"



def org_ended(org_id: str) -> str:
    """ZSET: lease id -> expiry (ms). Leases whose call is over at the
    provider but whose outcome the server has not yet recorded
    (end_call.lua moved them here out of ``org_leases`` and
    ``batch_leases``: they hold no slot). The dialer renews them with its
    heartbeat and removes them with release.lua once FinishAttempt is
    answered; a reaper closes an expired one (its dialer died) with the
    provider's result. The info hash (``lease_info``) stays meanwhile."""
    return f"{_org(org_id)}:ended"


def org_running(org_id: str) -> str:
    """LIST used as a ring of RUNNING batch ids, rotated for round-robin."""
    return f"{_org(org_id)}:running"


def fence_counter(org_id: str) -> str:
    """STRING counter: INCR gives each claim its fencing token."""
    return f"{_org(org_id)}:fence"


def batch_meta(org_id: str, batch_id: str) -> str:
    """HASH: ``limit`` (batch live-call limit), ``max_call_ms``."""
    return f"{_org(org_id)}:batch:{batch_id}:meta"


def batch_watched(org_id: str, batch_id: str) -> str:
    """STRING with a TTL: present while the batch has a WatchBatch watcher on
    some server replica (set and refreshed by ``server.api.streams``). A
    dialer reads it (``dialer.watched``) and sends a watched batch's
    outcomes at once instead of letting them linger for company in its
    FinishAttempt group commit: an operator watching sees each outcome as
    soon as it is durable (docs/design.md §8)."""
    return f"{_org(org_id)}:batch:{batch_id}:watched"


def batch_leases(org_id: str, batch_id: str) -> str:
    """ZSET: lease id -> expiry (ms). Live calls of one batch."""
    return f"{_org(org_id)}:batch:{batch_id}:leases"


def batch_ready(org_id: str, batch_id: str) -> str:
    """ZSET: contact id -> due time (ms). Contacts waiting to be dialed."""
    return f"{_org(org_id)}:batch:{batch_id}:ready"


def lease_info(org_id: str, lease_id: str) -> str:
    """HASH describing one lease, for recovery. Fields (see
    ``contract.lease.LEASE_FIELDS``): ``batch``, ``contact``, ``token``,
    ``dialer``, ``provider_call_id``, ``claimed_ms`` (claim instant),
    ``started_ms`` (grant instant, = claimed until attached), ``due_ms``
    (ready score it was claimed with) and, once StartAttempt granted it,
    ``attempt_id``, ``max_call_ms``, ``trunk`` (json of TrunkSettings), once
    activate.lua gave a reservation its slots, ``activated_ms`` and, once the
    call is over (end_call.lua), ``ended_ms``; ``restored`` on a lease the
    server's rebuild re-created. Written by claim.lua / attach.lua /
    activate.lua / end_call.lua / restore_lease.lua, deleted by release.lua.
    Has a long safety TTL, refreshed by renew.lua."""
    return f"{_org(org_id)}:lease:{lease_id}"


def reaper_lock(org_id: str) -> str:
    """STRING lock (SET NX PX, value = dialer id) so one dialer at a time
    reaps an organization's expired leases."""
    return f"{_org(org_id)}:reaper-lock"


def batch_events(org_id: str, batch_id: str) -> str:
    """Pub/sub channel of a batch's progress and contact changes."""
    return f"{_org(org_id)}:batch:{batch_id}:events"


def released_unattached(org_id: str) -> str:
    """ZSET: lease id -> release time (ms) of claims the reaper released
    before their dialer recorded a grant on them. Such a lease can never carry
    a call (attach needs the lease held), so the server closes the attempt
    granted under it, if any, as never dialed."""
    return f"{_org(org_id)}:released-unattached"


def trunk_pace(org_id: str, trunk_id: str) -> str:
    """HASH: calls-per-second pacing and carrier push-back state of one
    outbound trunk (pace.lua, pushback.lua, pace_ok.lua; fields listed in
    ``contract/lua/lib_pace.lua``: ``tat`` (GCRA theoretical arrival time,
    µs), ``rate`` (effective CPS while lowered by push-back), ``until``
    (throttled until, ms), ``streak``, ``last_pb``, ``backoff``). Shared by
    all dialers; expires when the trunk is idle. See docs/pacing.md."""
    return f"{_org(org_id)}:trunk:{trunk_id}:pace"


def org_pace(org_id: str) -> str:
    """HASH: ``tat`` of the organization's calls-per-second bucket (pace.lua),
    shared by all dialers and all the organization's trunks; expires when
    idle. See docs/pacing.md."""
    return f"{_org(org_id)}:pace"


def rate_limit(org_id: str, key_hash: str) -> str:
    """STRING: the GCRA theoretical arrival time (µs) of one API key's
    requests (rate_limit.lua, server/api/rate_limit.py). ``key_hash``:
    sha256 of the key id, never the secret."""
    return f"{_org(org_id)}:rl:{key_hash}"
