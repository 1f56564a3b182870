"""grpc.aio server: every service plus health and reflection."""

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
    dialer_service_pb2,
    dialer_service_pb2_grpc,
    organization_service_pb2,
    organization_service_pb2_grpc,
    phone_number_service_pb2,
    phone_number_service_pb2_grpc,
)
from server.api.batch_servicer import BatchServicer
from server.api.catalog_servicers import AgentServicer, OrganizationServicer, PhoneNumberServicer
from server.api.dialer_servicer import DialerServicer
from server.service import background
from server.service.context import ServiceContext

log = logging.getLogger(__name__)

SERVICE_NAMES = (
    batch_service_pb2.DESCRIPTOR.services_by_name["BatchService"].full_name,
    agent_service_pb2.DESCRIPTOR.services_by_name["AgentService"].full_name,
    phone_number_service_pb2.DESCRIPTOR.services_by_name["PhoneNumberService"].full_name,
    organization_service_pb2.DESCRIPTOR.services_by_name["OrganizationService"].full_name,
    dialer_service_pb2.DESCRIPTOR.services_by_name["DialerService"].full_name,
)


class BatchcallsServer:
    """A running server: the grpc.aio server plus the background duties."""

    def __init__(self, ctx: ServiceContext, server: grpc.aio.Server, port: int, run_background: bool) -> None:
        self.ctx = ctx
        self.grpc = server
        self.port = port
        self._stop = asyncio.Event()
        self._background: asyncio.Task[None] | None = None
        self._run_background = run_background

    async def start(self) -> None:
        await self.grpc.start()
        if self._run_background:
            self._background = asyncio.create_task(background.run_forever(self.ctx, self._stop))

    async def stop(self, grace: float = 2.0) -> None:
        self._stop.set()
        if self._background:
            await self._background
        await self.grpc.stop(grace)


def create_server(ctx: ServiceContext, host: str = "127.0.0.1", port: int = 0, *, run_background: bool = True) -> BatchcallsServer:
    """Build the server; port 0 binds a free port (tests)."""
    opts = [
        ("grpc.max_receive_message_length", ctx.settings.max_message_bytes),
        ("grpc.max_send_message_length", ctx.settings.max_message_bytes),
    ]
    server = grpc.aio.server(options=opts)
    batch_service_pb2_grpc.add_BatchServiceServicer_to_server(BatchServicer(ctx), server)
    agent_service_pb2_grpc.add_AgentServiceServicer_to_server(AgentServicer(ctx), server)
    phone_number_service_pb2_grpc.add_PhoneNumberServiceServicer_to_server(PhoneNumberServicer(ctx), server)
    organization_service_pb2_grpc.add_OrganizationServiceServicer_to_server(OrganizationServicer(ctx), server)
    dialer_service_pb2_grpc.add_DialerServiceServicer_to_server(DialerServicer(ctx), server)
    health_servicer = health.aio.HealthServicer() if hasattr(health, "aio") else health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    srv = BatchcallsServer(ctx, server, bound, run_background)
    srv.health = health_servicer  # type: ignore[attr-defined]
    return srv


async def mark_serving(srv: BatchcallsServer) -> None:
    h = srv.health  # type: ignore[attr-defined]
    for name in ("", *SERVICE_NAMES):
        res = h.set(name, health_pb2.HealthCheckResponse.SERVING)
        if asyncio.iscoroutine(res):
            await res
