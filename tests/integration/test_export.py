"""ExportBatch against the real stack: CSV filters, formula injection,
paging, PDF figures, and the statuses that may not export."""

from __future__ import annotations

import csv
import io
import re
import zlib

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from batchcalls.v1 import (
    batch_service_pb2 as bpb,
    batch_service_pb2_grpc as bgrpc,
    phone_number_service_pb2 as ppb,
    phone_number_service_pb2_grpc as pgrpc,
    resources_pb2 as res,
)
from server.api.export import CHUNK_BYTES
from tests.support.drive import create_batch, drive_batch

CSV_TEXT = (
    "phone,name,note,status\n"
    '+14155556001,"=HYPERLINK(""http://evil.example"",""click"")",=1+2,x\n'
    "+14155556002,+1 555 pwn,-5,y\n"
    "+14155556003,@SUM(A1),@x,z\n"
    "+14155556004,-2,plain,w\n"
    "+14155556005,Alice Ünïcode,+1+1,v\n"
    "+14155556006,Bob,\tTAB,u\n"
)
OUTCOME = {
    '=HYPERLINK("http://evil.example","click")': "completed",
    "+1 555 pwn": "invalid_number",
    "@SUM(A1)": "busy",  # max_attempts 1: permanently failed
    "-2": "completed",
    "Alice Ünïcode": "blocked",
    "Bob": "completed",
}


def export(stack, org, batch_id, flt=bpb.EXPORT_FILTER_UNSPECIFIED, fmt=bpb.EXPORT_FORMAT_UNSPECIFIED, role="owner"):
    with stack.channel() as ch:
        stream = bgrpc.BatchServiceStub(ch).ExportBatch(
            bpb.ExportBatchRequest(name=f"batches/{batch_id}", filter=flt, format=fmt), metadata=org.md(role)
        )
        return list(stream)


def rows_of(messages) -> list[list[str]]:
    data = b"".join(m.chunk for m in messages)
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


@pytest.fixture(scope="module")
def done(stack):
    """A COMPLETED batch with injection-prone names and variables."""
    org = stack.new_org()
    batch = create_batch(stack, org, CSV_TEXT, name="Jan — Payment Reminders!", max_attempts=1)
    result = drive_batch(stack, org, batch.batch_id, lambda c: OUTCOME[c.display_name], duration=42.5)
    assert result.batch_status == res.BATCH_STATUS_COMPLETED
    return org, batch.batch_id


def test_csv_all_contents_and_neutralisation(stack, done):
    org, bid = done
    messages = export(stack, org, bid)
    assert messages[0].content_type == "text/csv"
    assert messages[0].filename == "jan-payment-reminders-all.csv"
    assert all(m.content_type == "" and m.filename == "" for m in messages[1:])
    rows = rows_of(messages)
    header, body = rows[0], rows[1:]
    assert header == ["name", "phone", "status", "attempts", "duration_seconds", "failure_reason",
                      "call_timestamp", "note", "var_status", "disposition", "answered_by", "summary"]
    assert len(body) == 6
    by_phone = {r[1]: r for r in body}
    # Phone numbers are raw E.164 (they re-import into a CRM as they are).
    assert set(by_phone) == {f"+1415555600{i}" for i in range(1, 7)}
    first = by_phone["+14155556001"]
    assert first[0] == "'=HYPERLINK(\"http://evil.example\",\"click\")"
    assert first[7] == "'=1+2"
    assert first[2] == "completed" and first[3] == "1" and first[4] == "42.5"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", first[6])
    assert by_phone["+14155556002"][0] == "'+1 555 pwn" and by_phone["+14155556002"][7] == "'-5"
    assert by_phone["+14155556002"][2] == "invalid_number"
    assert by_phone["+14155556002"][5] == "invalid_number"
    assert by_phone["+14155556002"][4] == "0"
    assert by_phone["+14155556003"][0] == "'@SUM(A1)" and by_phone["+14155556003"][7] == "'@x"
    assert by_phone["+14155556003"][5] == "permanently_failed"
    assert by_phone["+14155556004"][0] == "'-2" and by_phone["+14155556004"][7] == "plain"
    assert by_phone["+14155556005"][0] == "Alice Ünïcode" and by_phone["+14155556005"][7] == "'+1+1"
    assert by_phone["+14155556006"][7] in ("'\tTAB", "'TAB", "TAB")  # a tab cell is neutralised if kept
    # Rows in upload order.
    assert [r[1] for r in body] == [f"+1415555600{i}" for i in range(1, 7)]
    # No cell of the file starts a formula: the only cells starting with a
    # formula character are "+" and ASCII digits (the phones).
    for r in rows:
        for cell in r:
            if cell and cell[0] in "=+-@\t\r\n":
                assert re.fullmatch(r"\+[0-9]+", cell), (r, cell)
    assert all(re.fullmatch(r"\+[0-9]+", r[1]) for r in body)


def test_csv_filters(stack, done):
    org, bid = done
    ok = rows_of(export(stack, org, bid, bpb.EXPORT_FILTER_SUCCESSFUL))[1:]
    assert sorted(r[0] for r in ok) == sorted(["'=HYPERLINK(\"http://evil.example\",\"click\")", "'-2", "Bob"])
    assert {r[2] for r in ok} == {"completed"}
    failed_msgs = export(stack, org, bid, bpb.EXPORT_FILTER_FAILED)
    assert failed_msgs[0].filename == "jan-payment-reminders-failed.csv"
    failed = rows_of(failed_msgs)[1:]
    assert sorted(r[2] for r in failed) == ["blocked", "failed", "invalid_number"]
    all_rows = rows_of(export(stack, org, bid, bpb.EXPORT_FILTER_ALL))[1:]
    assert len(all_rows) == 6
    assert export(stack, org, bid, bpb.EXPORT_FILTER_ALL)[0].filename.endswith("-all.csv")


def test_member_may_export_and_other_org_gets_not_found(stack, done):
    org, bid = done
    assert rows_of(export(stack, org, bid, role="member"))
    other = stack.new_org()
    with pytest.raises(grpc.RpcError) as err:
        export(stack, other, bid)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_pages_are_stitched_with_one_header(stack, done, monkeypatch):
    from server.service import export as export_service

    org, bid = done
    monkeypatch.setattr(export_service, "EXPORT_PAGE", 2)
    rows = rows_of(export(stack, org, bid))
    assert rows[0][0] == "name"
    assert sum(1 for r in rows if r[0] == "name") == 1
    assert [r[1] for r in rows[1:]] == [f"+1415555600{i}" for i in range(1, 7)]
    ok = rows_of(export(stack, org, bid, bpb.EXPORT_FILTER_SUCCESSFUL))
    assert len(ok) == 4


def test_large_export_streams_bounded_chunks(stack):
    """2,500 contacts with long names: several pages, several messages,
    none huge (the service is exercised directly; the batch need not end)."""
    from server.api.export import csv_stream

    org = stack.new_org()
    lines = "".join(f"+1628555{i:04d},{'N' * 150}{i}\n" for i in range(2500))
    batch = create_batch(stack, org, "phone,name\n" + lines)

    async def collect():
        return [c async for c in csv_stream(stack.ctx, batch.batch_id, "all", [])]

    chunks = stack.run(collect())
    assert len(chunks) >= 5
    assert max(len(c) for c in chunks) <= 3 * CHUNK_BYTES
    for c in chunks:
        c.decode("utf-8")  # each chunk decodes on its own
    rows = list(csv.reader(io.StringIO(b"".join(chunks).decode(), newline="")))
    assert len(rows) == 2501 and rows[0][0] == "name"
    assert rows[-1][0].endswith("2499")


def _inflated_text(pdf: bytes) -> str:
    parts = [pdf.decode("latin-1")]
    for m in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            parts.append(zlib.decompress(m.group(1)).decode("latin-1"))
        except zlib.error:
            pass
    return "\n".join(parts)


def test_pdf_report(stack, done):
    org, bid = done
    messages = export(stack, org, bid, fmt=bpb.EXPORT_FORMAT_PDF)
    assert messages[0].content_type == "application/pdf"
    assert messages[0].filename == "jan-payment-reminders-report.pdf"
    assert all(len(m.chunk) <= CHUNK_BYTES for m in messages)
    pdf = b"".join(m.chunk for m in messages)
    assert pdf.startswith(b"%PDF")
    body = _inflated_text(pdf)
    assert "Jan - Payment Reminders!" in body
    assert bid in body
    # 3 successful of 6 final contacts -> 50.0 %; 3 connected calls of 42.5 s.
    for figure in ("50.0%", "Successful calls", "Retry statistics", "Completed"):
        assert figure in body, figure
    with stack.channel() as ch:
        b = bgrpc.BatchServiceStub(ch).GetBatch(bpb.GetBatchRequest(name=f"batches/{bid}"), metadata=org.md()).batch
    from server.domain.cost import format_usd

    assert format_usd(b.stats.cost_micros) in body
    assert "43s" in body or "42s" in body  # average duration 42.5 s


def _assert_not_exportable(stack, org, batch_id, status_word):
    for fmt in (bpb.EXPORT_FORMAT_CSV, bpb.EXPORT_FORMAT_PDF):
        with pytest.raises(grpc.RpcError) as err:
            export(stack, org, batch_id, fmt=fmt)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert status_word.lower() in err.value.details().lower()
        status = rpc_status.from_call(err.value)
        infos = []
        for d in status.details:
            info = error_details_pb2.ErrorInfo()
            if d.Unpack(info):
                infos.append(info)
        assert [i.reason for i in infos] == ["BATCH_NOT_EXPORTABLE"]


def test_rejected_statuses(stack):
    csv_text = "phone\n+14155557001\n+14155557002\n"
    # PENDING: an organization without credits holds the batch back.
    broke = stack.new_org(credits_usd=0)
    pending = create_batch(stack, broke, csv_text)
    assert pending.status == res.BATCH_STATUS_PENDING
    _assert_not_exportable(stack, broke, pending.batch_id, "pending")

    org = stack.new_org()
    running = create_batch(stack, org, csv_text)
    assert running.status == res.BATCH_STATUS_RUNNING
    _assert_not_exportable(stack, org, running.batch_id, "running")
    with stack.channel() as ch:
        stub = bgrpc.BatchServiceStub(ch)
        stub.PauseBatch(bpb.PauseBatchRequest(name=f"batches/{running.batch_id}"), metadata=org.md())
        _assert_not_exportable(stack, org, running.batch_id, "paused")
        stub.CancelBatch(bpb.CancelBatchRequest(name=f"batches/{running.batch_id}"), metadata=org.md())
        _assert_not_exportable(stack, org, running.batch_id, "cancelled")
        # Unknown filter value: INVALID_ARGUMENT, not a crash.
        with pytest.raises(grpc.RpcError) as err:
            list(stub.ExportBatch(bpb.ExportBatchRequest(name=f"batches/{running.batch_id}", filter=99),
                                  metadata=org.md()))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_failed_batch_exports(stack):
    org = stack.new_org()
    batch = create_batch(stack, org, "phone,name\n+14155558001,a\n+14155558002,b\n+14155558003,c\n")
    drive_batch(stack, org, batch.batch_id, lambda c: "completed", limit=1)
    with stack.channel() as ch:
        pgrpc.PhoneNumberServiceStub(ch).DeletePhoneNumber(
            ppb.DeletePhoneNumberRequest(name=org.phone_number_name), metadata=org.md()
        )
        b = bgrpc.BatchServiceStub(ch).GetBatch(bpb.GetBatchRequest(name=f"batches/{batch.batch_id}"), metadata=org.md()).batch
    assert b.status == res.BATCH_STATUS_FAILED
    rows = rows_of(export(stack, org, batch.batch_id))[1:]
    assert sorted(r[2] for r in rows) == ["cancelled", "cancelled", "completed"]
    pdf = b"".join(m.chunk for m in export(stack, org, batch.batch_id, fmt=bpb.EXPORT_FORMAT_PDF))
    assert pdf.startswith(b"%PDF") and "Failed" in _inflated_text(pdf)
