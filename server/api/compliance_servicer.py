"""ComplianceService (issue 16): ExplainCallability, and the Callability
message shared with GetContact. Thin: the rules live in
server.domain.jurisdiction, the lookups in server.service.compliance."""

from __future__ import annotations

from typing import Any

import grpc

from batchcalls.v1 import compliance_pb2, compliance_service_pb2 as pb, compliance_service_pb2_grpc as pb_grpc
from server.api import convert
from server.api.auth import principal
from server.api.errors import handles_errors
from server.domain.ids import parse_name
from server.service import compliance
from server.service.context import ServiceContext


def callability_msg(e: compliance.Explanation) -> compliance_pb2.Callability:
    v = e.verdict
    blocked = set(v.blocked_by)
    return compliance_pb2.Callability(
        allowed=v.allowed,
        time=convert.ts(v.at),
        next_allowed_time=convert.ts(v.next_allowed),
        region_code=v.country,
        state=v.state,
        time_zones=list(v.zones),
        time_zones_fallback=v.zones_fallback,
        rules=[
            compliance_pb2.AppliedRule(
                rule_id=r.rule_id, jurisdiction=r.jurisdiction, kind=r.kind, description=r.description,
                source=r.source, checked_date=r.checked.isoformat() if r.checked else "", verified=r.verified,
                blocked=r.rule_id in blocked,
            )
            for r in v.rules
        ],
        reason=v.reason,
        table_version=v.table_version,
        jurisdiction_rules_applied=e.jurisdiction_applied,
    )


class ComplianceServicer(pb_grpc.ComplianceServiceServicer):
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    @handles_errors
    async def ExplainCallability(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        p = await principal(self.ctx, context)  # any role of the organization
        batch_id = parse_name(request.batch, "batches", "batch") if request.batch else None
        at = convert.from_ts(request.time, request.HasField("time"))
        e = await compliance.explain(self.ctx, p.org_id, request.phone_number, at, batch_id)
        return pb.ExplainCallabilityResponse(callability=callability_msg(e))
