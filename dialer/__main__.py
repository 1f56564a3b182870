"""``python -m dialer`` / ``batchcalls dialer``: run one dialer process.

Configuration comes from the environment (see ``dialer.settings``).
Prometheus metrics on ``BATCHCALLS_DIALER_METRICS_PORT`` (default 9102,
0 = off). SIGTERM / SIGINT: stop claiming, let live calls finish (up to
``BATCHCALLS_DRAIN_TIMEOUT_SECONDS``), report them, release leases, exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from dialer.logging import configure_logging, log_event
from contract.channels import ChannelConfigError, ClientTLS, resolve_target
from dialer.settings import DialerSettings, SettingsError

log = logging.getLogger("dialer")


def make_redis(url: str, cluster_url: str = ""):
    """redis.asyncio client from redis://, rediss:// or unix:// URLs; a
    ``RedisCluster`` when ``cluster_url`` (REDIS_CLUSTER_URL) is set."""
    from contract.redis_client import redis_from_urls

    return redis_from_urls(url, cluster_url, health_check_interval=30)


async def _amain(settings: DialerSettings) -> int:
    from contract.channels import open_aio_channel
    from dialer.metrics import DialerMetrics
    from dialer.providers.registry import ProviderRegistry
    from dialer.worker import Dialer

    # Signals first: a SIGTERM that arrives while the process is still
    # starting (e.g. right after /metrics answers) stops it cleanly too.
    loop = asyncio.get_running_loop()
    holder: dict[str, Dialer] = {}
    stop_early = asyncio.Event()

    def on_signal(sig: int) -> None:
        log_event(log, "dialer.signal", signal=signal.Signals(sig).name)
        stop_early.set()
        if "dialer" in holder:
            holder["dialer"].request_stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, on_signal, sig)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - non-Unix
            signal.signal(sig, lambda s, _f: loop.call_soon_threadsafe(on_signal, s))
    metrics = DialerMetrics()
    if settings.metrics_port:
        try:
            metrics.serve(settings.metrics_port, settings.metrics_host)
            log_event(log, "metrics.serving", port=settings.metrics_port)
        except OSError as exc:
            log_event(log, "metrics.port_unavailable", logging.WARNING, port=settings.metrics_port, error=repr(exc))
    redis = make_redis(settings.redis_url, settings.redis_cluster_url)
    # TLS when BATCHCALLS_TLS_CA_FILE etc. are set; several servers
    # (a list of addresses, dns:///name:port) balanced round-robin with a
    # reconnect back-off of at most 1 s: contract/channels.py.
    channel = open_aio_channel(
        settings.server_addr,
        options=[
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_timeout_ms", 10_000),
        ],
    )
    providers = ProviderRegistry(settings)
    dialer = holder["dialer"] = Dialer(settings, redis, channel, providers, metrics=metrics)
    if stop_early.is_set():
        dialer.request_stop()
    try:
        await dialer.run()
    finally:
        await providers.close()
        await channel.close()
        await redis.aclose()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="batchcalls dialer", description="Run a batchcalls dialer.")
    parser.add_argument("--dialer-id", help="override BATCHCALLS_DIALER_ID")
    parser.add_argument("--metrics-port", type=int, help="override BATCHCALLS_DIALER_METRICS_PORT (0 = off)")
    args = parser.parse_args(argv)
    try:
        settings = DialerSettings.from_env()
        changes = {}
        if args.dialer_id:
            changes["dialer_id"] = args.dialer_id
        if args.metrics_port is not None:
            changes["metrics_port"] = args.metrics_port
        if changes:
            settings = settings.with_(**changes)
        ClientTLS.from_env().credentials()  # TLS files set and readable, or plaintext
        resolve_target(settings.server_addr, "BATCHCALLS_SERVER_ADDR")  # a usable address (list)
    except (SettingsError, ChannelConfigError) as exc:
        print(f"batchcalls dialer: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    try:
        return asyncio.run(_amain(settings))
    except KeyboardInterrupt:  # pragma: no cover - second Ctrl-C
        return 0


if __name__ == "__main__":
    sys.exit(main())
