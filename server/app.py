"""grpc.aio servers: the public API and, apart, the internal one.

Two listeners (docs/design.md §7). The public one serves what clients call
(batches, agents, numbers, organizations) plus health and reflection. The
internal one serves what only our own processes call (DialerService: the
dialers, with the service token) plus health and reflection listing just
that; it binds loopback unless BATCHCALLS_INTERNAL_ADDR says otherwise, and
the public port neither lists nor serves DialerService (UNIMPLEMENTED).
Both take a certificate and key (TLS); the internal one optionally requires
client certificates signed by BATCHCALLS_INTERNAL_TLS_CLIENT_CA_FILE.
"""

from __future__ import annotations

import asyncio
import logging

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from batchcalls.v1 import (
    agent_service_pb2,
    agent_service_pb2_grpc,
    batch_service_pb2,
    batch_service_pb2_grpc,
    compliance_service_pb2,
    compliance_service_pb2_grpc,
    dialer_service_pb2,
    dialer_service_pb2_grpc,
    organization_service_pb2,
    organization_service_pb2_grpc,
    phone_number_service_pb2,
    phone_number_service_pb2_grpc,
    results_service_pb2,
    results_service_pb2_grpc,
)
from server.api.batch_servicer import BatchServicer
from server.api.catalog_servicers import AgentServicer, OrganizationServicer, PhoneNumberServicer
from server.api.compliance_servicer import ComplianceServicer
from server.api.dialer_servicer import DialerServicer
from server.api.results_servicer import InternalResultsServicer, ResultsServicer
from server.service import background
from server.service.context import ServiceContext

log = logging.getLogger(__name__)

#: Served on the public listener.
SERVICE_NAMES = (
    batch_service_pb2.DESCRIPTOR.services_by_name["BatchService"].full_name,
    agent_service_pb2.DESCRIPTOR.services_by_name["AgentService"].full_name,
    phone_number_service_pb2.DESCRIPTOR.services_by_name["PhoneNumberService"].full_name,
    organization_service_pb2.DESCRIPTOR.services_by_name["OrganizationService"].full_name,
    # The agent runtime reports call results here, with a reporter key.
    results_service_pb2.DESCRIPTOR.services_by_name["ResultsService"].full_name,
    compliance_service_pb2.DESCRIPTOR.services_by_name["ComplianceService"].full_name,
)
#: Served only on the internal listener: called by our own processes.
INTERNAL_SERVICE_NAMES = (
    dialer_service_pb2.DESCRIPTOR.services_by_name["DialerService"].full_name,
    # The simulated agent's reports (service credential; see results_servicer).
    results_service_pb2.DESCRIPTOR.services_by_name["ResultsService"].full_name,
)


class BatchcallsServer:
    """A running server: the public and internal grpc.aio servers plus the
    background duties. ``port`` is the public port, ``internal_port`` the
    internal one (both bound already; port 0 in tests picks free ones)."""

    def __init__(self, ctx: ServiceContext, server: grpc.aio.Server, port: int, run_background: bool,
                 internal: grpc.aio.Server | None = None, internal_port: int = 0) -> None:
        self.ctx = ctx
        self.grpc = server
        self.port = port
        self.internal = internal
        self.internal_port = internal_port
        self._stop = asyncio.Event()
        self._background: asyncio.Task[None] | None = None
        self._run_background = run_background

    async def start(self) -> None:
        await self.grpc.start()
        if self.internal is not None:
            await self.internal.start()
        if self._run_background:
            self._background = asyncio.create_task(background.run_forever(self.ctx, self._stop))

    async def stop(self, grace: float = 2.0) -> None:
        self._stop.set()
        if self._background:
            await self._background
        if self.internal is not None:
            await asyncio.gather(self.grpc.stop(grace), self.internal.stop(grace))
        else:
            await self.grpc.stop(grace)


def _read_pem(path: str, name: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise ValueError(f"{name}: cannot read {path!r} ({exc.strerror or exc})") from None


def server_credentials(settings: object, *, internal: bool) -> grpc.ServerCredentials | None:
    """TLS credentials of a listener from the settings; None = plaintext.

    Raises ValueError (one line) on a half-configured pair or a client CA
    without a server certificate: never a silent plaintext fallback.
    """
    cert = getattr(settings, "tls_cert_file", "")
    key = getattr(settings, "tls_key_file", "")
    client_ca = getattr(settings, "internal_tls_client_ca_file", "")
    if bool(cert) != bool(key):
        raise ValueError("BATCHCALLS_TLS_CERT_FILE and BATCHCALLS_TLS_KEY_FILE go together: set both or neither")
    if not cert:
        if client_ca:
            raise ValueError("BATCHCALLS_INTERNAL_TLS_CLIENT_CA_FILE needs BATCHCALLS_TLS_CERT_FILE and "
                             "BATCHCALLS_TLS_KEY_FILE (mutual TLS is TLS)")
        return None
    pair = [(_read_pem(key, "BATCHCALLS_TLS_KEY_FILE"), _read_pem(cert, "BATCHCALLS_TLS_CERT_FILE"))]
    if internal and client_ca:
        return grpc.ssl_server_credentials(
            pair, root_certificates=_read_pem(client_ca, "BATCHCALLS_INTERNAL_TLS_CLIENT_CA_FILE"),
            require_client_auth=True,
        )
    return grpc.ssl_server_credentials(pair)


def _bind(server: grpc.aio.Server, address: str, creds: grpc.ServerCredentials | None) -> int:
    port = server.add_secure_port(address, creds) if creds is not None else server.add_insecure_port(address)
    if not port:  # older grpcio returns 0 instead of raising
        raise RuntimeError(f"cannot listen on {address}")
    return port


def create_server(ctx: ServiceContext, host: str = "127.0.0.1", port: int = 0, *,
                  internal_addr: str = "127.0.0.1:0", run_background: bool = True) -> BatchcallsServer:
    """Build the server: public listener on host:port, internal one on
    ``internal_addr`` (the CLI passes settings.internal_addr); port 0 binds a
    free port (tests). TLS from ctx.settings (tls_cert_file, …)."""
    from server.log_masking import install as install_log_masking

    install_log_masking()  # numbers masked in every log line (docs/design.md §7)
    opts = [
        ("grpc.max_receive_message_length", ctx.settings.max_message_bytes),
        ("grpc.max_send_message_length", ctx.settings.max_message_bytes),
    ]
    from server.api.rate_limit import RateLimitInterceptor

    # Per-key rate limit (Redis, across replicas): the public listener only.
    server = grpc.aio.server(options=opts, interceptors=[RateLimitInterceptor(ctx)])
    batch_service_pb2_grpc.add_BatchServiceServicer_to_server(BatchServicer(ctx), server)
    agent_service_pb2_grpc.add_AgentServiceServicer_to_server(AgentServicer(ctx), server)
    phone_number_service_pb2_grpc.add_PhoneNumberServiceServicer_to_server(PhoneNumberServicer(ctx), server)
    organization_service_pb2_grpc.add_OrganizationServiceServicer_to_server(OrganizationServicer(ctx), server)
    results_service_pb2_grpc.add_ResultsServiceServicer_to_server(ResultsServicer(ctx), server)
    compliance_service_pb2_grpc.add_ComplianceServiceServicer_to_server(ComplianceServicer(ctx), server)
    health_servicer = health.aio.HealthServicer() if hasattr(health, "aio") else health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    bound = _bind(server, f"{host}:{port}", server_credentials(ctx.settings, internal=False))

    internal = grpc.aio.server(options=opts)
    dialer_service_pb2_grpc.add_DialerServiceServicer_to_server(DialerServicer(ctx), internal)
    results_service_pb2_grpc.add_ResultsServiceServicer_to_server(InternalResultsServicer(ctx), internal)
    internal_health = health.aio.HealthServicer() if hasattr(health, "aio") else health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(internal_health, internal)
    reflection.enable_server_reflection(
        (*INTERNAL_SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), internal)
    internal_bound = _bind(internal, internal_addr, server_credentials(ctx.settings, internal=True))

    srv = BatchcallsServer(ctx, server, bound, run_background, internal, internal_bound)
    srv.health = health_servicer  # type: ignore[attr-defined]
    srv.internal_health = internal_health  # type: ignore[attr-defined]
    return srv


async def mark_serving(srv: BatchcallsServer) -> None:
    for h, names in ((srv.health, SERVICE_NAMES),  # type: ignore[attr-defined]
                     (getattr(srv, "internal_health", None), INTERNAL_SERVICE_NAMES)):
        if h is None:
            continue
        for name in ("", *names):
            res = h.set(name, health_pb2.HealthCheckResponse.SERVING)
            if asyncio.iscoroutine(res):
                await res
