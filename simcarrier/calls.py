"""One call at the simulated carrier: its state and the JSON shapes it answers with.

A :class:`Call` is plain data plus the timers and waiters the carrier attaches
to it; :class:`simcarrier.carrier.Carrier` moves it from ringing to ended. Two
JSON shapes come out of it: :meth:`Call.record` (one line of the record file
and one item of ``GET /calls``) and :meth:`Call.status` (the answer about one
call, which adds the recording and the transcript).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from simcarrier.model import CallPlan

#: Order of call states; a long-poll with ``after=<state>`` returns once the
#: call's state ranks higher. ``unknown`` ranks below every real state.
STATE_RANK: dict[str, int] = {"unknown": 0, "ringing": 1, "in_progress": 2, "ended": 3}

RECORDING_URI = "https://recordings.sim.batchcalls.invalid/{call_id}.wav"


@dataclass(eq=False)
class Call:
    """One call at the carrier; lives on after the placing dialer dies.

    ``start``, ``answer`` and ``end`` are wall-clock epoch seconds (what the
    record and the dialer see); ``start_mono`` and ``answer_mono`` are event
    loop times, which the timers and the talk-time measurement use.
    """

    call_id: str
    org_id: str
    batch_id: str
    contact_id: str
    agent_id: str
    to: str
    from_: str
    attempt: int
    ring_timeout: float
    max_duration: float
    plan: CallPlan
    start: float
    start_mono: float
    recording: bool = False
    transcript_enabled: bool = False
    variables: dict[str, str] = field(default_factory=dict)
    state: str = "ringing"
    answer: float | None = None
    answer_mono: float | None = None
    end: float | None = None
    outcome: str | None = None
    detail: str = ""
    sip_code: int = 0
    duration_seconds: float = 0.0
    recording_uri: str = ""
    transcript: str = ""
    duplicate_posts: int = 0
    hung_up_by_caller: bool = False
    timers: list[asyncio.TimerHandle] = field(default_factory=list)
    waiters: list[asyncio.Future[None]] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        """The ground-truth record (no transcript: it would bloat lists)."""
        return {
            "call_id": self.call_id,
            "org_id": self.org_id,
            "batch_id": self.batch_id,
            "contact_id": self.contact_id,
            "agent_id": self.agent_id,
            "to": self.to,
            "from": self.from_,
            "attempt": self.attempt,
            "start": self.start,
            "answer": self.answer,
            "end": self.end,
            "state": self.state,
            "outcome": self.outcome,
            "detail": self.detail,
            "sip_code": self.sip_code,
            "duration_seconds": self.duration_seconds,
            "behaviour": self.plan.behaviour,
            "hung_up_by_caller": self.hung_up_by_caller,
            "duplicate_posts": self.duplicate_posts,
            # Who answered (answering-machine detection): "human",
            # "machine", or "" while unanswered.
            "answered_by": ("machine" if self.plan.outcome == "voicemail" else "human") if self.answer is not None else "",
        }

    def status(self) -> dict[str, Any]:
        """What GET /calls/{id} answers: the record plus recording and transcript."""
        data = self.record()
        data["recording_uri"] = self.recording_uri
        data["transcript"] = self.transcript
        return data

    def notify(self) -> None:
        """Wakes every long-poll waiting on this call (its state changed)."""
        waiters, self.waiters = self.waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)


def fake_transcript(call: Call) -> str:
    """A short plausible dialogue using the contact's variables when given."""
    v = call.variables
    name = v.get("first_name") or v.get("name") or v.get("customer_name") or "there"
    topic = v.get("topic") or v.get("reason") or v.get("appointment_date") or "your recent request"
    if call.outcome == "agent_error":
        return f"Agent: Hello {name}, this is an automated call about {topic}.\n[agent error: call dropped]"
    return (
        f"Agent: Hi {name}, I'm calling about {topic}. Do you have a minute?\n"
        "Callee: Sure, go ahead.\n"
        "Agent: Thanks! I've noted everything. Have a great day."
    )


def cancelled_before_placed(call_id: str) -> dict[str, Any]:
    """Answer to a POST whose call id was hung up before it arrived.

    The hang-up (a CANCEL) overtook its INVITE: nothing rings, and the caller
    learns that the call ended unanswered.
    """
    now = time.time()
    return {"call_id": call_id, "state": "ended", "outcome": "no_answer", "detail": "cancelled before placed",
            "sip_code": 487, "start": now, "answer": None, "end": now, "duration_seconds": 0.0,
            "recording_uri": "", "transcript": ""}
