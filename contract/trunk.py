"""The outbound trunk a lease carries.

The server resolves a caller number's trunk when it grants an attempt and
hands it to the dialer in StartAttemptResponse; the dialer stores it as JSON
in the lease info hash (``trunk`` field, see :mod:`contract.lease`) so that a
reaper on another dialer can ask the same carrier about a call whose dialer
died. Both processes therefore share this one definition.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["DEFAULT_TRUNK_CPS", "ORG_CPS_MAX", "TRUNK_CPS_MAX", "TRUNK_CPS_MIN", "TrunkSettings"]

#: Calls per second of a trunk that has none configured (docs/pacing.md):
#: one call attempt per second is the common default of SIP trunks and API
#: carriers. Same value as ``dialer.cps.DEFAULT_TRUNK_CPS``.
DEFAULT_TRUNK_CPS = 1.0
#: Bounds of a trunk's calls_per_second (the API validates them).
TRUNK_CPS_MIN = 0.1
TRUNK_CPS_MAX = 1000.0
#: Upper bound of an organization's calls_per_second (0 = no cap).
ORG_CPS_MAX = 10000.0


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
    #: Call attempts per second the carrier accepts on this trunk, across all
    #: dialers (``dialer.cps``); a lease's trunk json without it means the default.
    calls_per_second: float = DEFAULT_TRUNK_CPS
