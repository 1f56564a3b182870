"""Drive a batch to its end through the internal DialerService, without a
dialer process: for every due contact StartAttempt, optionally MarkAnswered,
then FinishAttempt with the outcome the test chooses. Retries come back as
QUEUED contacts and are driven again once due (the test stack's retry delays
are fractions of a second).

    from tests.support.drive import drive_batch, create_batch

    batch = create_batch(stack, org, csv_text)
    drive_batch(stack, org, batch.batch_id, lambda c: "completed", duration=42.0)
"""

from __future__ import annotations

import itertools
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from batchcalls.v1 import (
    batch_pb2,
    batch_service_pb2 as bpb,
    batch_service_pb2_grpc as bgrpc,
    dialer_service_pb2 as dpb,
    dialer_service_pb2_grpc as dgrpc,
    resources_pb2 as res,
)

#: Outcomes of calls the callee picked up (they carry an answer time and a
#: billed duration when ``answer`` is true).
ANSWERED_OUTCOMES = frozenset({"completed", "agent_error"})
FINAL_BATCH = (res.BATCH_STATUS_COMPLETED, res.BATCH_STATUS_FAILED, res.BATCH_STATUS_CANCELLED)
_tokens = itertools.count(1_000_000 + secrets.randbelow(1_000_000))


@dataclass
class Finished:
    contact_id: str
    attempt_number: int
    outcome: str
    duration: float
    contact_status: int
    returned_at: float  # time.time() when FinishAttempt returned


@dataclass
class DriveResult:
    batch_status: int
    finished: list[Finished] = field(default_factory=list)
    stale: int = 0


def _ts(dt: datetime) -> Timestamp:
    t = Timestamp()
    t.FromDatetime(dt)
    return t


def service_md(stack: Any) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {stack.service_token}")]


def create_batch(stack: Any, org: Any, csv_text: str, *, name: str = "", channel: grpc.Channel | None = None,
                 **fields: Any) -> batch_pb2.Batch:
    """CreateBatch with the org's agent and caller number (window NONE)."""
    fields.setdefault("calling_window_mode", res.CALLING_WINDOW_MODE_NONE)
    req = bpb.CreateBatchRequest(
        display_name=name or f"batch {secrets.token_hex(3)}",
        agent=org.agent_name,
        from_phone_number=org.phone_number_name,
        csv_content=csv_text.encode(),
        filename="contacts.csv",
        **fields,
    )
    ch = channel or stack.channel()
    try:
        return bgrpc.BatchServiceStub(ch).CreateBatch(req, metadata=org.md()).batch
    finally:
        if channel is None:
            ch.close()


def list_all_contacts(stub: bgrpc.BatchServiceStub, org: Any, batch_id: str,
                      statuses: tuple[int, ...] = ()) -> list[batch_pb2.Contact]:
    out: list[batch_pb2.Contact] = []
    token = ""
    while True:
        resp = stub.ListContacts(
            bpb.ListContactsRequest(parent=f"batches/{batch_id}", page_size=100, page_token=token,
                                    statuses=list(statuses)),
            metadata=org.md(),
        )
        out.extend(resp.contacts)
        token = resp.next_page_token
        if not token:
            return out


def _value(v: Any, contact: batch_pb2.Contact) -> Any:
    return v(contact) if callable(v) else v


def run_attempt(
    dialer: dgrpc.DialerServiceStub,
    stack: Any,
    org: Any,
    batch_id: str,
    contact: batch_pb2.Contact,
    outcome: str,
    *,
    answer: bool = True,
    duration: float = 30.0,
) -> Finished | None:
    """One attempt of one contact; None when the server did not grant it."""
    md = service_md(stack)
    token = next(_tokens)
    start = dialer.StartAttempt(
        dpb.StartAttemptRequest(
            organization_id=org.org_id,
            batch_id=batch_id,
            contact_id=contact.contact_id,
            fencing_token=token,
            lease_id=f"lease-{secrets.token_hex(6)}",
            dialer_id="test-driver",
            provider_call_id=f"call-{secrets.token_hex(6)}",
        ),
        metadata=md,
    )
    if start.decision != dpb.START_ATTEMPT_DECISION_GRANTED:
        return None
    now = datetime.now(timezone.utc)
    answered = answer and outcome in ANSWERED_OUTCOMES
    req = dpb.FinishAttemptRequest(
        attempt_id=start.attempt_id,
        fencing_token=token,
        outcome=res.CallOutcome.Value(f"CALL_OUTCOME_{outcome.upper()}"),
        end_time=_ts(now),
        duration_seconds=duration if answered else 0.0,
        closed_by="test-driver",
    )
    if answered:
        answer_time = now - timedelta(seconds=duration)
        dialer.MarkAnswered(
            dpb.MarkAnsweredRequest(attempt_id=start.attempt_id, fencing_token=token, answer_time=_ts(answer_time)),
            metadata=md,
        )
        req.answer_time.CopyFrom(_ts(answer_time))
    resp = dialer.FinishAttempt(req, metadata=md)
    return Finished(contact.contact_id, start.attempt_number, outcome, req.duration_seconds,
                    resp.contact_status, time.time())


def drive_batch(
    stack: Any,
    org: Any,
    batch_id: str,
    outcome_for: Callable[[batch_pb2.Contact], str],
    answer: bool | Callable[[batch_pb2.Contact], bool] = True,
    duration: float | Callable[[batch_pb2.Contact], float] = 30.0,
    *,
    timeout: float = 60.0,
    limit: int | None = None,
    on_finish: Callable[[Finished], None] | None = None,
) -> DriveResult:
    """Attempts every due PENDING/QUEUED contact until the batch is final
    (or until ``limit`` attempts were made; then it returns early).

    ``outcome_for(contact)`` gets the contact as ListContacts shows it
    before the attempt (``attempts`` = attempts already made) and returns
    an outcome word ("completed", "no_answer", "busy", "invalid_number", …).
    ``answer`` / ``duration`` (values or functions of the contact) apply to
    the outcomes in ``ANSWERED_OUTCOMES``: the call is marked answered and
    billed ``duration`` connected seconds.
    """
    result = DriveResult(batch_status=0)
    deadline = time.monotonic() + timeout
    waiting = (res.CONTACT_STATUS_PENDING, res.CONTACT_STATUS_QUEUED)
    with stack.channel() as ch, stack.internal_channel() as ich:
        stub = bgrpc.BatchServiceStub(ch)
        dialer = dgrpc.DialerServiceStub(ich)
        while True:
            batch = stub.GetBatch(bpb.GetBatchRequest(name=f"batches/{batch_id}"), metadata=org.md()).batch
            result.batch_status = batch.status
            if batch.status in FINAL_BATCH or batch.status != res.BATCH_STATUS_RUNNING:
                return result
            if time.monotonic() > deadline:
                raise TimeoutError(f"batch {batch_id} still {res.BatchStatus.Name(batch.status)} after {timeout}s")
            now = datetime.now(timezone.utc)
            due = [
                c for c in list_all_contacts(stub, org, batch_id, waiting)
                if not c.HasField("next_attempt_time") or c.next_attempt_time.ToDatetime(timezone.utc) <= now
            ]
            if not due:
                time.sleep(0.05)
                continue
            for c in due:
                if limit is not None and len(result.finished) >= limit:
                    return result
                f = run_attempt(
                    dialer, stack, org, batch_id, c, outcome_for(c),
                    answer=bool(_value(answer, c)), duration=float(_value(duration, c)),
                )
                if f is None:
                    result.stale += 1
                    continue
                result.finished.append(f)
                if on_finish is not None:
                    on_finish(f)
