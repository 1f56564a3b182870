"""The admin UI's gRPC client against the real server: metadata, error
decoding (field violations, ErrorInfo reasons, unreachable server), the calls
the pages make, and the actions the UI offers, which come from the server's
action matrix through ``Batch.allowed_actions``.

Backend: the session ``stack`` of tests/conftest.py (real server, embedded
PostgreSQL and Redis) plus a simulated carrier and a dialer
(``stack_with_dialer``), so a batch really runs to COMPLETED and can be
exported.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
import uuid

import grpc
import pytest

from admin_ui import view_models as vm
from admin_ui.client import ApiError, BatchcallsClient, FieldViolation, batch_id_of, batch_name
from batchcalls.v1 import batch_pb2, batch_service_pb2, resources_pb2

BS = resources_pb2.BatchStatus
CSV = b"phone,name,plan\n+14155552671,Ann,gold\n+442071838750,Bob,silver\nnot-a-number,Bad,\n+14155552671,Dup,\n\n"
COMPLETE_TIMEOUT_S = 120


def create_request(keys: object, **fields: object) -> batch_service_pb2.CreateBatchRequest:
    return batch_service_pb2.CreateBatchRequest(
        request_id=f"ui-test-{uuid.uuid4()}",
        display_name="Jan",
        agent=keys.agent_name,  # type: ignore[attr-defined]
        from_phone_number=keys.phone_number_name,  # type: ignore[attr-defined]
        csv_content=CSV,
        filename="c.csv",
        calling_window_mode=resources_pb2.CALLING_WINDOW_MODE_NONE,
        **fields,
    )


def wait_until_final(client: BatchcallsClient, name: str) -> batch_pb2.Batch:
    deadline = time.monotonic() + COMPLETE_TIMEOUT_S
    while time.monotonic() < deadline:
        batch = client.get_batch(name)
        if batch.status in (BS.BATCH_STATUS_COMPLETED, BS.BATCH_STATUS_FAILED, BS.BATCH_STATUS_CANCELLED):
            return batch
        time.sleep(0.5)
    raise AssertionError(f"batch {name} did not finish: {vm.batch_status_label(batch.status)}")


@pytest.fixture(scope="module")
def address(stack_with_dialer: object) -> str:
    return stack_with_dialer.grpc_address  # type: ignore[attr-defined]


@pytest.fixture()
def keys(stack_with_dialer: object) -> object:
    return stack_with_dialer.new_org("Acme")  # type: ignore[attr-defined]


def test_names() -> None:
    assert batch_name("b1") == "batches/b1" and batch_name("batches/b1") == "batches/b1"
    assert batch_id_of("batches/b1") == "b1" and batch_id_of("b1") == "b1"


def test_unauthenticated_is_decoded(address: str) -> None:
    with pytest.raises(ApiError) as ei:
        BatchcallsClient(address, "wrong").get_organization()
    assert ei.value.code == grpc.StatusCode.UNAUTHENTICATED and ei.value.is_unauthenticated
    assert "API key" in ei.value.readable()


def test_field_violations_are_decoded(address: str, keys: object) -> None:
    c = BatchcallsClient(address, keys.owner_key)  # type: ignore[attr-defined]
    with pytest.raises(ApiError) as ei:
        c.create_batch(batch_service_pb2.CreateBatchRequest(request_id="x"))
    err = ei.value
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    # One violation per missing field, each saying it is required.
    assert [v.field for v in err.field_violations] == ["display_name", "agent", "from_phone_number"]
    assert all(v.description.startswith("required") for v in err.field_violations)
    assert FieldViolation("display_name", "required: a descriptive batch name") in err.field_violations
    text = err.readable()
    assert text.splitlines()[0] == err.message and "display_name" in err.message
    assert text.splitlines()[1:] == [f"• {v.field}: {v.description}" for v in err.field_violations]
    assert str(err) == text


def test_error_info_reason_is_decoded(address: str, keys: object) -> None:
    member = BatchcallsClient(address, keys.member_key)  # type: ignore[attr-defined]
    with pytest.raises(ApiError) as ei:
        member.create_batch(batch_service_pb2.CreateBatchRequest())
    assert ei.value.code == grpc.StatusCode.PERMISSION_DENIED and ei.value.is_permission_denied
    assert (ei.value.reason, ei.value.domain) == ("ROLE_NOT_ALLOWED", "batchcalls.v1")
    assert ei.value.message  # the server's sentence, shown to the member


def test_unavailable_names_the_address() -> None:
    c = BatchcallsClient("127.0.0.1:9", "k", timeout=5)
    with pytest.raises(ApiError) as ei:
        c.get_organization()
    assert ei.value.is_unavailable
    assert ei.value.readable().startswith("Cannot reach the batchcalls server at 127.0.0.1:9")


def test_plain_status_without_details() -> None:
    class E(grpc.RpcError):
        def code(self) -> grpc.StatusCode:
            return grpc.StatusCode.NOT_FOUND

        def details(self) -> str:
            return "Batch batches/x not found."

        def trailing_metadata(self) -> tuple[()]:
            return ()

    err = ApiError.from_rpc_error(E(), "addr")
    assert err.code == grpc.StatusCode.NOT_FOUND and err.message == "Batch batches/x not found."
    assert err.field_violations == [] and err.reason == ""


def test_role_and_catalog(address: str, keys: object) -> None:
    c = BatchcallsClient(address, keys.owner_key)  # type: ignore[attr-defined]
    org = c.get_organization()
    assert org.role == resources_pb2.ROLE_OWNER and org.organization.display_name == "Acme"
    member = BatchcallsClient(address, keys.member_key)  # type: ignore[attr-defined]
    assert member.get_organization().role == resources_pb2.ROLE_MEMBER
    agents = c.list_all_agents(voice_only=True)
    assert [a.name for a in agents] == [keys.agent_name]  # type: ignore[attr-defined]
    numbers = c.list_all_phone_numbers(with_outbound_trunk_only=True)
    assert [n.name for n in numbers] == [keys.phone_number_name]  # type: ignore[attr-defined]


def test_batch_runs_to_completion_and_exports(address: str, keys: object) -> None:
    c = BatchcallsClient(address, keys.owner_key)  # type: ignore[attr-defined]
    v = c.validate_contacts(CSV, "c.csv")
    assert (v.report.valid_rows, v.report.invalid_count, v.report.duplicate_count, v.report.empty_rows) == (
        2, 1, 1, 1)
    assert list(v.report.custom_columns) == ["plan"]

    req = create_request(keys)
    b1 = c.create_batch(req).batch
    b2 = c.create_batch(req).batch  # same request id: same batch
    assert b1.name == b2.name
    assert c.get_batch(b1.batch_id).name == b1.name

    done = wait_until_final(c, b1.name)
    assert done.status == BS.BATCH_STATUS_COMPLETED, vm.batch_status_label(done.status)
    # The completed batch's row of the server's matrix, as the UI offers it.
    assert vm.allowed_actions(done) == (vm.ACTION_VIEW, vm.ACTION_DELETE, vm.ACTION_EXPORT)
    with pytest.raises(ApiError) as ei:
        c.resume_batch(b1.name)
    assert ei.value.code == grpc.StatusCode.FAILED_PRECONDITION and ei.value.reason == "BATCH_NOT_RESUMABLE"

    contacts = c.list_contacts(b1.name, page_size=25)
    assert contacts.total_size == 2
    export = c.export_batch(b1.name, filter=batch_service_pb2.EXPORT_FILTER_ALL,
                            format=batch_service_pb2.EXPORT_FORMAT_CSV)
    assert export.content_type.startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.content.decode())))
    assert list(rows[0])[:3] == ["name", "phone", "status"]
    # Phones are exported as raw E.164 (no formula-injection apostrophe).
    assert sorted((r["name"], r["phone"]) for r in rows) == [("Ann", "+14155552671"), ("Bob", "+442071838750")]
    assert export.filename.endswith(".csv")


def test_offered_actions_follow_the_servers_matrix(address: str, keys: object) -> None:
    """A batch scheduled two days ahead stays SCHEDULED: the UI offers the
    server's row for it, the server refuses what is not offered, and after a
    cancel the returned batch carries the CANCELLED row."""
    c = BatchcallsClient(address, keys.owner_key)  # type: ignore[attr-defined]
    start = vm.scheduled_local_time(dt.date.today() + dt.timedelta(days=2), dt.time(12, 0))
    batch = c.create_batch(create_request(keys, scheduled_local_time=start, timezone="UTC")).batch
    assert batch.status == BS.BATCH_STATUS_SCHEDULED, vm.batch_status_label(batch.status)
    assert vm.allowed_actions(batch) == (vm.ACTION_VIEW, vm.ACTION_CANCEL, vm.ACTION_DELETE, vm.ACTION_RESCHEDULE)
    assert vm.allowed_actions(c.get_batch(batch.name)) == vm.allowed_actions(batch)
    listed = next(b for b in c.list_batches().batches if b.name == batch.name)
    assert vm.allowed_actions(listed) == vm.allowed_actions(batch)

    assert not vm.action_allowed(batch, vm.ACTION_EXPORT)
    with pytest.raises(ApiError) as ei:
        c.export_batch(batch.name, filter=batch_service_pb2.EXPORT_FILTER_ALL,
                       format=batch_service_pb2.EXPORT_FORMAT_CSV)
    assert ei.value.code == grpc.StatusCode.FAILED_PRECONDITION and ei.value.reason == "BATCH_NOT_EXPORTABLE"
    assert not vm.action_allowed(batch, vm.ACTION_PAUSE)
    with pytest.raises(ApiError) as ei:
        c.pause_batch(batch.name)
    assert ei.value.code == grpc.StatusCode.FAILED_PRECONDITION and ei.value.reason == "BATCH_NOT_PAUSABLE"

    cancelled = c.cancel_batch(batch.name)
    assert cancelled.status == BS.BATCH_STATUS_CANCELLED
    assert vm.allowed_actions(cancelled) == (vm.ACTION_VIEW, vm.ACTION_DELETE)
    c.delete_batch(batch.name)
    with pytest.raises(ApiError) as ei:
        c.get_batch(batch.name)
    assert ei.value.code == grpc.StatusCode.NOT_FOUND
