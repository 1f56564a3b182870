"""The admin UI's gRPC client: metadata, error decoding, streaming (no real server)."""

from __future__ import annotations

import grpc
import pytest

from admin_ui.client import ApiError, BatchcallsClient, FieldViolation, batch_id_of, batch_name
from admin_ui.devtools.fake_api import start_fake_server
from batchcalls.v1 import batch_service_pb2, resources_pb2

CSV = b"phone,name,plan\n+14155552671,Ann,gold\n+442071838750,Bob,silver\nnot-a-number,Bad,\n+14155552671,Dup,\n\n"


@pytest.fixture(scope="module")
def fake():
    server, addr, state = start_fake_server()
    yield addr, state
    server.stop(0)


@pytest.fixture()
def keys(fake):
    return fake[1].new_org("Acme")


def test_names():
    assert batch_name("b1") == "batches/b1" and batch_name("batches/b1") == "batches/b1"
    assert batch_id_of("batches/b1") == "b1" and batch_id_of("b1") == "b1"


def test_unauthenticated_is_decoded(fake):
    with pytest.raises(ApiError) as ei:
        BatchcallsClient(fake[0], "wrong").get_organization()
    assert ei.value.code == grpc.StatusCode.UNAUTHENTICATED and ei.value.is_unauthenticated
    assert "API key" in ei.value.readable()


def test_field_violations_are_decoded(fake, keys):
    c = BatchcallsClient(fake[0], keys.owner_key)
    with pytest.raises(ApiError) as ei:
        c.create_batch(batch_service_pb2.CreateBatchRequest(request_id="x"))
    err = ei.value
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert FieldViolation("display_name", "required") in err.field_violations
    text = err.readable()
    assert text.splitlines()[0] == "The batch is invalid."
    assert "• display_name: required" in text
    assert str(err) == text


def test_error_info_reason_is_decoded(fake, keys):
    member = BatchcallsClient(fake[0], keys.member_key)
    with pytest.raises(ApiError) as ei:
        member.create_batch(batch_service_pb2.CreateBatchRequest())
    assert ei.value.code == grpc.StatusCode.PERMISSION_DENIED and ei.value.reason == "WRITE_ROLE_REQUIRED"


def test_unavailable_names_the_address():
    c = BatchcallsClient("127.0.0.1:9", "k", timeout=5)
    with pytest.raises(ApiError) as ei:
        c.get_organization()
    assert ei.value.is_unavailable
    assert ei.value.readable().startswith("Cannot reach the batchcalls server at 127.0.0.1:9")


def test_plain_status_without_details():
    class E(grpc.RpcError):
        def code(self):
            return grpc.StatusCode.NOT_FOUND

        def details(self):
            return "Batch batches/x not found."

        def trailing_metadata(self):
            return ()

    err = ApiError.from_rpc_error(E(), "addr")
    assert err.code == grpc.StatusCode.NOT_FOUND and err.message == "Batch batches/x not found."
    assert err.field_violations == [] and err.reason == ""


def test_role_and_flow(fake, keys):
    c = BatchcallsClient(fake[0], keys.owner_key)
    org = c.get_organization()
    assert org.role == resources_pb2.ROLE_OWNER and org.organization.display_name == "Acme"
    assert BatchcallsClient(fake[0], keys.member_key).get_organization().role == resources_pb2.ROLE_MEMBER
    agents = c.list_all_agents(voice_only=True)
    assert [a.name for a in agents] == [keys.agent_name]
    numbers = c.list_all_phone_numbers(with_outbound_trunk_only=True)
    assert [n.name for n in numbers] == [keys.phone_number_name]

    v = c.validate_contacts(CSV, "c.csv")
    assert (v.report.valid_rows, v.report.invalid_count, v.report.duplicate_count, v.report.empty_rows) == (2, 1, 1, 1)
    assert list(v.report.custom_columns) == ["plan"]

    req = batch_service_pb2.CreateBatchRequest(request_id="r-1", display_name="Jan", agent=keys.agent_name,
                                               from_phone_number=keys.phone_number_name, csv_content=CSV,
                                               filename="c.csv")
    b1 = c.create_batch(req).batch
    b2 = c.create_batch(req).batch  # same request id: same batch
    assert b1.name == b2.name
    got = c.get_batch(b1.batch_id)
    assert got.name == b1.name
    with pytest.raises(ApiError) as ei:
        c.resume_batch(b1.name)
    assert ei.value.code == grpc.StatusCode.FAILED_PRECONDITION and ei.value.reason == "BATCH_NOT_RESUMABLE"
    c.get_batch(b1.name)  # the fake finishes a running batch on read
    contacts = c.list_contacts(b1.name, page_size=25)
    assert contacts.total_size == 2
    export = c.export_batch(b1.name, filter=batch_service_pb2.EXPORT_FILTER_ALL,
                            format=batch_service_pb2.EXPORT_FORMAT_CSV)
    assert export.content_type == "text/csv"
    lines = export.content.decode().strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("name,phone")
