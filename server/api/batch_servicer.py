"""BatchService: converts proto <-> use-case inputs; no rules live here."""

from __future__ import annotations

from typing import Any, AsyncIterator

import grpc

from batchcalls.v1 import batch_pb2, batch_service_pb2 as pb, batch_service_pb2_grpc as pb_grpc, resources_pb2 as res
from server.api import convert
from server.api.auth import principal
from server.api.errors import handles_errors, handles_stream_errors
from server.domain import batch_rules as rules
from server.domain.auth import Principal
from server.domain.errors import FieldViolation, InvalidArgument, Violations
from server.domain.ids import parse_contact_name, parse_name
from server.domain.schedule import resolve_schedule
from server.service import batches, lifecycle
from server.service.batches import ContactFilter, CreateBatchInput, WindowInput
from server.service.context import ServiceContext

FILENAME_MAX = 255


def page_bytes_budget(max_message_bytes: int) -> int:
    """Serialized bytes of the items of one list page: half the message limit
    leaves room for the rest of the response and any one oversized item."""
    return max(64 * 1024, max_message_bytes // 2)


def _ref(name: str, collection: str, field: str, v: Violations) -> str | None:
    try:
        return parse_name(name, collection, field)
    except InvalidArgument as exc:
        v.items.extend(exc.violations)
    except Exception:
        return "missing_0000000000000000"  # well-formed name of nothing: reported as not found
    return None


def _window_mode(value: int) -> str:
    word = convert.enum_word(res.CallingWindowMode, "CALLING_WINDOW_MODE", value)
    return word or "org"


def _statuses(values: Any, enum: Any, prefix: str, field: str) -> list[str]:
    out = []
    for v in values:
        word = convert.enum_word(enum, prefix, v)
        if word is None:
            raise InvalidArgument(FieldViolation(field, f"unknown value {v}"))
        out.append(word)
    return out


class BatchServicer(pb_grpc.BatchServiceServicer):
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def _batch_msg(self, p: Principal, batch_id: str) -> batch_pb2.Batch:
        row, figures = await batches.get_batch_with_figures(self.ctx, p, batch_id)
        return convert.batch_msg(row, retry_default=self.ctx.retry_policy, **figures)

    def _cost(self, report: Any, suppressed: set[int], estimate: int) -> batch_pb2.CostEstimate:
        return convert.cost_msg(report.valid_rows - len(suppressed), estimate, self.ctx.prices.per_minute_micros)

    @handles_errors
    async def ValidateContacts(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        p = await principal(self.ctx, context)
        if len(request.filename) > FILENAME_MAX:
            raise InvalidArgument(FieldViolation("filename", f"at most {FILENAME_MAX} characters"))
        report, suppressed, estimate = await batches.validate_contacts(
            self.ctx, p, request.csv_content, request.filename, request.default_region
        )
        return pb.ValidateContactsResponse(
            report=convert.report_msg(report, suppressed), cost_estimate=self._cost(report, suppressed, estimate)
        )

    @handles_errors
    async def CreateBatch(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        p = await principal(self.ctx, context)
        p.require_write()
        v = Violations()
        if len(request.filename) > FILENAME_MAX:
            v.add("filename", f"at most {FILENAME_MAX} characters")
        agent_id = _ref(request.agent, "agents", "agent", v) if request.agent else None
        number_id = (
            _ref(request.from_phone_number, "phoneNumbers", "from_phone_number", v) if request.from_phone_number else None
        )
        window = None
        if request.HasField("calling_window"):
            w = request.calling_window
            window = WindowInput(w.start_local_time, w.end_local_time, tuple(w.weekdays))
        own_delays, problems = convert.retry_delays_input(request.retry_policy)
        for where, problem in problems:
            v.add(where, problem)
        if request.voicemail_action and convert.enum_word(
            batch_pb2.VoicemailAction, "VOICEMAIL_ACTION", request.voicemail_action
        ) is None:
            v.add("voicemail_action", "RETRY_LATER or DONE")
        v.raise_if_any()
        inp = CreateBatchInput(
            request_id=request.request_id,
            display_name=request.display_name,
            description=request.description,
            agent_id=agent_id,
            from_number_id=number_id,
            concurrency_limit=request.concurrency_limit or rules.CONCURRENCY_DEFAULT,
            max_attempts=request.max_attempts or rules.ATTEMPTS_DEFAULT,
            scheduled_start_time=convert.from_ts(request.scheduled_start_time, request.HasField("scheduled_start_time")),
            scheduled_local_time=request.scheduled_local_time,
            timezone=request.timezone,
            csv_content=request.csv_content,
            filename=request.filename,
            default_region=request.default_region,
            window_mode=_window_mode(request.calling_window_mode),
            window=window,
            max_call_seconds=request.max_call_duration_seconds or rules.MAX_CALL_SECONDS_DEFAULT,
            retry_delays=own_delays,
            voicemail_action=convert.enum_word(batch_pb2.VoicemailAction, "VOICEMAIL_ACTION",
                                               request.voicemail_action) or "retry_later",
        )
        batch_id, report, suppressed, estimate = await batches.create_batch(self.ctx, p, inp)
        return pb.CreateBatchResponse(
            batch=await self._batch_msg(p, batch_id),
            report=convert.report_msg(report, suppressed),
            cost_estimate=self._cost(report, suppressed, estimate),
        )

    @handles_errors
    async def GetBatch(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        p = await principal(self.ctx, context)
        return pb.GetBatchResponse(batch=await self._batch_msg(p, parse_name(request.name, "batches")))

    @handles_errors
    async def ListBatches(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        p = await principal(self.ctx, context)
        statuses = _statuses(request.statuses, res.BatchStatus, "BATCH_STATUS", "statuses")
        rows, nxt, total = await batches.list_batches(self.ctx, p, request.page_size, request.page_token, statuses, request.search)
        return pb.ListBatchesResponse(batches=[convert.batch_msg(r, retry_default=self.ctx.retry_policy) for r in rows], next_page_token=nxt, total_size=total)

    @handles_errors
    async def ListContacts(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        p = await principal(self.ctx, context)
        batch_id = parse_name(request.parent, "batches", "parent")
        f = ContactFilter(
            statuses=_statuses(request.statuses, res.ContactStatus, "CONTACT_STATUS", "statuses"),
            min_attempts=request.min_attempts if request.HasField("min_attempts") and request.min_attempts >= 0 else None,
            max_attempts=request.max_attempts if request.HasField("max_attempts") and request.max_attempts >= 0 else None,
            last_attempt_from=convert.from_ts(request.last_attempt_from, request.HasField("last_attempt_from")),
            last_attempt_to=convert.from_ts(request.last_attempt_to, request.HasField("last_attempt_to")),
            search=request.search,
        )
        rows, nxt, total = await batches.list_contacts(self.ctx, p, batch_id, request.page_size, request.page_token, f)
        # However long the transcripts, a page stays under the message limit:
        # it ends early (at least one contact) and next_page_token resumes there.
        budget, used, msgs = page_bytes_budget(self.ctx.settings.max_message_bytes), 0, []
        read = convert.contact_page_reader(rows[0]._fields) if rows else convert.contact_msg
        for i, r in enumerate(rows):
            m = read(r)
            used += m.ByteSize() + 8
            if msgs and used > budget:
                nxt = batches.contacts_token_after(self.ctx, batch_id, f, rows[i - 1].id)
                break
            msgs.append(m)
        return pb.ListContactsResponse(contacts=msgs, next_page_token=nxt, total_size=total)

    @handles_errors
    async def GetContact(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        p = await principal(self.ctx, context)
        batch_id, contact_id = parse_contact_name(request.name)
        row, tries = await batches.get_contact(self.ctx, p, batch_id, contact_id)
        msg = convert.contact_msg(row, tries)
        from server.api.compliance_servicer import callability_msg
        from server.service.compliance import explain_contact

        if (why := await explain_contact(self.ctx, row)) is not None:  # waiting for its window (issue 16)
            msg.callability.CopyFrom(callability_msg(why))
        return pb.GetContactResponse(contact=msg)

    @handles_errors
    async def PauseBatch(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        p = await principal(self.ctx, context)
        batch_id = await lifecycle.pause(self.ctx, p, parse_name(request.name, "batches"))
        return pb.PauseBatchResponse(batch=await self._batch_msg(p, batch_id))

    @handles_errors
    async def ResumeBatch(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        p = await principal(self.ctx, context)
        batch_id = await lifecycle.resume(self.ctx, p, parse_name(request.name, "batches"))
        return pb.ResumeBatchResponse(batch=await self._batch_msg(p, batch_id))

    @handles_errors
    async def CancelBatch(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        p = await principal(self.ctx, context)
        batch_id = await lifecycle.cancel(self.ctx, p, parse_name(request.name, "batches"))
        return pb.CancelBatchResponse(batch=await self._batch_msg(p, batch_id))

    @handles_errors
    async def DeleteBatch(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        p = await principal(self.ctx, context)
        await lifecycle.delete_batch(self.ctx, p, parse_name(request.name, "batches"))
        return pb.DeleteBatchResponse()

    @handles_errors
    async def RescheduleBatch(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        p = await principal(self.ctx, context)
        p.require_write()
        batch_id = parse_name(request.name, "batches")
        when, tz = resolve_schedule(
            convert.from_ts(request.scheduled_start_time, request.HasField("scheduled_start_time")),
            request.scheduled_local_time,
            request.timezone,
            self.ctx.clock.now(),
            required=True,
        )
        assert when is not None
        await lifecycle.reschedule(self.ctx, p, batch_id, when, tz)
        return pb.RescheduleBatchResponse(batch=await self._batch_msg(p, batch_id))

    @handles_stream_errors
    async def WatchBatch(self, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        from server.api.watch import watch_batch

        p = await principal(self.ctx, context)
        batch_id = parse_name(request.name, "batches")
        async for msg in watch_batch(self, p, batch_id, context):
            yield msg

    @handles_stream_errors
    async def ExportBatch(self, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        from server.api.export import export_batch

        p = await principal(self.ctx, context)
        batch_id = parse_name(request.name, "batches")
        async for msg in export_batch(self.ctx, p, batch_id, request):
            yield msg
