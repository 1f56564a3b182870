"""The internal API apart (issue 14, item 1).

DialerService is served on its own listener (BATCHCALLS_INTERNAL_ADDR,
loopback by default): the public port neither lists it in reflection nor
serves it (UNIMPLEMENTED, even with the service token); the internal port
serves it with the token and has health. `batchcalls server` refuses a
missing, short or published service token with one line and exit code 2,
and compose.yaml has no fallback token.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from batchcalls.v1 import dialer_service_pb2 as dpb, dialer_service_pb2_grpc as dgrpc, resources_pb2 as res
from tests.support.api import stub
from tests.support.drive import create_batch, list_all_contacts, service_md
from tests.support.stack import TEST_SECRETS_KEY

ROOT = Path(__file__).resolve().parents[2]
DIALER_SERVICE = "batchcalls.v1.DialerService"


def _services(channel: grpc.Channel) -> set[str]:
    return set(ProtoReflectionDescriptorDatabase(channel).get_services())


def _code(fn) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        fn()
    return info.value.code()


def _start_req(org, batch_id: str = "batch_0123456789abcdef", contact_id: str = "1") -> dpb.StartAttemptRequest:
    return dpb.StartAttemptRequest(
        organization_id=org.org_id, batch_id=batch_id, contact_id=contact_id,
        fencing_token=secrets.randbelow(2**40) + 1, lease_id=f"l-{secrets.token_hex(4)}",
        dialer_id="internal-test", provider_call_id=f"p-{secrets.token_hex(4)}",
    )


def test_public_reflection_does_not_list_dialer_service(stack):
    with stack.channel() as ch:
        services = _services(ch)
    assert "batchcalls.v1.BatchService" in services and "grpc.health.v1.Health" in services
    assert DIALER_SERVICE not in services


def test_dialer_service_is_unimplemented_on_the_public_port(stack, org):
    with stack.channel() as ch:
        dialer = dgrpc.DialerServiceStub(ch)
        # Even with the right service token: the public port has no such service.
        assert _code(lambda: dialer.StartAttempt(_start_req(org), metadata=service_md(stack))) \
            == grpc.StatusCode.UNIMPLEMENTED
        assert _code(lambda: dialer.BatchFinishAttempts(dpb.BatchFinishAttemptsRequest(), metadata=service_md(stack))) \
            == grpc.StatusCode.UNIMPLEMENTED


def test_internal_port_serves_dialer_service_with_the_token(stack, org):
    assert stack.internal_address != stack.grpc_address
    batch = create_batch(stack, org, "phone\n+14155557611\n")
    with stack.channel() as ch:
        contact = list_all_contacts(stub(ch), org, batch.batch_id)[0]
    with stack.internal_channel() as ich:
        assert DIALER_SERVICE in _services(ich)
        health = health_pb2_grpc.HealthStub(ich)
        assert health.Check(health_pb2.HealthCheckRequest()).status == health_pb2.HealthCheckResponse.SERVING
        assert health.Check(health_pb2.HealthCheckRequest(service=DIALER_SERVICE)).status \
            == health_pb2.HealthCheckResponse.SERVING
        dialer = dgrpc.DialerServiceStub(ich)
        req = _start_req(org, batch.batch_id, contact.contact_id)
        assert _code(lambda: dialer.StartAttempt(req)) == grpc.StatusCode.UNAUTHENTICATED
        assert _code(lambda: dialer.StartAttempt(req, metadata=org.md())) == grpc.StatusCode.PERMISSION_DENIED
        granted = dialer.StartAttempt(req, metadata=service_md(stack))
        assert granted.decision == dpb.START_ATTEMPT_DECISION_GRANTED
        # Leave nothing live for the other tests of the session stack.
        dialer.FinishAttempt(dpb.FinishAttemptRequest(attempt_id=granted.attempt_id, fencing_token=req.fencing_token,
                                                      outcome=res.CALL_OUTCOME_BUSY),
                             metadata=service_md(stack))


def test_internal_listener_defaults_to_loopback():
    from server.settings import Settings

    assert Settings.from_env({}).internal_addr == "127.0.0.1:50052"
    assert Settings.from_env({"BATCHCALLS_INTERNAL_ADDR": "0.0.0.0:6000"}).internal_addr == "0.0.0.0:6000"


# --- `batchcalls server` and its service token -----------------------------------


def _server_env(embedded, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHCALLS_")}
    env.update(DATABASE_URL=embedded.database_url, REDIS_URL=embedded.redis_url,
               BATCHCALLS_AUTO_MIGRATE="0", BATCHCALLS_GRPC_PORT="0", BATCHCALLS_INTERNAL_ADDR="127.0.0.1:0",
               BATCHCALLS_LOG_LEVEL="WARNING", PYTHONPATH=str(ROOT),
               # A valid secrets key: these tests are about the token and TLS
               # (tests/integration/test_secrets.py refuses a missing key).
               BATCHCALLS_SECRETS_KEY=TEST_SECRETS_KEY)
    env.update(extra)
    return env


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (None, "BATCHCALLS_SERVICE_TOKEN"),
        ("", "BATCHCALLS_SERVICE_TOKEN"),
        ("short-token-31-characters-long!", "too short"),
        ("change-me-service-token", "published default"),
        ("change-me-service-token-but-longer-than-32", "published default"),
    ],
    ids=["missing", "empty", "short", "compose-default", "placeholder"],
)
def test_server_refuses_a_weak_service_token(embedded, token, message):
    extra = {} if token is None else {"BATCHCALLS_SERVICE_TOKEN": token}
    out = subprocess.run([sys.executable, "-m", "launcher.cli", "server"], env=_server_env(embedded, **extra),
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out
    assert message in out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "SERVER_READY" not in out.stdout


def test_server_refuses_half_configured_tls(embedded, tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "launcher.cli", "server"],
        env=_server_env(embedded, BATCHCALLS_SERVICE_TOKEN=secrets.token_urlsafe(32),
                        BATCHCALLS_TLS_CERT_FILE=str(tmp_path / "server.pem")),
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "BATCHCALLS_TLS_KEY_FILE" in out.stderr and "Traceback" not in out.stderr


def test_server_starts_with_a_strong_token_and_reports_both_listeners(embedded):
    proc = subprocess.Popen([sys.executable, "-m", "launcher.cli", "server"],
                            env=_server_env(embedded, BATCHCALLS_SERVICE_TOKEN=secrets.token_urlsafe(32)),
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        from launcher.devstack import _read_ready

        internal = _read_ready(proc, "INTERNAL_READY")
        public = _read_ready(proc, "SERVER_READY")
        assert re.fullmatch(r"127\.0\.0\.1:\d+", internal) and re.fullmatch(r"127\.0\.0\.1:\d+", public)
        assert internal != public
        with grpc.insecure_channel(public) as ch:
            assert DIALER_SERVICE not in _services(ch)
        with grpc.insecure_channel(internal) as ch:
            assert DIALER_SERVICE in _services(ch)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_compose_requires_a_service_token():
    text = (ROOT / "compose.yaml").read_text()
    lines = [ln for ln in text.splitlines() if re.match(r"\s*BATCHCALLS_SERVICE_TOKEN\s*:", ln)]
    assert lines, "compose.yaml sets no BATCHCALLS_SERVICE_TOKEN"
    for line in lines:
        assert "${BATCHCALLS_SERVICE_TOKEN:?" in line, line  # required, no `:-default`
    assert "change-me" not in text
    # DialerService's port is not published.
    assert "50052:" not in text
