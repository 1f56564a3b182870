"""ExportBatch: CSV (all / successful / failed contacts) or a PDF summary of
a COMPLETED or FAILED batch, streamed in chunks.

* Any other status is FAILED_PRECONDITION with ErrorInfo reason
  ``BATCH_NOT_EXPORTABLE`` naming the status; another organization's batch
  is NOT_FOUND. Members may export (it is a read).
* CSV: rows come from Postgres in keyset pages (``server.service.export``)
  and are encoded by ``server.domain.export_csv.csv_chunks`` (formula
  injection neutralised; E.164 phone numbers written as they are); messages hold about
  ``CHUNK_BYTES`` each (a message never exceeds three times that).
* PDF: ``server.domain.report_pdf.render_pdf`` (rendered off the event
  loop), sent in ``CHUNK_BYTES`` messages.
* The first message carries ``content_type`` and ``filename``
  (``<batch name slug>-<filter>.csv`` or ``<slug>-report.pdf``).
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator

from batchcalls.v1 import batch_service_pb2 as pb
from server.domain.batch_rules import Action
from server.domain.errors import FieldViolation, InvalidArgument
from server.domain.export_csv import csv_chunks
from server.domain.report_pdf import render_pdf
from server.service import batches, lifecycle
from server.service import export as export_service
from server.service.context import ServiceContext

CHUNK_BYTES = 64 * 1024
CSV_TYPE = "text/csv"
PDF_TYPE = "application/pdf"

_FILTERS = {
    pb.EXPORT_FILTER_UNSPECIFIED: "all",
    pb.EXPORT_FILTER_ALL: "all",
    pb.EXPORT_FILTER_SUCCESSFUL: "successful",
    pb.EXPORT_FILTER_FAILED: "failed",
}
_FORMATS = {pb.EXPORT_FORMAT_UNSPECIFIED: "csv", pb.EXPORT_FORMAT_CSV: "csv", pb.EXPORT_FORMAT_PDF: "pdf"}


def _header_bytes(columns: list[str], extracted: list[str] | None = None) -> bytes:
    """What ``csv_chunks`` writes before the first row (header line)."""
    return b"".join(csv_chunks([], columns, CHUNK_BYTES, extracted_fields=extracted or []))


async def csv_stream(ctx: ServiceContext, batch_id: str, export_filter: str, columns: list[str]) -> AsyncIterator[bytes]:
    """The CSV file in chunks: one header, then every page. ``csv_chunks``
    runs per page; the header it repeats on later pages is cut off."""
    extracted = await export_service.extracted_field_names(ctx, batch_id)
    header_len = len(_header_bytes(columns, extracted))
    out = bytearray()
    first = True
    async for page in export_service.export_pages(ctx, batch_id, export_filter):
        skip = 0 if first else header_len
        first = False
        for chunk in csv_chunks(page, columns, CHUNK_BYTES, extracted_fields=extracted):
            if skip:
                cut = min(skip, len(chunk))
                chunk = chunk[cut:]
                skip -= cut
            out += chunk
            if len(out) >= CHUNK_BYTES:
                yield bytes(out)
                out.clear()
    if first:  # no rows at all: the header alone
        out += _header_bytes(columns, extracted)
    if out:
        yield bytes(out)


async def export_batch(ctx: ServiceContext, principal: Any, batch_id: str, request: Any) -> AsyncIterator[pb.ExportBatchResponse]:
    export_filter = _FILTERS.get(request.filter)
    fmt = _FORMATS.get(request.format)
    if export_filter is None:
        raise InvalidArgument(FieldViolation("filter", f"unknown export filter {request.filter}"))
    if fmt is None:
        raise InvalidArgument(FieldViolation("format", f"unknown export format {request.format}"))
    row = await batches.get_batch(ctx, principal, batch_id)  # NOT_FOUND across organizations
    lifecycle.check_action(Action.EXPORT, row)
    name = export_service.slug(row.display_name)

    if fmt == "pdf":
        histogram = await export_service.attempts_histogram(ctx, batch_id)
        data = export_service.report_data(row, histogram)
        pdf = await asyncio.to_thread(render_pdf, data)
        for i in range(0, max(len(pdf), 1), CHUNK_BYTES):
            msg = pb.ExportBatchResponse(chunk=pdf[i:i + CHUNK_BYTES])
            if i == 0:
                msg.content_type, msg.filename = PDF_TYPE, f"{name}-report.pdf"
            yield msg
        return

    columns = [str(c) for c in (row.custom_columns or [])]
    first = True
    async for chunk in csv_stream(ctx, batch_id, export_filter, columns):
        msg = pb.ExportBatchResponse(chunk=chunk)
        if first:
            msg.content_type, msg.filename = CSV_TYPE, f"{name}-{export_filter}.csv"
            first = False
        yield msg

