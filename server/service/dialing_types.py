"""Inputs and results of the dialer's side of the server (StartAttempt,
MarkAnswered, FinishAttempt), shared by the set-based implementations in
``grants`` and ``outcomes``."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any


class Decision(str, enum.Enum):
    GRANTED = "granted"
    STALE = "stale"
    BATCH_NOT_RUNNING = "batch_not_running"
    DEFERRED = "deferred"
    SUPPRESSED = "suppressed"


@dataclass
class StartInput:
    org_id: str
    batch_id: str
    contact_id: int
    fencing_token: int
    lease_id: str
    dialer_id: str
    provider_call_id: str


@dataclass
class StartResult:
    decision: Decision
    reason: str = ""
    attempt_id: str = ""
    attempt_number: int = 0
    contact: Any = None
    batch: Any = None
    agent: Any = None
    number: Any = None
    #: The organization row (its calls_per_second is sent to the dialer).
    org: Any = None
    next_attempt_at: datetime | None = None
    started_at: datetime | None = None
    dial_deadline: datetime | None = None
    #: The contact reached a final state without a call (suppressed, or no
    #: calling window opening): the batch may now be complete.
    finalized: bool = False


@dataclass
class AnswerInput:
    attempt_id: str
    token: int
    answer_time: datetime | None = None


@dataclass
class FinishInput:
    attempt_id: str
    token: int
    outcome: str
    answer_time: datetime | None = None
    end_time: datetime | None = None
    duration_seconds: float = 0.0
    sip_code: int = 0
    recording_uri: str = ""
    transcript: str = ""
    closed_by: str = ""
    detail: str = ""
    #: The agent leg: ms from the callee's answer to the agent's (0 = none), its INVITE's final status.
    agent_answer_delay_ms: int = 0
    agent_sip_code: int = 0


@dataclass
class FinishResult:
    contact_status: str
    next_attempt_at: datetime | None
    batch_status: str


def window_for(batch: Any, org: Any) -> Any:
    """The calling window a batch dials under: its own, the organization's,
    or none.

    Batch mode "none" is the batch's explicit "any time"; an organization
    without a window of its own dials under 08:00–21:00 callee local time
    (``DEFAULT_ORGANIZATION_WINDOW``) unless its owner chose
    ``calling_any_time`` (issue 16: safe by default)."""
    from server.domain.calling_window import CallingWindow
    from server.domain.jurisdiction import DEFAULT_ORGANIZATION_WINDOW

    if batch is not None and batch.window_mode == "none":
        return None
    if batch is not None and batch.window_mode == "custom" and batch.window_start:
        return CallingWindow.parse(batch.window_start, batch.window_end, batch.window_weekdays or ())
    if org.window_start:
        return CallingWindow.parse(org.window_start, org.window_end, org.window_weekdays or ())
    if getattr(org, "calling_any_time", False):
        return None
    return DEFAULT_ORGANIZATION_WINDOW


def jurisdiction_applies(trunk_kind: str | None, settings: Any) -> bool:
    """Whether the jurisdiction rules (issue 16) judge calls on this trunk:
    always on a real (SIP) trunk; on the simulated trunk, which reaches no
    one, only when the deployment says so (tests and demos of the rules)."""
    return trunk_kind != "simulated" or bool(getattr(settings, "jurisdiction_on_simulated", False))
