"""Dialer settings, read from the environment.

| variable                           | default                 |
|------------------------------------|-------------------------|
| BATCHCALLS_SERVER_ADDR             | 127.0.0.1:50052 (the server's internal listener); several servers: a comma-separated list
|                                    | of IP:port, or dns:///name:port (round-robin, failover: contract/channels.py) |
| BATCHCALLS_SERVICE_TOKEN           | "" (required by server) |
| REDIS_URL                          | redis://127.0.0.1:6379/0 (redis:// or unix://) |
| REDIS_CLUSTER_URL                  | "" (seed nodes, comma-separated; wins over REDIS_URL: docs/redis.md) |
| BATCHCALLS_SIMCARRIER_URL          | http://127.0.0.1:50070  |
| BATCHCALLS_DIALER_ID               | <hostname>-<pid>        |
| BATCHCALLS_LEASE_TTL_SECONDS       | 10                      |
| BATCHCALLS_HEARTBEAT_SECONDS       | lease ttl / 3           |
| BATCHCALLS_RING_TIMEOUT_SECONDS    | 30                      |
| BATCHCALLS_DIALER_METRICS_PORT     | 9102 (0 = off)          |
| BATCHCALLS_DIALER_METRICS_HOST     | 127.0.0.1               |
| BATCHCALLS_POLL_SECONDS            | 0.05                    |
| BATCHCALLS_DIAL_GRACE_SECONDS      | 1.0 (the server's grant window) |
| BATCHCALLS_DRAIN_TIMEOUT_SECONDS   | 30 (SIGTERM: wait this long for live calls) |
| BATCHCALLS_REAPER_SECONDS          | 1.0                     |
| BATCHCALLS_DIALER_MAX_CALLS        | 1000 (calls one dialer holds at once) |
| BATCHCALLS_RPC_TIMEOUT_SECONDS     | 5                       |
| BATCHCALLS_PREFETCH_SECONDS        | 0.1 (grant ahead: call-end rate x this; 0 = off) |
| BATCHCALLS_DIALER_MAX_PREFETCH     | 32 (reservations per org per dialer) |
| BATCHCALLS_CPS_HEADROOM            | 0.015 (pace this fraction under a trunk's CPS; at most 0.5) |
| BATCHCALLS_LOG_LEVEL               | INFO                    |
| BATCHCALLS_SIMULATED_AGENT_REPORTS | 1 (the simulated agent reports each completed call through ResultsService; 0 = off) |
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, replace


class SettingsError(ValueError):
    pass


def _float(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be >= {minimum}, got {raw!r}")
    return value


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be >= {minimum}, got {raw!r}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be 1 or 0, got {raw!r}")


def default_dialer_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class DialerSettings:
    server_addr: str = "127.0.0.1:50052"
    service_token: str = ""
    redis_url: str = "redis://127.0.0.1:6379/0"
    #: Redis Cluster seed URLs, comma-separated; when set, wins over redis_url.
    redis_cluster_url: str = ""
    simcarrier_url: str = "http://127.0.0.1:50070"
    dialer_id: str = ""
    lease_ttl_seconds: float = 10.0
    heartbeat_seconds: float = 10.0 / 3
    ring_timeout_seconds: float = 30.0
    metrics_port: int = 9102
    metrics_host: str = "127.0.0.1"
    poll_seconds: float = 0.05
    dial_grace_seconds: float = 1.0
    drain_timeout_seconds: float = 30.0
    reaper_interval_seconds: float = 1.0
    max_live_calls: int = 1000
    rpc_timeout_seconds: float = 5.0
    log_level: str = "INFO"
    #: Grant ahead: keep about (this dialer's call-end rate in the org x
    #: prefetch_seconds) contacts granted and waiting for a slot, so a
    #: freed slot is redialed at once instead of after a StartAttempt round
    #: trip. 0 turns it off; a campaign of long calls (low end rate) never
    #: prefetches, so no grant waits near its dial grace.
    prefetch_seconds: float = 0.1
    #: At most this many reservations per organization per dialer (and the
    #: org's reserved set holds at most its concurrency limit). 32 ran dry
    #: at 250 call ends a second: a refill (claim round, grant linger,
    #: StartAttempt) takes about as long as 32 ends.
    max_prefetch: int = 64
    #: Calls-per-second pacing runs this fraction under the configured rate,
    #: so that the few ms a start takes to reach the carrier (more on a busy
    #: machine) never put CPS + 1 starts in one second at the carrier
    #: (dialer.cps_gate).
    cps_headroom: float = 0.015
    #: The simulated trunk's built-in agent reports each completed call
    #: through ResultsService (dialer.agent_results), as a real agent would.
    simulated_agent_reports: bool = True

    def __post_init__(self) -> None:
        if not self.dialer_id:
            object.__setattr__(self, "dialer_id", default_dialer_id())
        if self.lease_ttl_seconds <= 0:
            raise SettingsError("lease ttl must be > 0")
        if not 0 < self.heartbeat_seconds < self.lease_ttl_seconds:
            raise SettingsError("heartbeat must be > 0 and shorter than the lease ttl")

    @property
    def lease_ttl_ms(self) -> int:
        return int(self.lease_ttl_seconds * 1000)

    def with_(self, **changes) -> "DialerSettings":
        return replace(self, **changes)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "DialerSettings":
        env = os.environ if env is None else env
        ttl = _float(env, "BATCHCALLS_LEASE_TTL_SECONDS", 10.0, minimum=0.001)
        return cls(
            server_addr=env.get("BATCHCALLS_SERVER_ADDR", "").strip() or "127.0.0.1:50052",
            service_token=env.get("BATCHCALLS_SERVICE_TOKEN", "").strip(),
            redis_url=env.get("REDIS_URL", "").strip() or "redis://127.0.0.1:6379/0",
            redis_cluster_url=env.get("REDIS_CLUSTER_URL", "").strip(),
            simcarrier_url=env.get("BATCHCALLS_SIMCARRIER_URL", "").strip() or "http://127.0.0.1:50070",
            dialer_id=env.get("BATCHCALLS_DIALER_ID", "").strip() or default_dialer_id(),
            lease_ttl_seconds=ttl,
            heartbeat_seconds=_float(env, "BATCHCALLS_HEARTBEAT_SECONDS", ttl / 3, minimum=0.001),
            ring_timeout_seconds=_float(env, "BATCHCALLS_RING_TIMEOUT_SECONDS", 30.0),
            metrics_port=_int(env, "BATCHCALLS_DIALER_METRICS_PORT", 9102),
            metrics_host=env.get("BATCHCALLS_DIALER_METRICS_HOST", "").strip() or "127.0.0.1",
            poll_seconds=_float(env, "BATCHCALLS_POLL_SECONDS", 0.05, minimum=0.001),
            dial_grace_seconds=_float(env, "BATCHCALLS_DIAL_GRACE_SECONDS", 1.0, minimum=0.001),
            drain_timeout_seconds=_float(env, "BATCHCALLS_DRAIN_TIMEOUT_SECONDS", 30.0),
            reaper_interval_seconds=_float(env, "BATCHCALLS_REAPER_SECONDS", 1.0, minimum=0.01),
            max_live_calls=_int(env, "BATCHCALLS_DIALER_MAX_CALLS", 1000, minimum=1),
            rpc_timeout_seconds=_float(env, "BATCHCALLS_RPC_TIMEOUT_SECONDS", 5.0, minimum=0.01),
            log_level=env.get("BATCHCALLS_LOG_LEVEL", "").strip().upper() or "INFO",
            prefetch_seconds=_float(env, "BATCHCALLS_PREFETCH_SECONDS", 0.1),
            max_prefetch=_int(env, "BATCHCALLS_DIALER_MAX_PREFETCH", 64),
            cps_headroom=min(_float(env, "BATCHCALLS_CPS_HEADROOM", 0.015), 0.5),
            simulated_agent_reports=_bool(env, "BATCHCALLS_SIMULATED_AGENT_REPORTS", True),
        )
