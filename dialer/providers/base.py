"""The telephony provider port.

A provider places one outbound call and tells how it ended. The dialer chooses
the provider call id before the call is placed (a SIP Call-ID, or the
simulated carrier's call id) and hands it to the server in StartAttempt, so
that recovery can later ask the provider about a call whose dialer died.

Outcome words are the product's: completed, no_answer, busy, timeout,
invalid_number, blocked, carrier_error, agent_error, voicemail (answered by
a machine).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from contract.agent import AgentSettings
from contract.trunk import TrunkSettings

__all__ = ["AgentSettings", "TrunkSettings"]  # re-exported: providers take them in a CallRequest


class Outcome(str, enum.Enum):
    COMPLETED = "completed"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    TIMEOUT = "timeout"
    INVALID_NUMBER = "invalid_number"
    BLOCKED = "blocked"
    CARRIER_ERROR = "carrier_error"
    AGENT_ERROR = "agent_error"
    #: Answered by a machine (answering machine / voicemail).
    VOICEMAIL = "voicemail"


@dataclass(frozen=True)
class CallRequest:
    provider_call_id: str
    to_number: str  # E.164
    from_number: str  # E.164
    trunk: TrunkSettings
    ring_timeout_seconds: float
    max_call_duration_seconds: float
    organization_id: str
    batch_id: str
    contact_id: str
    agent_id: str
    attempt_number: int
    variables: dict[str, str] = field(default_factory=dict)
    recording_enabled: bool = False
    transcript_enabled: bool = False
    #: The voice agent to bring in when the callee answers (SIP trunks); None:
    #: the call is held without an agent leg.
    agent: AgentSettings | None = None
    #: The server's id of this attempt (sent to the agent as X-BatchCalls-Attempt-Id).
    attempt_id: str = ""


@dataclass(frozen=True)
class CallResult:
    outcome: Outcome
    start_time: datetime
    end_time: datetime
    answer_time: datetime | None = None
    # Connected (talk) seconds; 0 when never answered.
    duration_seconds: float = 0.0
    sip_code: int = 0
    recording_uri: str = ""
    transcript: str = ""
    detail: str = ""
    #: Seconds from the callee's answer to the agent's answer, or to the
    #: agent leg's failure; None when there was no agent leg (no agent, or
    #: the callee never answered).
    agent_answer_delay_seconds: float | None = None
    #: Final status of the agent's INVITE (0: none came, or no agent leg).
    agent_sip_code: int = 0
    #: The carrier answered the call's setup with a final refusal (SIP: a
    #: final non-2xx INVITE response before any 18x; simulated: an HTTP
    #: 503/429 to the POST): ``sip_code`` is its status, ``reason`` its reason phrase or
    #: error text, ``retry_after`` its Retry-After header if any. The dialer
    #: classifies it (``dialer.cps.classify_response``) as carrier push-back.
    refused: bool = False
    reason: str = ""
    retry_after: str | None = None


class CallState(str, enum.Enum):
    UNKNOWN = "unknown"  # the provider never heard of the call
    RINGING = "ringing"
    IN_PROGRESS = "in_progress"
    ENDED = "ended"


@dataclass(frozen=True)
class CallStatus:
    state: CallState
    # Set when state is ENDED.
    result: CallResult | None = None


class AnswerCallback(Protocol):
    async def __call__(self, answer_time: datetime) -> None: ...


class TelephonyProvider(Protocol):
    """One implementation per trunk kind."""

    #: True when ``call_status`` answering UNKNOWN proves the provider never
    #: received the call (the simulated carrier records every call it gets).
    #: False where UNKNOWN only means "not known here" (SIP: another
    #: process's dialog); recovery then waits out the maximum call duration.
    authoritative_status: bool

    async def place_call(self, request: CallRequest, on_answer: AnswerCallback) -> CallResult:
        """Places the call and returns when it is over.

        Calls ``on_answer`` once when the callee answers. Cancelling the
        awaiting task hangs up (CANCEL before answer, BYE after) and still
        must not leave the call live at the provider.
        """
        ...

    async def call_status(self, provider_call_id: str, trunk: TrunkSettings) -> CallStatus:
        """What the provider knows of a call, for recovery after a dialer died."""
        ...

    async def close(self) -> None: ...
