"""SIP trunk telephony provider (see README.md in this folder)."""

from .provider import SipProvider, SipProviderSettings, new_call_id, outcome_for_status
from .transaction import SipTimers

__all__ = [
    "SipProvider",
    "SipProviderSettings",
    "SipTimers",
    "new_call_id",
    "outcome_for_status",
]
