"""Small client helpers for API tests."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from batchcalls.v1 import batch_service_pb2 as pb, batch_service_pb2_grpc as pb_grpc

VALID_NUMBERS = [
    "+14155552671", "+14155552672", "+14155552673", "+14155552674", "+14155552675",
    "+14155552676", "+14155552677", "+14155552678", "+14155552679", "+14155552680",
]


def csv_of(numbers: list[str], extra: str = "") -> bytes:
    lines = ["phone,name" + (",note" if extra else "")]
    for i, n in enumerate(numbers):
        lines.append(f"{n},Person {i}" + (f",{extra}" if extra else ""))
    return ("\n".join(lines) + "\n").encode()


def create_request(org: Any, numbers: list[str] | None = None, **kw: Any) -> pb.CreateBatchRequest:
    fields: dict[str, Any] = dict(
        request_id=str(uuid.uuid4()),
        display_name="January Payment Reminders",
        agent=org.agent_name,
        from_phone_number=org.phone_number_name,
        csv_content=csv_of(numbers or VALID_NUMBERS[:3]),
        filename="contacts.csv",
    )
    fields.update(kw)
    return pb.CreateBatchRequest(**fields)


def violations(err: grpc.RpcError) -> dict[str, str]:
    status = rpc_status.from_call(err)
    out: dict[str, str] = {}
    if status is None:
        return out
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            br = error_details_pb2.BadRequest()
            detail.Unpack(br)
            for v in br.field_violations:
                out[v.field] = v.description
    return out


def error_reason(err: grpc.RpcError) -> str:
    status = rpc_status.from_call(err)
    if status is None:
        return ""
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.reason
    return ""


def stub(ch: grpc.Channel) -> pb_grpc.BatchServiceStub:
    return pb_grpc.BatchServiceStub(ch)
