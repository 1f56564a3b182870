"""ResultsService: thin servicers, public (reporter, admin or owner keys) and
internal (service credential, the simulated agent)."""

from __future__ import annotations

from typing import Any

import grpc
from batchcalls.v1 import results_service_pb2 as pb
from batchcalls.v1 import results_service_pb2_grpc as pb_grpc

from server.api import convert
from server.api.auth import reporter, require_service
from server.api.errors import handles_errors
from server.domain.ids import contact_name
from server.service import results
from server.service.context import ServiceContext


def _response(out: results.ReportOutcome) -> pb.ReportCallResultResponse:
    c = out.contact
    return pb.ReportCallResultResponse(
        contact=contact_name(c.batch_id, c.id),
        attempt_id=out.attempt.id,
        result=convert.call_result_msg(out.attempt),
        duplicate=out.duplicate,
        contact_status=convert.contact_status(c.status),
        next_attempt_time=convert.ts(c.next_attempt_at),
    )


class ResultsServicer(pb_grpc.ResultsServiceServicer):
    """Public listener: reporter, admin or owner keys of the call's organization."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    @handles_errors
    async def ReportCallResult(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        p = await reporter(self.ctx, context)
        report = convert.call_report(request.result, request.HasField("result"))
        return _response(await results.report_call_result(
            self.ctx, p, request.provider_call_id, request.attempt_id, report))


class InternalResultsServicer(pb_grpc.ResultsServiceServicer):
    """Internal listener, service credential: the dialer reports for the
    simulated trunk's built-in agent through the same use case (the
    organization is the attempt's)."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    @handles_errors
    async def ReportCallResult(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        require_service(self.ctx, context)
        report = convert.call_report(request.result, request.HasField("result"))
        return _response(await results.report_as_service(
            self.ctx, request.provider_call_id, request.attempt_id, report))
