"""TLS and mutual TLS end to end (issue 14, item 2), with certificates
generated for the run (tests/support/certs.py).

A server of its own on the session's embedded PostgreSQL and Redis: TLS on
the public listener, mutual TLS (client certificate required) on the
internal one. Clients connect through contract/channels.py, the one rule the
dialer, the admin UI and the launcher use. Also: the embedded defaults bind
loopback.
"""

from __future__ import annotations

import itertools
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from batchcalls.v1 import (
    batch_service_pb2 as bpb,
    dialer_service_pb2 as dpb,
    dialer_service_pb2_grpc as dgrpc,
    organization_service_pb2 as opb,
    organization_service_pb2_grpc as ogrpc,
    resources_pb2 as res,
)
from contract.channels import ChannelConfigError, ClientTLS, open_channel
from tests.support.api import stub
from tests.support.certs import CertFiles, make_certs
from tests.support.drive import FINAL_BATCH, create_batch, list_all_contacts, service_md
from tests.support.stack import Stack

DIALER_SERVICE = "batchcalls.v1.DialerService"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def tls_stack(embedded: Any, certs: CertFiles) -> Iterator[Stack]:
    s = Stack(database_url=embedded.database_url, redis_url=embedded.redis_url,
              service_token=secrets.token_urlsafe(32))
    s.env = {
        "DATABASE_URL": s.database_url,
        "REDIS_URL": s.redis_url,
        "BATCHCALLS_SERVICE_TOKEN": s.service_token,
        "BATCHCALLS_DIAL_GRACE_SECONDS": "1.0",
        "BATCHCALLS_SCHEDULER_INTERVAL_SECONDS": "0.2",
        "BATCHCALLS_TLS_CERT_FILE": str(certs.server_cert),
        "BATCHCALLS_TLS_KEY_FILE": str(certs.server_key),
        "BATCHCALLS_INTERNAL_TLS_CLIENT_CA_FILE": str(certs.ca),
    }
    s.client_tls = ClientTLS(enabled=True, ca_file=str(certs.ca), client_cert_file=str(certs.client_cert),
                             client_key_file=str(certs.client_key))
    s.start_server()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def tls_org(tls_stack: Stack) -> Any:
    return tls_stack.new_org()  # over TLS: Stack.channel() uses client_tls


def _code(fn) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        fn()
    return info.value.code()


def _health(ch: grpc.Channel) -> int:
    return health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5).status


def test_tls_client_calls_the_public_listener(tls_stack, tls_org, certs):
    only_ca = ClientTLS(enabled=True, ca_file=str(certs.ca))
    with open_channel(tls_stack.grpc_address, tls=only_ca) as ch:
        org = ogrpc.OrganizationServiceStub(ch).GetOrganization(opb.GetOrganizationRequest(), metadata=tls_org.md())
        assert org.organization.name.endswith(tls_org.org_id)
    # The certificate names localhost too.
    port = tls_stack.grpc_address.rsplit(":", 1)[1]
    with open_channel(f"localhost:{port}", tls=only_ca) as ch:
        assert _health(ch) == health_pb2.HealthCheckResponse.SERVING


def test_plaintext_and_untrusted_clients_fail(tls_stack, certs, tmp_path):
    with grpc.insecure_channel(tls_stack.grpc_address) as ch:
        assert _code(lambda: _health(ch)) == grpc.StatusCode.UNAVAILABLE
    with grpc.insecure_channel(tls_stack.internal_address) as ch:
        assert _code(lambda: _health(ch)) == grpc.StatusCode.UNAVAILABLE
    # A CA that did not sign the server certificate.
    other = make_certs(tmp_path / "other")
    with open_channel(tls_stack.grpc_address, tls=ClientTLS(enabled=True, ca_file=str(other.ca))) as ch:
        assert _code(lambda: _health(ch)) == grpc.StatusCode.UNAVAILABLE


def test_internal_listener_requires_a_client_certificate(tls_stack, tls_org, certs, tmp_path):
    batch = create_batch(tls_stack, tls_org, "phone\n+14155557621\n")
    with tls_stack.channel() as ch:
        contact = list_all_contacts(stub(ch), tls_org, batch.batch_id)[0]
    req = dpb.StartAttemptRequest(organization_id=tls_org.org_id, batch_id=batch.batch_id,
                                  contact_id=contact.contact_id, fencing_token=secrets.randbelow(2**40) + 1,
                                  lease_id="l-tls", dialer_id="tls-test", provider_call_id="p-tls")
    # Trusted server, no client certificate: the handshake is refused.
    with open_channel(tls_stack.internal_address, tls=ClientTLS(enabled=True, ca_file=str(certs.ca))) as ch:
        assert _code(lambda: dgrpc.DialerServiceStub(ch).StartAttempt(req, metadata=service_md(tls_stack), timeout=5)) \
            == grpc.StatusCode.UNAVAILABLE
    # A client certificate from another CA: refused too.
    other = make_certs(tmp_path / "other")
    rogue = ClientTLS(enabled=True, ca_file=str(certs.ca), client_cert_file=str(other.client_cert),
                      client_key_file=str(other.client_key))
    with open_channel(tls_stack.internal_address, tls=rogue) as ch:
        assert _code(lambda: _health(ch)) == grpc.StatusCode.UNAVAILABLE
    # With the client certificate (what the dialers send): served.
    with tls_stack.internal_channel() as ch:
        assert _health(ch) == health_pb2.HealthCheckResponse.SERVING
        dialer = dgrpc.DialerServiceStub(ch)
        granted = dialer.StartAttempt(req, metadata=service_md(tls_stack), timeout=10)
        assert granted.decision == dpb.START_ATTEMPT_DECISION_GRANTED
        dialer.FinishAttempt(dpb.FinishAttemptRequest(attempt_id=granted.attempt_id, fencing_token=req.fencing_token,
                                                      outcome=res.CALL_OUTCOME_BUSY),
                             metadata=service_md(tls_stack), timeout=10)
    # And the public port over TLS still does not serve DialerService.
    with tls_stack.channel() as ch:
        assert _code(lambda: dgrpc.DialerServiceStub(ch).StartAttempt(req, metadata=service_md(tls_stack))) \
            == grpc.StatusCode.UNIMPLEMENTED


def test_a_real_dialer_completes_a_batch_over_mutual_tls(tls_stack, tls_org, certs, tmp_path):
    from simcarrier import spawn as spawn_carrier

    log_path = tmp_path / "dialer.log"
    with spawn_carrier(time_scale=0.01, seed=14) as carrier, open(log_path, "wb") as log:
        dialer = tls_stack.spawn(["-m", "dialer"], stderr=log, env={
            "BATCHCALLS_SIMCARRIER_URL": carrier.url, "BATCHCALLS_DIALER_METRICS_PORT": "0",
            "BATCHCALLS_LOG_LEVEL": "INFO", "BATCHCALLS_DIALER_ID": "tls-dialer",
            "BATCHCALLS_TLS_CA_FILE": str(certs.ca),
            "BATCHCALLS_TLS_CLIENT_CERT_FILE": str(certs.client_cert),
            "BATCHCALLS_TLS_CLIENT_KEY_FILE": str(certs.client_key),
        })
        try:
            n = secrets.randbelow(8000) + 1000
            # One attempt each: a no-answer is final, not a retry minutes later.
            batch = create_batch(tls_stack, tls_org, f"phone\n+1628555{n:04d}\n+1628555{n + 1:04d}\n", max_attempts=1)
            deadline = time.monotonic() + 60
            with tls_stack.channel() as ch:
                while True:
                    b = stub(ch).GetBatch(bpb.GetBatchRequest(name=batch.name), metadata=tls_org.md()).batch
                    if b.status in FINAL_BATCH:
                        break
                    assert dialer.poll() is None, f"the dialer exited ({dialer.returncode}): {log_path.read_text()}"
                    assert time.monotonic() < deadline, \
                        f"batch still {res.BatchStatus.Name(b.status)}; dialer log: {log_path.read_text()[-3000:]}"
                    time.sleep(0.2)
                assert b.status == res.BATCH_STATUS_COMPLETED, res.BatchStatus.Name(b.status)
                assert b.stats.attempts_total >= 2
        finally:
            dialer.terminate()
            try:
                dialer.wait(20)
            except subprocess.TimeoutExpired:
                dialer.kill()


def test_a_dialer_with_a_bad_tls_setting_exits_with_one_line(tls_stack, certs, tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "dialer"],
        env={**os.environ, **tls_stack.env, "BATCHCALLS_TLS_CA_FILE": str(tmp_path / "missing.pem"),
             "BATCHCALLS_DIALER_METRICS_PORT": "0"},
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 2 and "BATCHCALLS_TLS_CA_FILE" in out.stderr and "Traceback" not in out.stderr


def test_admin_ui_client_connects_over_tls(tls_stack, tls_org, certs, monkeypatch):
    from admin_ui.client import ApiError, BatchcallsClient

    monkeypatch.setenv("BATCHCALLS_TLS_CA_FILE", str(certs.ca))
    client = BatchcallsClient(tls_stack.grpc_address, tls_org.owner_key, timeout=10)
    assert client.get_organization().organization.name.endswith(tls_org.org_id)
    # Without the CA: a plaintext channel to a TLS port never connects.
    monkeypatch.delenv("BATCHCALLS_TLS_CA_FILE")
    port = tls_stack.grpc_address.rsplit(":", 1)[1]
    with pytest.raises(ApiError) as err:
        BatchcallsClient(f"localhost:{port}", tls_org.owner_key, timeout=3).get_organization()
    assert err.value.is_unavailable


def test_grpcurl_lists_services_over_tls(tls_stack, certs):
    from tests.integration.test_grpcurl import run

    out = run("-cacert", str(certs.ca), tls_stack.grpc_address, "list")
    assert out.returncode == 0, out.stderr
    services = set(out.stdout.split())
    assert {"batchcalls.v1.BatchService", "grpc.health.v1.Health"} <= services
    assert DIALER_SERVICE not in services
    assert run("-plaintext", tls_stack.grpc_address, "list").returncode != 0
    # The internal listener with the client certificate: DialerService and health.
    out = run("-cacert", str(certs.ca), "-cert", str(certs.client_cert), "-key", str(certs.client_key),
              tls_stack.internal_address, "list")
    assert out.returncode == 0, out.stderr
    assert {DIALER_SERVICE, "grpc.health.v1.Health"} <= set(out.stdout.split())
    assert run("-cacert", str(certs.ca), tls_stack.internal_address, "list").returncode != 0


def test_launcher_health_check_uses_the_channel_rule(tls_stack, certs, monkeypatch):
    from launcher.devstack import wait_serving

    monkeypatch.setenv("BATCHCALLS_TLS_CA_FILE", str(certs.ca))
    wait_serving(tls_stack.grpc_address, timeout=5)
    monkeypatch.delenv("BATCHCALLS_TLS_CA_FILE")
    with pytest.raises(RuntimeError, match="health check"):
        wait_serving(tls_stack.grpc_address, timeout=2)


# --- the one channel rule and loopback defaults -----------------------------------------


def test_channel_rule_from_env(certs):
    assert not ClientTLS.from_env({}).enabled
    assert ClientTLS.from_env({"BATCHCALLS_TLS": "1"}).enabled
    t = ClientTLS.from_env({"BATCHCALLS_TLS_CA_FILE": str(certs.ca), "BATCHCALLS_TLS_SERVER_NAME": "localhost"})
    assert t.enabled and t.credentials() is not None
    assert ("grpc.ssl_target_name_override", "localhost") in t.options()
    with pytest.raises(ChannelConfigError):
        ClientTLS.from_env({"BATCHCALLS_TLS_CLIENT_CERT_FILE": str(certs.client_cert)})
    with pytest.raises(ChannelConfigError):
        ClientTLS.from_env({"BATCHCALLS_TLS_CA_FILE": "/nonexistent/ca.pem"}).credentials()


def test_every_embedded_listener_defaults_to_loopback(monkeypatch):
    import inspect

    from dialer.settings import DialerSettings
    from launcher.cli import ui_command
    from server.settings import Settings
    from simcarrier import spawn as spawn_carrier
    from simcarrier.__main__ import parse_args as simcarrier_args

    monkeypatch.delenv("BATCHCALLS_UI_HOST", raising=False)
    monkeypatch.delenv("SIMCARRIER_HOST", raising=False)
    s = Settings.from_env({})
    assert s.grpc_host == "127.0.0.1" and s.internal_addr.startswith("127.0.0.1:")
    assert not s.tls_cert_file  # the embedded default stays plaintext on loopback
    flags = dict(itertools.pairwise(ui_command(8501)))
    assert flags["--server.address"] == "127.0.0.1"
    assert dict(itertools.pairwise(ui_command(8501, "0.0.0.0")))["--server.address"] == "0.0.0.0"
    monkeypatch.setenv("BATCHCALLS_UI_HOST", "0.0.0.0")
    assert dict(itertools.pairwise(ui_command(8501)))["--server.address"] == "0.0.0.0"
    assert DialerSettings.from_env({}).metrics_host == "127.0.0.1"
    assert inspect.signature(spawn_carrier).parameters["host"].default == "127.0.0.1"
    assert simcarrier_args([]).host == "127.0.0.1"
    # `batchcalls up` starts the UI through ui_command and prints 127.0.0.1.
    devstack = (Path(__file__).resolve().parents[2] / "launcher" / "devstack.py").read_text()
    assert "ui_command(args.ui_port)" in devstack
