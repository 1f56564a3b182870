"""Contact statuses and the batch counter each one feeds.

Counters on the batch row are moved in the same transaction as the contact,
so the overview cards never count rows.
"""

from __future__ import annotations

import enum


class ContactStatus(str, enum.Enum):
    PENDING = "pending"
    QUEUED = "queued"
    DIALING = "dialing"
    CONNECTED = "connected"
    COMPLETED = "completed"
    FAILED = "failed"
    INVALID_NUMBER = "invalid_number"
    BLOCKED = "blocked"
    CARRIER_ERROR = "carrier_error"
    CANCELLED = "cancelled"
    SUPPRESSED = "suppressed"


C = ContactStatus
#: Waiting for a dial (their queue entry lives in Redis). The one definition
#: of "waiting" on the server: grants, lifecycle, recovery and the counters
#: all read it.
WAITING = frozenset({C.PENDING, C.QUEUED})
#: The same statuses as the words stored in Postgres, for SQL ``IN`` lists.
WAITING_VALUES: tuple[str, ...] = tuple(sorted(s.value for s in WAITING))
#: A call is open.
IN_CALL = frozenset({C.DIALING, C.CONNECTED})
FINAL = frozenset(
    {C.COMPLETED, C.FAILED, C.INVALID_NUMBER, C.BLOCKED, C.CARRIER_ERROR, C.CANCELLED, C.SUPPRESSED}
)
FINAL_FAILURES = frozenset({C.FAILED, C.INVALID_NUMBER, C.BLOCKED, C.CARRIER_ERROR})


def counter_column(status: str | ContactStatus) -> str:
    """Column of the batches table that counts contacts in ``status``."""
    return f"n_{ContactStatus(status).value}"


COUNTER_COLUMNS = tuple(counter_column(s) for s in ContactStatus)
