"""DialerService (internal): callable with the service credential only."""

from __future__ import annotations

import logging
from typing import Any

import grpc

from batchcalls.v1 import dialer_service_pb2 as pb, dialer_service_pb2_grpc as pb_grpc, resources_pb2 as res
from server.api import convert
from server.adapters.secrets import SecretBox, SecretsKeyMissing, box_for
from server.api.auth import require_service
from server.api.errors import handles_errors, to_grpc_status
from server.domain.errors import DomainError, FieldViolation, InvalidArgument
from server.service import dialing
from server.service.context import ServiceContext

DECISIONS = {
    dialing.Decision.GRANTED: pb.START_ATTEMPT_DECISION_GRANTED,
    dialing.Decision.STALE: pb.START_ATTEMPT_DECISION_STALE,
    dialing.Decision.BATCH_NOT_RUNNING: pb.START_ATTEMPT_DECISION_BATCH_NOT_RUNNING,
    dialing.Decision.DEFERRED: pb.START_ATTEMPT_DECISION_DEFERRED,
    dialing.Decision.SUPPRESSED: pb.START_ATTEMPT_DECISION_SUPPRESSED,
}


log = logging.getLogger(__name__)


def _trunk(number: Any, box: SecretBox) -> res.OutboundTrunk:
    t = convert.phone_number_msg(number).outbound_trunk
    try:
        t.password = box.open(number.trunk_password)  # internal API only: decrypted here and nowhere else
    except SecretsKeyMissing as exc:
        # The attempt is already granted in Postgres: failing the whole
        # (batched) response would strand every grant in it. The call goes
        # out without the password, the carrier refuses it (blocked or
        # carrier_error, counted by the circuit breaker) and the log says why.
        log.error("trunk password of phone number %s unreadable: %s", number.id, exc)
        t.password = ""
    return t


MAX_BATCH_ITEMS = 500


def start_input(request: Any) -> dialing.StartInput | None:
    """None for a contact id that cannot exist (the claim is stale)."""
    if not (request.contact_id.isascii() and request.contact_id.isdigit()) or len(request.contact_id) > 18:
        return None
    return dialing.StartInput(
        org_id=request.organization_id,
        batch_id=request.batch_id,
        contact_id=int(request.contact_id),
        fencing_token=request.fencing_token,
        lease_id=request.lease_id[:64],
        dialer_id=request.dialer_id[:128],
        provider_call_id=request.provider_call_id[:128],
    )


def start_response(r: dialing.StartResult, trunks: dict[str, res.OutboundTrunk] | None = None,
                   box: SecretBox | None = None) -> pb.StartAttemptResponse:
    """``trunks`` caches the trunk message per caller number over one batch
    call; ``box`` decrypts the stored passwords (docs/design.md §7)."""
    box = box or box_for("")
    resp = pb.StartAttemptResponse(decision=DECISIONS[r.decision], reason=r.reason,
                                   next_attempt_time=convert.ts(r.next_attempt_at))
    if r.decision is dialing.Decision.GRANTED:
        c, b = r.contact, r.batch
        resp.attempt_id = r.attempt_id
        resp.attempt_number = r.attempt_number
        resp.phone_number = c.phone
        resp.from_phone_number = r.number.e164
        trunk = trunks.get(r.number.id) if trunks is not None else None
        if trunk is None:
            trunk = _trunk(r.number, box)
            if trunks is not None:
                trunks[r.number.id] = trunk
        resp.outbound_trunk.CopyFrom(trunk)
        resp.organization_calls_per_second = float(getattr(r.org, "calls_per_second", 0.0) or 0.0)
        resp.agent_id = r.agent.id
        resp.contact_name = c.name
        resp.variables.update({str(k): str(v) for k, v in (c.variables or {}).items()})
        resp.max_call_duration_seconds = b.max_call_seconds
        resp.recording_enabled = r.agent.recording_enabled
        resp.transcript_enabled = r.agent.transcript_enabled
        connection = convert.sip_connection_msg(r.agent, with_password=True)  # internal API only
        if connection is not None:
            connection.password = box.open(connection.password)
            resp.agent_sip_connection.CopyFrom(connection)
        resp.dial_deadline_time.CopyFrom(convert.ts(r.dial_deadline))
        resp.start_time.CopyFrom(convert.ts(r.started_at))
    return resp


STALE_CONTACT = pb.StartAttemptResponse(decision=pb.START_ATTEMPT_DECISION_STALE, reason="unknown contact")


def answer_input(request: Any) -> dialing.AnswerInput:
    return dialing.AnswerInput(request.attempt_id, request.fencing_token,
                               convert.from_ts(request.answer_time, request.HasField("answer_time")))


def finish_input(request: Any, field: str = "outcome") -> dialing.FinishInput:
    outcome = convert.enum_word(res.CallOutcome, "CALL_OUTCOME", request.outcome)
    if outcome is None:
        raise InvalidArgument(FieldViolation(field, "required"))
    return dialing.FinishInput(
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
        agent_answer_delay_ms=request.agent_answer_delay_ms,
        agent_sip_code=request.agent_sip_code,
    )


def finish_response(r: dialing.FinishResult) -> pb.FinishAttemptResponse:
    return pb.FinishAttemptResponse(
        contact_status=convert.contact_status(r.contact_status),
        next_attempt_time=convert.ts(r.next_attempt_at),
        batch_status=convert.batch_status(r.batch_status),
    )


def item_error(exc: DomainError | None) -> pb.ItemError:
    if exc is None:
        return pb.ItemError()
    status = to_grpc_status(exc)
    return pb.ItemError(code=status.code.value[0], reason=getattr(exc, "reason", "") or type(exc).__name__,
                        message=exc.message)


def _check_size(items: Any) -> None:
    if len(items) > MAX_BATCH_ITEMS:
        raise InvalidArgument(FieldViolation("requests", f"at most {MAX_BATCH_ITEMS} items, got {len(items)}"))


class DialerServicer(pb_grpc.DialerServiceServicer):
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    @handles_errors
    async def StartAttempt(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        require_service(self.ctx, context)
        item = start_input(request)
        if item is None:
            return STALE_CONTACT
        return start_response((await dialing.start_attempts(self.ctx, [item]))[0],
                              box=box_for(self.ctx.settings.secrets_key))

    @handles_errors
    async def BatchStartAttempts(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        require_service(self.ctx, context)
        _check_size(request.requests)
        items = [start_input(r) for r in request.requests]
        results = iter(await dialing.start_attempts(self.ctx, [i for i in items if i is not None]))
        trunks: dict[str, res.OutboundTrunk] = {}
        box = box_for(self.ctx.settings.secrets_key)
        return pb.BatchStartAttemptsResponse(
            responses=[STALE_CONTACT if i is None else start_response(next(results), trunks, box) for i in items]
        )

    @handles_errors
    async def MarkAnswered(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        require_service(self.ctx, context)
        await dialing.mark_answered(self.ctx, request.attempt_id, request.fencing_token, answer_input(request).answer_time)
        return pb.MarkAnsweredResponse()

    @handles_errors
    async def BatchMarkAnswered(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        require_service(self.ctx, context)
        _check_size(request.requests)
        errors = await dialing.mark_answered_many(self.ctx, [answer_input(r) for r in request.requests])
        return pb.BatchMarkAnsweredResponse(results=[item_error(e) for e in errors])

    @handles_errors
    async def FinishAttempt(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        require_service(self.ctx, context)
        return finish_response(await dialing.finish_attempt(self.ctx, finish_input(request)))

    @handles_errors
    async def BatchFinishAttempts(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        require_service(self.ctx, context)
        _check_size(request.requests)
        inputs = [finish_input(r, f"requests[{k}].outcome") for k, r in enumerate(request.requests)]
        results = await dialing.finish_attempts(self.ctx, inputs)
        return pb.BatchFinishAttemptsResponse(results=[
            pb.FinishAttemptResult(error=item_error(r)) if isinstance(r, DomainError)
            else pb.FinishAttemptResult(response=finish_response(r))
            for r in results
        ])
