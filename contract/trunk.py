"""The outbound trunk a lease carries.

The server resolves a caller number's trunk when it grants an attempt and
hands it to the dialer in StartAttemptResponse; the dialer stores it as JSON
in the lease info hash (``trunk`` field, see :mod:`contract.lease`) so that a
reaper on another dialer can ask the same carrier about a call whose dialer
died. Both processes therefore share this one definition.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["TrunkSettings"]


@dataclass(frozen=True)
class TrunkSettings:
    """Outbound trunk of the caller number (from StartAttemptResponse)."""

    kind: str  # "simulated" | "sip"
    host: str = ""
    port: int = 0
    transport: str = "udp"  # "udp" | "tcp"
    username: str = ""
    password: str = ""
    caller_id_format: str = "e164"  # "e164" | "e164_no_plus" | "national"
    # Simulated trunk only: weights by outcome word, mean_call_seconds, ring_seconds.
    simulation: dict[str, float] = field(default_factory=dict)
