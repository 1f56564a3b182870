"""Call results an agent reports (ResultsService): their bounds, and what
each disposition does to the contact.

The effect is one pure function, :func:`contact_after_result`, applied in
two places with the same rule: when FinishAttempt closes an attempt that
already has a result (report first), and when a result arrives for an
attempt already closed (late report). Do-not-call, the grant-time
compliance check (calling windows, frequency cap) and the retry policy are
the existing rules; this module only decides which of them applies.

* completed, transferred: the call's outcome decides, as without a report.
* voicemail: as the call outcome ``voicemail``: the batch's voicemail
  action and voicemail delays decide (:func:`server.domain.retry.judge_retry`
  with outcome ``voicemail``), whatever the call's outcome.
* opt_out: the number goes on the organization's do-not-call list (the
  service does that); the contact stops: the call's final status when it has
  one (usually COMPLETED), else SUPPRESSED.
* wrong_number: the contact ends SUPPRESSED ("wrong number").
* callback_requested: the contact waits QUEUED until ``callback_at`` (never
  before now); the grant then applies the calling window as for any
  contact. The attempt is counted when the callback is dialed; a callback
  always gets one more attempt, even past the batch's ``max_attempts``.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from server.domain.contact_rules import WAITING, ContactStatus
from server.domain.errors import Violations
from server.domain.retry import AttemptVerdict, RetryPolicy, judge_retry

__all__ = [
    "Disposition",
    "AnsweredBy",
    "ExtractedValue",
    "CallReport",
    "ResultEffect",
    "check_report",
    "contact_after_result",
    "same_effect",
    "REASON_WRONG_NUMBER",
    "REASON_OPTED_OUT",
    "WAIT_CALLBACK",
]


class Disposition(str, enum.Enum):
    COMPLETED = "completed"
    VOICEMAIL = "voicemail"
    OPT_OUT = "opt_out"
    CALLBACK_REQUESTED = "callback_requested"
    WRONG_NUMBER = "wrong_number"
    TRANSFERRED = "transferred"


class AnsweredBy(str, enum.Enum):
    HUMAN = "human"
    MACHINE = "machine"
    UNKNOWN = "unknown"


TRANSCRIPT_MAX = 100_000
SUMMARY_MAX = 4_000
RECORDING_URI_MAX = 2_000
FIELDS_MAX = 50
FIELD_NAME_MAX = 64
FIELD_STRING_MAX = 2_000
CALLBACK_HORIZON = timedelta(days=90)
_FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]{0,63}$")

REASON_WRONG_NUMBER = "wrong number (reported by the agent)"
REASON_OPTED_OUT = "opted out (reported by the agent)"
WAIT_CALLBACK = "callback requested"


@dataclass(frozen=True)
class ExtractedValue:
    name: str
    kind: str  # "string" | "number" | "bool" | "" (no value set)
    value: str | float | bool | None

    def as_json(self) -> dict[str, object]:
        return {"name": self.name, "type": self.kind, "value": self.value}


@dataclass(frozen=True)
class CallReport:
    """One report, already converted from the API message."""

    disposition: str  # a Disposition value, or "" when unspecified
    answered_by: str = AnsweredBy.UNKNOWN.value
    callback_at: datetime | None = None
    transcript: str = ""
    recording_uri: str = ""
    summary: str = ""
    fields: tuple[ExtractedValue, ...] = field(default_factory=tuple)


def check_report(r: CallReport, now: datetime, prefix: str = "result") -> Violations:
    """Every bound a report must keep, as field violations."""
    v = Violations()
    if r.disposition not in {d.value for d in Disposition}:
        v.add(f"{prefix}.disposition", "required: COMPLETED, VOICEMAIL, OPT_OUT, CALLBACK_REQUESTED, "
                                      "WRONG_NUMBER or TRANSFERRED")
    if r.disposition == Disposition.CALLBACK_REQUESTED.value:
        if r.callback_at is None:
            v.add(f"{prefix}.callback_time", "required with CALLBACK_REQUESTED")
        elif r.callback_at > now + CALLBACK_HORIZON:
            v.add(f"{prefix}.callback_time", f"at most {CALLBACK_HORIZON.days} days ahead")
    elif r.callback_at is not None:
        v.add(f"{prefix}.callback_time", "only with CALLBACK_REQUESTED")
    if len(r.transcript) > TRANSCRIPT_MAX:
        v.add(f"{prefix}.transcript", f"at most {TRANSCRIPT_MAX:,} characters")
    if len(r.summary) > SUMMARY_MAX:
        v.add(f"{prefix}.summary", f"at most {SUMMARY_MAX:,} characters")
    uri = r.recording_uri
    if uri and (len(uri) > RECORDING_URI_MAX or not re.match(r"^https?://[^\s<>\"']+$", uri)):
        v.add(f"{prefix}.recording_uri", f"an http(s) URI without spaces or quotes, at most {RECORDING_URI_MAX:,} characters")
    if len(r.fields) > FIELDS_MAX:
        v.add(f"{prefix}.extracted_fields", f"at most {FIELDS_MAX} fields")
    seen: set[str] = set()
    for i, f in enumerate(r.fields[: FIELDS_MAX + 1]):
        where = f"{prefix}.extracted_fields[{i}]"
        if not _FIELD_NAME.match(f.name):
            v.add(f"{where}.name", f"1–{FIELD_NAME_MAX} characters: a letter, then letters, digits, _ - .")
        elif f.name in seen:
            v.add(f"{where}.name", f"{f.name!r} is reported twice")
        seen.add(f.name)
        if f.kind == "":
            v.add(f"{where}.value", "required: string_value, number_value or bool_value")
        elif f.kind == "string" and len(str(f.value)) > FIELD_STRING_MAX:
            v.add(f"{where}.string_value", f"at most {FIELD_STRING_MAX:,} characters")
        elif f.kind == "number" and not math.isfinite(float(f.value)):  # type: ignore[arg-type]
            v.add(f"{where}.number_value", "must be a finite number")
    return v


def same_effect(a_disposition: str, a_callback: datetime | None, b_disposition: str, b_callback: datetime | None) -> bool:
    """Two reports of one call have the same effect (a later one may then
    replace the first one's descriptive fields)."""
    return a_disposition == b_disposition and a_callback == b_callback


@dataclass(frozen=True)
class ResultEffect:
    """The contact's state after its call and the agent's result."""

    contact_status: str
    failure_reason: str
    next_attempt_at: datetime | None
    max_attempts: int
    wait_reason: str = ""

    @property
    def waits(self) -> bool:
        return self.contact_status in {s.value for s in WAITING}


def contact_after_result(
    disposition: str,
    callback_at: datetime | None,
    verdict: AttemptVerdict,
    *,
    attempt_number: int,
    max_attempts: int,
    now: datetime,
    policy: RetryPolicy,
) -> ResultEffect:
    """What the agent's result makes of ``verdict`` (what the call's outcome
    alone decided, or the contact's state when the call already closed).
    ``disposition`` "" (nothing reported) leaves the verdict."""
    keep = ResultEffect(verdict.contact_status, verdict.failure_reason, verdict.next_attempt_at, max_attempts)
    if disposition in ("", Disposition.COMPLETED.value, Disposition.TRANSFERRED.value):
        return keep
    if disposition == Disposition.VOICEMAIL.value:
        # The same rule as the carrier's voicemail outcome: the batch's
        # voicemail action and voicemail delays.
        retry = judge_retry(attempt_number, max_attempts, now, policy, "voicemail")
        return ResultEffect(retry.contact_status, retry.failure_reason, retry.next_attempt_at, max_attempts)
    if disposition == Disposition.OPT_OUT.value:
        if verdict.is_final:
            return keep
        return ResultEffect(ContactStatus.SUPPRESSED.value, REASON_OPTED_OUT, None, max_attempts)
    if disposition == Disposition.WRONG_NUMBER.value:
        return ResultEffect(ContactStatus.SUPPRESSED.value, REASON_WRONG_NUMBER, None, max_attempts)
    if disposition == Disposition.CALLBACK_REQUESTED.value:
        due = max(callback_at or now, now)
        return ResultEffect(
            ContactStatus.QUEUED.value, "", due, max(max_attempts, attempt_number + 1), WAIT_CALLBACK
        )
    raise ValueError(f"unknown disposition {disposition!r}")
