"""DialerService (internal): callable with the service credential only."""

from __future__ import annotations

from typing import Any

import grpc

from batchcalls.v1 import dialer_service_pb2 as pb, dialer_service_pb2_grpc as pb_grpc, resources_pb2 as res
from server.api import convert
from server.api.auth import require_service
from server.api.errors import handles_errors
from server.domain.errors import FieldViolation, InvalidArgument
from server.service import dialing
from server.service.context import ServiceContext

DECISIONS = {
    dialing.Decision.GRANTED: pb.START_ATTEMPT_DECISION_GRANTED,
    dialing.Decision.STALE: pb.START_ATTEMPT_DECISION_STALE,
    dialing.Decision.BATCH_NOT_RUNNING: pb.START_ATTEMPT_DECISION_BATCH_NOT_RUNNING,
    dialing.Decision.DEFERRED: pb.START_ATTEMPT_DECISION_DEFERRED,
    dialing.Decision.SUPPRESSED: pb.START_ATTEMPT_DECISION_SUPPRESSED,
}


def _trunk(number: Any) -> res.OutboundTrunk:
    t = convert.phone_number_msg(number).outbound_trunk
    t.password = number.trunk_password  # internal API only
    return t


class DialerServicer(pb_grpc.DialerServiceServicer):
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    @handles_errors
    async def StartAttempt(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        require_service(self.ctx, context)
        if not request.contact_id.isdigit() or len(request.contact_id) > 18:
            return pb.StartAttemptResponse(decision=pb.START_ATTEMPT_DECISION_STALE, reason="unknown contact")
        r = await dialing.start_attempt(
            self.ctx,
            org_id=request.organization_id,
            batch_id=request.batch_id,
            contact_id=int(request.contact_id),
            fencing_token=request.fencing_token,
            lease_id=request.lease_id[:64],
            dialer_id=request.dialer_id[:128],
            provider_call_id=request.provider_call_id[:128],
        )
        resp = pb.StartAttemptResponse(decision=DECISIONS[r.decision], reason=r.reason,
                                       next_attempt_time=convert.ts(r.next_attempt_at))
        if r.decision is dialing.Decision.GRANTED:
            c, b = r.contact, r.batch
            resp.attempt_id = r.attempt_id
            resp.attempt_number = r.attempt_number
            resp.phone_number = c.phone
            resp.from_phone_number = r.number.e164
            resp.outbound_trunk.CopyFrom(_trunk(r.number))
            resp.agent_id = r.agent.id
            resp.contact_name = c.name
            resp.variables.update({str(k): str(v) for k, v in (c.variables or {}).items()})
            resp.max_call_duration_seconds = b.max_call_seconds
            resp.recording_enabled = r.agent.recording_enabled
            resp.transcript_enabled = r.agent.transcript_enabled
            resp.dial_deadline_time.CopyFrom(convert.ts(r.dial_deadline))
            resp.start_time.CopyFrom(convert.ts(r.started_at))
        return resp

    @handles_errors
    async def MarkAnswered(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        require_service(self.ctx, context)
        await dialing.mark_answered(
            self.ctx, request.attempt_id, request.fencing_token,
            convert.from_ts(request.answer_time, request.HasField("answer_time")),
        )
        return pb.MarkAnsweredResponse()

    @handles_errors
    async def FinishAttempt(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        require_service(self.ctx, context)
        outcome = convert.enum_word(res.CallOutcome, "CALL_OUTCOME", request.outcome)
        if outcome is None:
            raise InvalidArgument(FieldViolation("outcome", "required"))
        r = await dialing.finish_attempt(
            self.ctx,
            dialing.FinishInput(
                attempt_id=request.attempt_id,
                token=request.fencing_token,
                outcome=outcome,
                answer_time=convert.from_ts(request.answer_time, request.HasField("answer_time")),
                end_time=convert.from_ts(request.end_time, request.HasField("end_time")),
                duration_seconds=request.duration_seconds,
                sip_code=request.sip_code,
                recording_uri=request.recording_uri,
                transcript=request.transcript,
                closed_by=request.closed_by,
                detail=request.detail,
            ),
        )
        return pb.FinishAttemptResponse(
            contact_status=convert.contact_status(r.contact_status),
            next_attempt_time=convert.ts(r.next_attempt_at),
            batch_status=convert.batch_status(r.batch_status),
        )
