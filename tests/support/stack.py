"""A real batchcalls stack for tests: embedded PostgreSQL and Redis, the
grpc.aio server on a free port in a background thread (its own event loop),
and helpers to provision organizations and to start the simulated carrier
and dialers as real processes."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, TypeVar

import grpc
from cryptography.fernet import Fernet

from batchcalls.v1 import (
    agent_service_pb2 as agent_pb2,
    agent_service_pb2_grpc as agent_grpc,
    batch_service_pb2_grpc as batch_grpc,
    organization_service_pb2 as org_pb2,
    organization_service_pb2_grpc as org_grpc,
    phone_number_service_pb2 as pn_pb2,
    phone_number_service_pb2_grpc as pn_grpc,
    resources_pb2 as res,
)

T = TypeVar("T")
#: The Fernet key of every test stack's secrets (one per test session).
TEST_SECRETS_KEY = Fernet.generate_key().decode()
ROOT = Path(__file__).resolve().parents[2]


_server_loop: asyncio.AbstractEventLoop | None = None
_server_loop_lock = threading.Lock()


def server_loop() -> asyncio.AbstractEventLoop:
    """The one event loop (on its own thread) every test Stack's grpc.aio
    server runs on, and the in-process dialers beside them.

    One loop per process, not one per stack: grpc.aio binds every loop that
    uses it to a single process-wide completion queue, and with two loops
    alive each wakes for the other's events; grpcio 1.76 then raises
    BlockingIOError in ``PollerCompletionQueue._handle_events`` and, seen
    here, loses a completion now and then: an in-process dialer's
    BatchStartAttempts never returned (not even at its deadline) and its
    lease stayed held (grpc/grpc#25364, #42357). Deployed processes run
    one loop each."""
    global _server_loop
    with _server_loop_lock:
        if _server_loop is None or _server_loop.is_closed():
            loop = asyncio.new_event_loop()

            def _run() -> None:
                asyncio.set_event_loop(loop)
                loop.run_forever()

            threading.Thread(target=_run, name="batchcalls-server", daemon=True).start()
            _server_loop = loop
        return _server_loop


@dataclass
class OrgKeys:
    org_id: str
    owner_key: str
    admin_key: str
    member_key: str
    agent_name: str
    phone_number_name: str

    def md(self, role: str = "owner") -> list[tuple[str, str]]:
        key = {"owner": self.owner_key, "admin": self.admin_key, "member": self.member_key}[role]
        return [("authorization", f"Bearer {key}")]


@dataclass
class Stack:
    database_url: str
    redis_url: str
    service_token: str
    grpc_address: str = ""
    #: The internal listener (DialerService): what dialers dial.
    internal_address: str = ""
    #: How clients of this stack connect (contract.channels.ClientTLS);
    #: None = plaintext. Tests of TLS set it with the server's TLS settings.
    client_tls: Any = None
    loop: asyncio.AbstractEventLoop | None = None
    ctx: Any = None
    server: Any = None
    _children: list[subprocess.Popen[Any]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    #: Time source of the server's ServiceContext (server.domain.clock);
    #: None = the system clock. Tests of time rules pass a FakeClock.
    clock: Any = None

    # --- running coroutines on the server's loop ---------------------------
    def run(self, coro: Awaitable[T], timeout: float = 60) -> T:
        assert self.loop is not None
        fut: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]
        return fut.result(timeout)

    def start_server(self, settings_overrides: dict[str, Any] | None = None) -> None:
        from server.app import create_server, mark_serving
        from server.bootstrap import build_context
        from server.settings import Settings

        # Every test stack encrypts secrets and dials 127.0.0.1 (simulated
        # carrier, sipp): a session key and private hosts allowed, unless
        # the test's env says otherwise; in self.env, so a server replica
        # it spawns reads the same (docs/design.md §7).
        self.env.setdefault("BATCHCALLS_SECRETS_KEY", TEST_SECRETS_KEY)
        self.env.setdefault("BATCHCALLS_ALLOW_PRIVATE_HOSTS", "true")
        base = Settings.from_env(self.env)
        values = {**base.__dict__, **(settings_overrides or {})}
        settings = Settings(**values)
        self.loop = server_loop()
        ready = threading.Event()

        async def _start() -> None:
            self.ctx = build_context(settings, clock=self.clock)
            self.server = create_server(self.ctx, "127.0.0.1", 0)
            await self.server.start()
            await mark_serving(self.server)

        self.run(_start())
        self.grpc_address = f"127.0.0.1:{self.server.port}"
        self.internal_address = f"127.0.0.1:{self.server.internal_port}"
        self.env["BATCHCALLS_SERVER_ADDR"] = self.internal_address
        self.env["BATCHCALLS_GRPC_ADDR"] = self.grpc_address
        ready.set()

    def stop(self) -> None:
        for child in self._children:
            if child.poll() is None:
                child.kill()
                child.wait(timeout=10)
        if self.server is not None:
            from server.bootstrap import close_context

            self.run(self.server.stop(0.5))
            self.run(close_context(self.ctx))
        # The loop is shared by every stack of the session (server_loop).

    # --- clients -------------------------------------------------------------
    def channel(self) -> grpc.Channel:
        """A channel to the public listener (every service but DialerService)."""
        return self._open(self.grpc_address)

    def internal_channel(self) -> grpc.Channel:
        """A channel to the internal listener: DialerService, as a dialer calls it."""
        return self._open(self.internal_address)

    def _open(self, address: str) -> grpc.Channel:
        from contract.channels import ClientTLS, open_channel

        opts = [("grpc.max_send_message_length", 16 * 1024 * 1024), ("grpc.max_receive_message_length", 16 * 1024 * 1024)]
        return open_channel(address, opts, tls=self.client_tls or ClientTLS())

    def new_org(self, name: str = "", *, credits_usd: float = 1000.0, concurrency_limit: int = 10,
                calling_any_time: bool = True) -> OrgKeys:
        """``calling_any_time``: the owner's explicit "any time" choice (tests
        dial at arbitrary instants); False = the safe default 08:00–21:00."""
        from server.service.organizations import create_organization

        org_id, owner = self.run(
            create_organization(
                self.ctx, name or f"org-{secrets.token_hex(3)}", concurrency_limit=concurrency_limit,
                credit_micros=int(credits_usd * 1_000_000), calling_any_time=calling_any_time,
            )
        )
        md = [("authorization", f"Bearer {owner}")]
        with self.channel() as ch:
            orgs = org_grpc.OrganizationServiceStub(ch)
            admin = orgs.CreateApiKey(org_pb2.CreateApiKeyRequest(display_name="admin", role=res.ROLE_ADMIN), metadata=md).secret
            member = orgs.CreateApiKey(org_pb2.CreateApiKeyRequest(display_name="member", role=res.ROLE_MEMBER), metadata=md).secret
            agent = agent_grpc.AgentServiceStub(ch).CreateAgent(
                agent_pb2.CreateAgentRequest(
                    agent=res.Agent(display_name="Test agent", architecture=res.AGENT_ARCHITECTURE_PIPELINE, active=True)
                ),
                metadata=md,
            ).agent
            number = pn_grpc.PhoneNumberServiceStub(ch).CreatePhoneNumber(
                pn_pb2.CreatePhoneNumberRequest(
                    phone_number=res.PhoneNumber(
                        phone_number=f"+1415555{secrets.randbelow(9000) + 1000:04d}",
                        display_name="caller",
                        # 1000 calls per second: tests of other rules are not paced (docs/pacing.md).
                        outbound_trunk=res.OutboundTrunk(kind=res.TRUNK_KIND_SIMULATED, calls_per_second=1000.0),
                    )
                ),
                metadata=md,
            ).phone_number
        return OrgKeys(org_id, owner, admin, member, agent.name, number.name)

    # --- processes -----------------------------------------------------------
    def spawn(self, args: list[str], env: dict[str, str] | None = None, **kw: Any) -> subprocess.Popen[Any]:
        proc = subprocess.Popen([sys.executable, *args], env={**os.environ, **self.env, **(env or {})}, cwd=ROOT, **kw)
        self._children.append(proc)
        return proc


def batch_stub(ch: grpc.Channel) -> batch_grpc.BatchServiceStub:
    return batch_grpc.BatchServiceStub(ch)
