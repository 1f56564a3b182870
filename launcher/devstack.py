"""`batchcalls up`: the whole product on one machine with only Python.

Starts embedded PostgreSQL and Redis (data kept in --data-dir between runs),
migrates, seeds a demo organization once (its owner key printed once), then
runs the simulated carrier, the server, one dialer and the admin UI as child
processes. Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from server.settings import Settings

DEMO_MARKER = "demo-seeded"


def ensure_service_token(data_dir: Path) -> str:
    path = data_dir / "service-token"
    if path.exists():
        return path.read_text().strip()
    token = secrets.token_urlsafe(32)
    path.write_text(token)
    path.chmod(0o600)
    return token


def ensure_secrets_key(data_dir: Path) -> str:
    """The Fernet key encrypting trunk and agent passwords at rest, kept in
    the data dir (like the service token): `batchcalls up` restarts read
    what earlier runs stored. docs/design.md §7."""
    from server.adapters.secrets import generate_key

    path = data_dir / "secrets-key"
    if path.exists():
        return path.read_text().strip()
    key = generate_key()
    path.write_text(key)
    path.chmod(0o600)
    return key


def dial_address(listen: str) -> str:
    """Where a local client reaches a listener reported as host:port: a
    wildcard host (0.0.0.0, ::) is reached on loopback."""
    host, _, port = listen.rpartition(":")
    return f"127.0.0.1:{port}" if host in ("0.0.0.0", "::", "[::]", "") else listen


def wait_serving(address: str, timeout: float = 15.0) -> None:
    """A health check of the public listener over the channel every client
    of ours uses (contract/channels.py: TLS when BATCHCALLS_TLS_CA_FILE etc.
    are set), so a TLS mismatch stops `up` here with a clear message."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from contract.channels import open_channel

    with open_channel(address) as ch:
        try:
            health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=timeout,
                                                 wait_for_ready=True)
        except Exception as exc:  # noqa: BLE001 - grpc.RpcError, or a TLS file error
            raise RuntimeError(f"the server at {address} does not answer a health check: {exc}") from None


def _read_ready(proc: subprocess.Popen[str], marker: str, timeout: float = 60.0) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                raise RuntimeError(f"process exited ({proc.returncode}) before {marker}")
            continue
        if line.startswith(marker):
            return line.split(maxsplit=1)[1].strip()
    raise RuntimeError(f"timed out waiting for {marker}")


async def seed_demo(settings: Settings) -> dict[str, str]:
    """Demo organization, owner key, voice agent, caller number (simulated)."""
    from server.bootstrap import build_context
    from server.domain.auth import Principal, Role
    from server.service import catalog
    from server.service.organizations import create_organization

    ctx = build_context(settings, validator=object())
    try:
        org_id, secret = await create_organization(
            ctx, "Demo organization", concurrency_limit=10, credit_micros=1_000 * 1_000_000,
            # Explicit "any time": the demo dials a simulated trunk at any hour (docs/compliance.md).
            calling_any_time=True,
        )
        owner = Principal(org_id=org_id, role=Role.OWNER, key_id="seed")
        agent = await catalog.create_agent(
            ctx, owner,
            {"display_name": "Payment Collection Agent", "architecture": "pipeline", "active": True,
             "recording_enabled": True, "transcript_enabled": True},
        )
        number = await catalog.create_phone_number(
            ctx, owner, "+14155550100", "Demo caller (simulated)", {"kind": "simulated", "caller_id_format": "e164"}
        )
        return {"org_id": org_id, "secret": secret, "agent": f"agents/{agent.id}", "number": f"phoneNumbers/{number.id}"}
    finally:
        await ctx.engine.dispose()


def run_up(args: argparse.Namespace) -> int:
    from server.adapters.db.engine import migrate
    from launcher.cli import ui_command
    from launcher.embedded import start_embedded

    data_dir = Path(args.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    print(f"starting embedded PostgreSQL and Redis in {data_dir} …", flush=True)
    services = start_embedded(data_dir)
    children: list[subprocess.Popen[Any]] = []
    try:
        migrate(services.database_url)
        token = ensure_service_token(data_dir)
        env = dict(os.environ)
        env.update(
            DATABASE_URL=services.database_url,
            REDIS_URL=services.redis_url,
            BATCHCALLS_SERVICE_TOKEN=token,
            BATCHCALLS_SECRETS_KEY=os.environ.get("BATCHCALLS_SECRETS_KEY", "").strip() or ensure_secrets_key(data_dir),
            # The embedded stack dials 127.0.0.1 (simulated carrier, local
            # SIP tests): private trunk/agent hosts allowed (docs/design.md §7).
            BATCHCALLS_ALLOW_PRIVATE_HOSTS=os.environ.get("BATCHCALLS_ALLOW_PRIVATE_HOSTS", "").strip() or "true",
            BATCHCALLS_GRPC_PORT=str(args.grpc_port),
            # The internal listener (DialerService) on loopback; the dialer
            # is pointed at the port the server reports (INTERNAL_READY).
            BATCHCALLS_INTERNAL_ADDR=os.environ.get("BATCHCALLS_INTERNAL_ADDR", "").strip() or "127.0.0.1:50052",
            BATCHCALLS_GRPC_ADDR=f"127.0.0.1:{args.grpc_port}",
            BATCHCALLS_AUTO_MIGRATE="0",
        )
        settings = Settings.from_env(env)
        seeded = None
        if not (data_dir / DEMO_MARKER).exists():
            seeded = asyncio.run(seed_demo(settings))
            (data_dir / DEMO_MARKER).write_text(seeded["org_id"])
        from simcarrier import spawn as spawn_carrier

        carrier = spawn_carrier(time_scale=args.time_scale, record_file=str(data_dir / "simcarrier-calls.jsonl"))
        sim_url = carrier.url
        children.append(carrier.process)
        env["BATCHCALLS_SIMCARRIER_URL"] = sim_url
        server = subprocess.Popen([sys.executable, "-m", "launcher.cli", "server"], env=env, stdout=subprocess.PIPE, text=True)
        children.append(server)
        internal = dial_address(_read_ready(server, "INTERNAL_READY"))
        address = _read_ready(server, "SERVER_READY")
        wait_serving(dial_address(address))
        env["BATCHCALLS_SERVER_ADDR"] = internal
        children.append(subprocess.Popen([sys.executable, "-m", "dialer"], env=env))
        if not args.no_ui:
            children.append(subprocess.Popen(ui_command(args.ui_port), env=env, stdout=subprocess.DEVNULL))
        print("\n=== batchcalls is up ===")
        print(f"gRPC API      : {address}   (grpcurl -plaintext {address} list)")
        print(f"Internal API  : {internal}   (DialerService, for the dialers only)")
        if not args.no_ui:
            print(f"Admin UI      : http://127.0.0.1:{args.ui_port}")
        print(f"Sim carrier   : {sim_url}")
        if seeded:
            print(f"Demo org      : {seeded['org_id']}")
            print(f"Owner API key : {seeded['secret']}   (shown once; keep it)")
            print(f"Demo agent    : {seeded['agent']}")
            print(f"Demo number   : {seeded['number']}")
        else:
            print("Demo org already seeded; use the owner key printed on the first run "
                  "(or `batchcalls org create NAME` for a new org and key)")
        print("Ctrl-C stops everything.", flush=True)
        stop = False

        def _stop(*_: Any) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGTERM, _stop)
        while not stop:
            time.sleep(0.5)
            if any(c.poll() is not None for c in children[:3]):
                print("a component exited; stopping", file=sys.stderr)
                break
        return 0
    finally:
        for child in reversed(children):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in reversed(children):
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
        services.stop()
        print("stopped.")
