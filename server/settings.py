"""Server settings, read once from the environment (see the README table)."""

from __future__ import annotations

import os
from dataclasses import dataclass


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split(",") if x.strip())


@dataclass(frozen=True)
class Settings:
    database_url: str = ""
    redis_url: str = ""
    grpc_host: str = "127.0.0.1"
    grpc_port: int = 50051
    #: Shared secret of dialers for DialerService (never an org key).
    service_token: str = ""
    #: Seconds before attempt 2, 3, …; later attempts reuse the last.
    retry_delays: tuple[float, ...] = (300.0, 1800.0)
    #: How long a StartAttempt grant may wait before the call is placed;
    #: pause and cancel wait this out so no call starts after they return.
    dial_grace_seconds: float = 1.0
    scheduler_interval_seconds: float = 1.0
    reconcile_interval_seconds: float = 15.0
    max_message_bytes: int = 16 * 1024 * 1024
    #: Price table "base=0.05,llm=0.015,stt=0.003,tts=0.005" (USD per minute).
    prices: str = "base=0.05,llm=0.015,stt=0.003,tts=0.005"
    validation_workers: int = 2

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        e = dict(os.environ if env is None else env)
        d = cls()
        return cls(
            database_url=e.get("DATABASE_URL", d.database_url),
            redis_url=e.get("REDIS_URL", d.redis_url),
            grpc_host=e.get("BATCHCALLS_GRPC_HOST", d.grpc_host),
            grpc_port=int(e.get("BATCHCALLS_GRPC_PORT", d.grpc_port)),
            service_token=e.get("BATCHCALLS_SERVICE_TOKEN", d.service_token),
            retry_delays=_floats(e["BATCHCALLS_RETRY_DELAYS"]) if e.get("BATCHCALLS_RETRY_DELAYS") else d.retry_delays,
            dial_grace_seconds=float(e.get("BATCHCALLS_DIAL_GRACE_SECONDS", d.dial_grace_seconds)),
            scheduler_interval_seconds=float(e.get("BATCHCALLS_SCHEDULER_INTERVAL_SECONDS", d.scheduler_interval_seconds)),
            reconcile_interval_seconds=float(e.get("BATCHCALLS_RECONCILE_INTERVAL_SECONDS", d.reconcile_interval_seconds)),
            prices=e.get("BATCHCALLS_PRICES", d.prices),
            validation_workers=int(e.get("BATCHCALLS_VALIDATION_WORKERS", d.validation_workers)),
        )
