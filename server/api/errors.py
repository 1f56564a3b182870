"""Domain errors -> canonical gRPC status with google.rpc details, in the
manner of grpc's examples/python/errors. Unexpected exceptions become
INTERNAL with a generic message: no traceback reaches a user."""

from __future__ import annotations

import functools
import logging
from typing import Any, Awaitable, Callable

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from server.api.bounds import check_request
from server.domain import errors as e

log = logging.getLogger(__name__)
DOMAIN = "batchcalls.v1"


def _status(code: int, message: str, *details: Any) -> grpc.Status:
    packed = []
    for d in details:
        a = any_pb2.Any()
        a.Pack(d)
        packed.append(a)
    return rpc_status.to_status(status_pb2.Status(code=code, message=message, details=packed))


def to_grpc_status(exc: Exception) -> grpc.Status:
    if isinstance(exc, e.InvalidArgument):
        br = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                for v in exc.violations
            ]
        )
        return _status(code_pb2.INVALID_ARGUMENT, exc.message, br)
    if isinstance(exc, e.FailedPrecondition):
        info = error_details_pb2.ErrorInfo(reason=exc.reason, domain=DOMAIN, metadata=exc.metadata)
        return _status(code_pb2.FAILED_PRECONDITION, exc.message, info)
    if isinstance(exc, e.NotFound):
        return _status(code_pb2.NOT_FOUND, exc.message)
    if isinstance(exc, e.AlreadyExists):
        return _status(code_pb2.ALREADY_EXISTS, exc.message)
    if isinstance(exc, e.PermissionDenied):
        info = error_details_pb2.ErrorInfo(reason="ROLE_NOT_ALLOWED", domain=DOMAIN)
        return _status(code_pb2.PERMISSION_DENIED, exc.message, info)
    if isinstance(exc, e.Unauthenticated):
        return _status(code_pb2.UNAUTHENTICATED, exc.message)
    if isinstance(exc, e.ResourceExhausted):
        # Stream caps, rate limit (server/api/streams.py, rate_limit.py):
        # an ErrorInfo reason and, when known, a RetryInfo delay.
        extra: list[Any] = []
        if getattr(exc, "reason", ""):
            extra.append(error_details_pb2.ErrorInfo(reason=exc.reason, domain=DOMAIN,
                                                     metadata=getattr(exc, "metadata", None) or {}))
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            ri = error_details_pb2.RetryInfo()
            ri.retry_delay.FromMilliseconds(max(1, round(retry_after * 1000)))
            extra.append(ri)
        return _status(code_pb2.RESOURCE_EXHAUSTED, exc.message, *extra)
    return _status(code_pb2.INTERNAL, "internal error; the server logged the details")


def _csv_rejected_to_invalid(exc: Exception) -> Exception:
    from server.domain.csv_ingest import CsvRejected

    if isinstance(exc, CsvRejected):
        err = e.InvalidArgument(e.FieldViolation(exc.field, exc.message), exc.message)
        return err
    return exc


async def abort_for(context: grpc.aio.ServicerContext, exc: Exception) -> None:
    exc = _csv_rejected_to_invalid(exc)
    if not isinstance(exc, e.DomainError):
        log.exception("unexpected error", exc_info=exc)
    status = to_grpc_status(exc)
    await context.abort(status.code, status.details, status.trailing_metadata)


def handles_errors(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Wraps a unary servicer method: domain errors become rich statuses."""

    @functools.wraps(fn)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            check_request(request)  # every input bounded, before any work (server/api/bounds.py)
            return await fn(self, request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:  # noqa: BLE001 - mapped, never leaked
            await abort_for(context, exc)

    return wrapper


def handles_stream_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            check_request(request)
            async for item in fn(self, request, context):
                yield item
        except grpc.aio.AbortError:
            raise
        except Exception as exc:  # noqa: BLE001
            await abort_for(context, exc)

    return wrapper
