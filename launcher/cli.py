"""`batchcalls` command line: up | server | dialer | ui | migrate | org create | simcarrier.

The launcher is the one package that imports both the server and the dialer
(docs/design.md §1): each subcommand starts one process, or, for `up`, the
whole embedded stack. `parse_command_line` only parses and validates, with no
side effect, so tests can check every command line the README shows
(tests/integration/test_readme_commands.py) without starting anything.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

log = logging.getLogger("batchcalls")


def _setup_logging() -> None:
    logging.basicConfig(
        level=os.environ.get("BATCHCALLS_LOG_LEVEL", "INFO"),
        format='{"time":"%(asctime)s","level":"%(levelname)s","logger":"%(name)s","msg":"%(message)s"}',
    )


def cmd_migrate(_: argparse.Namespace) -> int:
    from server.adapters.db.engine import migrate
    from server.settings import Settings

    settings = Settings.from_env()
    if not settings.database_url:
        print("DATABASE_URL is not set", file=sys.stderr)
        return 2
    migrate(settings.database_url)
    print("database is at the newest schema")
    return 0


async def serve(settings: "object", *, port: int | None = None, ready_file: str | None = None) -> None:
    from server.app import create_server, mark_serving
    from server.bootstrap import build_context, close_context

    ctx = build_context(settings)  # type: ignore[arg-type]
    srv = create_server(ctx, settings.grpc_host, settings.grpc_port if port is None else port,  # type: ignore[attr-defined]
                        internal_addr=settings.internal_addr)  # type: ignore[attr-defined]
    await srv.start()
    await mark_serving(srv)
    # What start-up built (modules, descriptors, table metadata: a few
    # hundred thousand objects that live as long as the process) leaves the
    # collector's generations, so a full collection, every few seconds under
    # load, walks only what requests made since (at ingest a full
    # collection walked about 250,000 objects: 90-120 ms added to one
    # request, docs/capacity.md).
    gc.freeze()
    # INTERNAL_READY first: a reader waiting for SERVER_READY has seen both.
    internal_host = settings.internal_addr.rsplit(":", 1)[0]  # type: ignore[attr-defined]
    print(f"INTERNAL_READY {internal_host}:{srv.internal_port}", flush=True)
    print(f"SERVER_READY {settings.grpc_host}:{srv.port}", flush=True)  # type: ignore[attr-defined]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await srv.stop()
    await close_context(ctx)


def server_config_problem(settings: "object") -> str | None:
    """One line saying why `batchcalls server` must not start, or None:
    a short or published service token (the embedded `batchcalls up`
    generates a random one), or TLS files that are half set or unreadable."""
    from server.app import server_credentials
    from server.settings import service_token_problem

    problem = service_token_problem(settings.service_token)  # type: ignore[attr-defined]
    if problem:
        return problem
    from server.adapters.secrets import secrets_key_problem

    problem = secrets_key_problem(getattr(settings, "secrets_key", ""))
    if problem:
        return problem
    try:
        server_credentials(settings, internal=False)
        server_credentials(settings, internal=True)
    except ValueError as exc:
        return str(exc)
    return None


def cmd_server(_: argparse.Namespace) -> int:
    from server.adapters.db.engine import migrate
    from server.settings import Settings

    _setup_logging()
    settings = Settings.from_env()
    missing = [n for n, v in (("DATABASE_URL", settings.database_url),
                              ("REDIS_URL", settings.redis_url or settings.redis_cluster_url),
                              ("BATCHCALLS_SERVICE_TOKEN", settings.service_token)) if not v]
    if missing:
        print("missing settings: " + ", ".join(missing) + " (or use `batchcalls up`)", file=sys.stderr)
        return 2
    problem = server_config_problem(settings)
    if problem:
        print(f"batchcalls server: {problem}", file=sys.stderr)
        return 2
    if os.environ.get("BATCHCALLS_AUTO_MIGRATE", "1") == "1":
        migrate(settings.database_url)
    asyncio.run(serve(settings))
    return 0


def cmd_dialer(_: argparse.Namespace) -> int:
    from dialer.__main__ import main as dialer_main

    return dialer_main([])


def cmd_simcarrier(args: argparse.Namespace) -> int:
    from simcarrier.__main__ import main as sim_main

    return sim_main(args.simcarrier_args)


def ui_command(port: int, host: str | None = None) -> list[str]:
    """`streamlit run` of the admin UI on host:port; the host is loopback
    unless BATCHCALLS_UI_HOST (or ``host``) says otherwise (compose: 0.0.0.0)."""
    app = Path(__file__).resolve().parent.parent / "admin_ui" / "app.py"
    host = host or os.environ.get("BATCHCALLS_UI_HOST", "").strip() or "127.0.0.1"
    return [
        sys.executable, "-m", "streamlit", "run", str(app),
        "--server.port", str(port), "--server.address", host, "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        # Developer toolbar hidden for every visitor (also admin_ui/.streamlit/config.toml).
        "--global.developmentMode", "false", "--client.toolbarMode", "viewer",
    ]


def cmd_ui(_: argparse.Namespace) -> int:
    port = int(os.environ.get("BATCHCALLS_UI_PORT", "8501"))
    return subprocess.call(ui_command(port))


async def _create_org(settings: "object", name: str, credits_usd: float) -> tuple[str, str]:
    from server.bootstrap import build_context
    from server.service.organizations import create_organization

    ctx = build_context(settings, validator=object())  # type: ignore[arg-type]
    try:
        return await create_organization(ctx, name, credit_micros=int(credits_usd * 1_000_000))
    finally:
        await ctx.engine.dispose()


def cmd_org(args: argparse.Namespace) -> int:
    from server.settings import Settings

    settings = Settings.from_env()
    if not settings.database_url or not (settings.redis_url or settings.redis_cluster_url):
        print("DATABASE_URL and REDIS_URL must be set (the organization is written to the server's database)",
              file=sys.stderr)
        return 2
    org_id, secret = asyncio.run(_create_org(settings, args.name, args.credits))
    print(f"organization {org_id} created\nowner API key (shown once): {secret}")
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from launcher.devstack import run_up

    return run_up(args)


def build_parser() -> argparse.ArgumentParser:
    """The whole `batchcalls` grammar; `simcarrier` leaves its options to `python -m simcarrier`."""
    parser = argparse.ArgumentParser(prog="batchcalls", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up = sub.add_parser("up", help="start everything on embedded Postgres and Redis")
    up.add_argument("--data-dir", default=os.environ.get("BATCHCALLS_DATA_DIR", ".data"))
    up.add_argument("--grpc-port", type=int, default=int(os.environ.get("BATCHCALLS_GRPC_PORT", "50051")))
    up.add_argument("--ui-port", type=int, default=int(os.environ.get("BATCHCALLS_UI_PORT", "8501")))
    up.add_argument("--no-ui", action="store_true", help="do not start the Streamlit admin UI")
    up.add_argument("--time-scale", type=float, default=float(os.environ.get("BATCHCALLS_SIM_TIME_SCALE", "0.05")),
                    help="simulated carrier time scale (0.05: a 3-minute call lasts 9 s)")
    up.set_defaults(fn=cmd_up)
    sub.add_parser("server", help="run the gRPC server (DATABASE_URL, REDIS_URL)").set_defaults(fn=cmd_server)
    sub.add_parser("dialer", help="run a dialer (REDIS_URL, BATCHCALLS_SERVER_ADDR)").set_defaults(fn=cmd_dialer)
    sub.add_parser("ui", help="run the Streamlit admin UI").set_defaults(fn=cmd_ui)
    sub.add_parser("migrate", help="bring the database schema up to date").set_defaults(fn=cmd_migrate)
    # add_help=False: `batchcalls simcarrier --help` shows the carrier's own options.
    sim = sub.add_parser("simcarrier", add_help=False,
                         help="run the simulated carrier; takes the options of `python -m simcarrier`")
    sim.set_defaults(fn=cmd_simcarrier)
    org = sub.add_parser("org", help="manage organizations (`org create NAME`)")
    org_sub = org.add_subparsers(dest="org_command", required=True, metavar="ACTION")
    create = org_sub.add_parser("create", help="create an organization and print its owner key once")
    create.add_argument("name")
    create.add_argument("--credits", type=float, default=100.0, help="starting credit, USD")
    create.set_defaults(fn=cmd_org)
    return parser


def parse_command_line(argv: list[str]) -> argparse.Namespace:
    """Parses and validates a `batchcalls` command line without running it.

    Exits through argparse (status 2) on a command line the CLI refuses, as
    `batchcalls` itself does. The simulated carrier's options are checked with
    its own parser, so `batchcalls simcarrier --port 8700` is accepted exactly
    when `python -m simcarrier --port 8700` is.
    """
    parser = build_parser()
    if len(argv) >= 2 and argv[0] == "org" and argv[1] not in ("create", "-h", "--help"):
        # `org NAME` would read as an action; say what to type instead of "invalid choice".
        parser.error(f"to create an organization, run `batchcalls org create {argv[1]}`")
    args, extra = parser.parse_known_args(argv)
    if args.command == "simcarrier":
        from simcarrier.__main__ import parse_args as parse_simcarrier_args

        parse_simcarrier_args(extra)
        args.simcarrier_args = extra
    elif extra:
        parser.error("unrecognized arguments: " + " ".join(extra))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_command_line(sys.argv[1:] if argv is None else argv)
    return int(args.fn(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
