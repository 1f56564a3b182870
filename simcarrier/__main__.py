"""Command line entry: ``python -m simcarrier``.

Prints exactly one line, ``SIMCARRIER_READY http://HOST:PORT``, to stdout once
the socket listens, so a parent process (``batchcalls up``, a test) can start
it with ``--port 0`` and read the port it got. Everything else goes to the
log on stderr. SIGTERM and SIGINT stop it cleanly.

Every option has an environment fallback, for compose files:
``SIMCARRIER_HOST``, ``SIMCARRIER_PORT``, ``SIMCARRIER_TIME_SCALE``,
``SIMCARRIER_SEED``, ``SIMCARRIER_RECORD_FILE``, ``SIMCARRIER_LOG_LEVEL``,
``SIMCARRIER_CPS_LIMIT``, ``SIMCARRIER_PUSHBACK_RETRY_AFTER``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from simcarrier.server import serve

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _raise_fd_limit() -> None:
    """Lifts the soft open-files limit: one socket per long-polled live call."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = hard if hard != resource.RLIM_INFINITY else 65536
        if soft != resource.RLIM_INFINITY and soft < target:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ImportError, ValueError, OSError):
        pass


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Options, each defaulting to its ``SIMCARRIER_*`` variable, then to a built-in value."""
    env = os.environ
    parser = argparse.ArgumentParser(prog="python -m simcarrier", description="Simulated telephony carrier and voice agent.")
    parser.add_argument("--host", default=env.get("SIMCARRIER_HOST", "127.0.0.1"),
                        help="address to listen on (env SIMCARRIER_HOST, default %(default)s)")
    parser.add_argument("--port", type=int, default=env.get("SIMCARRIER_PORT", "0"),
                        help="port to listen on, 0 for a free one (env SIMCARRIER_PORT, default %(default)s)")
    parser.add_argument(
        "--time-scale", type=float, default=env.get("SIMCARRIER_TIME_SCALE", "1.0"),
        help="real seconds per simulated second; 0.001: a 3-minute call lasts 180 ms "
             "(env SIMCARRIER_TIME_SCALE, default %(default)s)",
    )
    parser.add_argument("--seed", default=env.get("SIMCARRIER_SEED", "0"),
                        help="seed of the random outcome mix (env SIMCARRIER_SEED, default %(default)s)")
    parser.add_argument("--record-file", default=env.get("SIMCARRIER_RECORD_FILE") or None,
                        help="append every call as JSON Lines, last line per call_id wins "
                             "(env SIMCARRIER_RECORD_FILE, default: no record)")
    parser.add_argument("--log-level", type=str.upper, choices=LOG_LEVELS, default=env.get("SIMCARRIER_LOG_LEVEL", "WARNING"),
                        help="log level on stderr (env SIMCARRIER_LOG_LEVEL, default %(default)s)")
    parser.add_argument("--cps-limit", type=float, default=env.get("SIMCARRIER_CPS_LIMIT", "0"),
                        help="calls per second accepted per caller number in any sliding second; over it "
                             "the call is refused with 503 + Retry-After (env SIMCARRIER_CPS_LIMIT, "
                             "default %(default)s = no limit)")
    parser.add_argument("--pushback-retry-after", type=float, default=env.get("SIMCARRIER_PUSHBACK_RETRY_AFTER", "2"),
                        help="Retry-After seconds of a refusal over --cps-limit, negative = no header "
                             "(env SIMCARRIER_PUSHBACK_RETRY_AFTER, default %(default)s)")
    args = parser.parse_args(argv)
    if args.time_scale <= 0:
        parser.error("--time-scale must be > 0")
    return args


async def _main(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass

    def ready(url: str) -> None:
        sys.stdout.write(f"SIMCARRIER_READY {url}\n")
        sys.stdout.flush()

    await serve(args.host, args.port, time_scale=args.time_scale, seed=args.seed,
                record_file=args.record_file, cps_limit=args.cps_limit or None,
                pushback_retry_after=args.pushback_retry_after if args.pushback_retry_after >= 0 else None,
                on_ready=ready, stop=stop)


def main(argv: list[str] | None = None) -> int:
    """Runs the carrier until SIGTERM or SIGINT; returns the exit code (0)."""
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _raise_fd_limit()
    asyncio.run(_main(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
