"""The dialer's client of the server's internal DialerService (gRPC), and the
conversions between provider types and protobuf.

Every call carries ``authorization: Bearer <service token>``. FinishAttempt
is retried with backoff until the server answers, so an outcome is never
lost while the dialer lives; a rejection (stale fencing token, attempt
already closed) ends the retries: Postgres has decided.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from batchcalls.v1 import dialer_service_pb2, dialer_service_pb2_grpc, resources_pb2
from dialer.logging import log_event
from dialer.providers.base import CallResult, Outcome, TrunkSettings

log = logging.getLogger("dialer.server_client")

#: gRPC codes meaning "the server has decided against this request": retrying
#: the same request cannot succeed (stale token, attempt closed, unknown id).
REJECTED_CODES = frozenset(
    {
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.INVALID_ARGUMENT,
    }
)

_OUTCOME_TO_PROTO = {
    Outcome.COMPLETED: resources_pb2.CALL_OUTCOME_COMPLETED,
    Outcome.NO_ANSWER: resources_pb2.CALL_OUTCOME_NO_ANSWER,
    Outcome.BUSY: resources_pb2.CALL_OUTCOME_BUSY,
    Outcome.TIMEOUT: resources_pb2.CALL_OUTCOME_TIMEOUT,
    Outcome.INVALID_NUMBER: resources_pb2.CALL_OUTCOME_INVALID_NUMBER,
    Outcome.BLOCKED: resources_pb2.CALL_OUTCOME_BLOCKED,
    Outcome.CARRIER_ERROR: resources_pb2.CALL_OUTCOME_CARRIER_ERROR,
    Outcome.AGENT_ERROR: resources_pb2.CALL_OUTCOME_AGENT_ERROR,
}

_KIND = {resources_pb2.TRUNK_KIND_SIMULATED: "simulated", resources_pb2.TRUNK_KIND_SIP: "sip"}
_TRANSPORT = {resources_pb2.SIP_TRANSPORT_UDP: "udp", resources_pb2.SIP_TRANSPORT_TCP: "tcp"}
_CALLER_ID = {
    resources_pb2.CALLER_ID_FORMAT_E164: "e164",
    resources_pb2.CALLER_ID_FORMAT_E164_NO_PLUS: "e164_no_plus",
    resources_pb2.CALLER_ID_FORMAT_NATIONAL: "national",
}
_SIM_WEIGHTS = {
    "completed": "weight_completed",
    "no_answer": "weight_no_answer",
    "busy": "weight_busy",
    "timeout": "weight_timeout",
    "invalid_number": "weight_invalid_number",
    "blocked": "weight_blocked",
    "carrier_error": "weight_carrier_error",
    "agent_error": "weight_agent_error",
}


def outcome_to_proto(outcome: Outcome | str) -> int:
    return _OUTCOME_TO_PROTO[Outcome(outcome)]


def requeue_due_ms(resp: Any, now_ms: int) -> int | None:
    """When a FinishAttemptResponse leaves the contact waiting (PENDING /
    QUEUED), the due time (ms) to put it back in the ready queue with ZADD NX
    (the server enqueues it too; NX keeps its score); else None."""
    if resp is None or resp.contact_status not in (resources_pb2.CONTACT_STATUS_PENDING,
                                                   resources_pb2.CONTACT_STATUS_QUEUED):
        return None
    if resp.HasField("next_attempt_time"):
        return resp.next_attempt_time.ToMilliseconds()
    return now_ms


def outcome_name(value: int) -> str:
    return resources_pb2.CallOutcome.Name(value).removeprefix("CALL_OUTCOME_").lower()


def trunk_from_proto(trunk: resources_pb2.OutboundTrunk) -> TrunkSettings:
    """OutboundTrunk -> TrunkSettings. Simulation values that are 0 mean "the
    default" in the API and are left out."""
    sim: dict[str, float] = {}
    if trunk.HasField("simulation"):
        p = trunk.simulation
        for word, attr in _SIM_WEIGHTS.items():
            value = getattr(p, attr)
            if value > 0:
                sim[word] = float(value)
        if p.mean_call_seconds > 0:
            sim["mean_call_seconds"] = float(p.mean_call_seconds)
        if p.ring_seconds > 0:
            sim["ring_seconds"] = float(p.ring_seconds)
    return TrunkSettings(
        kind=_KIND.get(trunk.kind, "unspecified"),
        host=trunk.host,
        port=int(trunk.port),
        transport=_TRANSPORT.get(trunk.transport, "udp"),
        username=trunk.username,
        password=trunk.password,
        caller_id_format=_CALLER_ID.get(trunk.caller_id_format, "e164"),
        simulation=sim,
    )


def trunk_to_json(trunk: TrunkSettings) -> str:
    return json.dumps(dataclasses.asdict(trunk), separators=(",", ":"), sort_keys=True)


def trunk_from_json(text: str) -> TrunkSettings:
    data: dict[str, Any] = json.loads(text) if text else {}
    fields = {f.name for f in dataclasses.fields(TrunkSettings)}
    data = {k: v for k, v in data.items() if k in fields}
    data.setdefault("kind", "simulated")
    return TrunkSettings(**data)


def _ts(dt: datetime | float | None) -> Timestamp | None:
    if dt is None:
        return None
    ts = Timestamp()
    if isinstance(dt, (int, float)):
        ts.FromNanoseconds(int(dt * 1e9))
    else:
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        ts.FromDatetime(dt.astimezone(timezone.utc))
    return ts


def finish_request(
    *,
    attempt_id: str,
    fencing_token: int,
    outcome: int,
    closed_by: str,
    end_time: datetime | float,
    result: CallResult | None = None,
    detail: str = "",
) -> dialer_service_pb2.FinishAttemptRequest:
    """A FinishAttemptRequest; ``result`` (when the provider gave one)
    supplies answer/end time, duration, SIP code, recording and transcript."""
    req = dialer_service_pb2.FinishAttemptRequest(
        attempt_id=attempt_id,
        fencing_token=int(fencing_token),
        outcome=outcome,
        closed_by=closed_by,
        detail=(detail or (result.detail if result else ""))[:1000],
    )
    if result is not None:
        if result.answer_time is not None:
            req.answer_time.CopyFrom(_ts(result.answer_time))
        req.end_time.CopyFrom(_ts(result.end_time))
        req.duration_seconds = float(result.duration_seconds)
        req.sip_code = int(result.sip_code)
        req.recording_uri = result.recording_uri
        req.transcript = result.transcript
    else:
        req.end_time.CopyFrom(_ts(end_time))
    return req


class ServerClient:
    """Thin async wrapper over DialerServiceStub with the service token."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        service_token: str,
        *,
        rpc_timeout: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stub = dialer_service_pb2_grpc.DialerServiceStub(channel)
        self._metadata = (("authorization", f"Bearer {service_token}"),)
        self._timeout = rpc_timeout
        self._monotonic = monotonic

    async def start_attempt(
        self,
        *,
        organization_id: str,
        batch_id: str,
        contact_id: str,
        fencing_token: int,
        lease_id: str,
        dialer_id: str,
        provider_call_id: str,
    ) -> dialer_service_pb2.StartAttemptResponse:
        """One try; raises grpc.aio.AioRpcError."""
        return await self.stub.StartAttempt(
            dialer_service_pb2.StartAttemptRequest(
                organization_id=organization_id,
                batch_id=batch_id,
                contact_id=contact_id,
                fencing_token=int(fencing_token),
                lease_id=lease_id,
                dialer_id=dialer_id,
                provider_call_id=provider_call_id,
            ),
            metadata=self._metadata,
            timeout=self._timeout,
        )

    async def mark_answered(self, attempt_id: str, fencing_token: int, answer_time: datetime, *, tries: int = 5) -> bool:
        """Best effort (the outcome, sent later, carries the answer time too)."""
        req = dialer_service_pb2.MarkAnsweredRequest(attempt_id=attempt_id, fencing_token=int(fencing_token))
        req.answer_time.CopyFrom(_ts(answer_time))
        delay = 0.1
        for i in range(tries):
            try:
                await self.stub.MarkAnswered(req, metadata=self._metadata, timeout=self._timeout)
                return True
            except grpc.aio.AioRpcError as exc:
                if exc.code() in REJECTED_CODES or i == tries - 1:
                    log_event(log, "mark_answered.failed", logging.WARNING, attempt_id=attempt_id,
                              code=exc.code().name, error=exc.details())
                    return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
        return False

    async def finish_once(self, req: dialer_service_pb2.FinishAttemptRequest) -> tuple[str, Any]:
        """One try: ("ok", response) | ("rejected", error) | ("retry", error)."""
        try:
            resp = await self.stub.FinishAttempt(req, metadata=self._metadata, timeout=self._timeout)
            return "ok", resp
        except grpc.aio.AioRpcError as exc:
            if exc.code() in REJECTED_CODES:
                return "rejected", exc
            return "retry", exc

    async def finish(
        self,
        req: dialer_service_pb2.FinishAttemptRequest,
        *,
        give_up: Callable[[], bool] = lambda: False,
        max_delay: float = 5.0,
    ) -> tuple[str, Any]:
        """Retries until the server answers: ("ok", FinishAttemptResponse) |
        ("rejected", error); ("gave_up", None) only once ``give_up()`` says
        so (a dialer shutting down past its budget)."""
        delay = 0.1
        while True:
            status, detail = await self.finish_once(req)
            if status != "retry":
                if status == "rejected":
                    log_event(log, "finish_attempt.rejected", logging.INFO, attempt_id=req.attempt_id,
                              fencing_token=req.fencing_token, code=detail.code().name, error=detail.details())
                return status, detail
            log_event(log, "finish_attempt.retry", logging.WARNING, attempt_id=req.attempt_id,
                      code=detail.code().name, error=detail.details(), retry_in=delay)
            if give_up():
                return "gave_up", None
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
            if give_up():
                return "gave_up", None
