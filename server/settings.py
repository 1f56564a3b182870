"""Server settings, read once from the environment (see the README table)."""

from __future__ import annotations

import os
from dataclasses import dataclass


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split(",") if x.strip())


#: Service tokens published somewhere (an old compose.yaml fallback, docs):
#: anyone could read them, so `batchcalls server` refuses them.
KNOWN_DEFAULT_SERVICE_TOKENS = frozenset({"change-me-service-token"})
_PLACEHOLDER_WORDS = ("changeme", "change-me", "change_me", "replaceme", "replace-me", "replace_me")
MIN_SERVICE_TOKEN_CHARS = 32


def service_token_problem(token: str) -> str | None:
    """Why ``token`` must not guard DialerService, or None when it may.

    Missing, shorter than 32 characters, or a published default/placeholder.
    `batchcalls up` generates a random one (launcher/devstack.py).
    """
    if not token:
        return "BATCHCALLS_SERVICE_TOKEN is not set (or use `batchcalls up`)"
    if token in KNOWN_DEFAULT_SERVICE_TOKENS or any(w in token.lower() for w in _PLACEHOLDER_WORDS):
        return "BATCHCALLS_SERVICE_TOKEN is a published default; generate one (python -c 'import secrets; print(secrets.token_urlsafe(32))')"
    if len(token) < MIN_SERVICE_TOKEN_CHARS:
        return (f"BATCHCALLS_SERVICE_TOKEN is too short ({len(token)} characters; "
                f"at least {MIN_SERVICE_TOKEN_CHARS}: python -c 'import secrets; print(secrets.token_urlsafe(32))')")
    return None


@dataclass(frozen=True)
class Settings:
    database_url: str = ""
    redis_url: str = ""
    #: Redis Cluster seed node(s), ``redis://[user:pass@]host:port`` (several
    #: comma-separated). When set it wins over ``redis_url``: the server uses
    #: redis-py's RedisCluster and sharded pub/sub (docs/redis.md).
    redis_cluster_url: str = ""
    grpc_host: str = "127.0.0.1"
    grpc_port: int = 50051
    #: Shared secret of dialers for DialerService (never an org key).
    service_token: str = ""
    #: host:port of the internal listener (DialerService, health): only our
    #: dialers call it, so it binds loopback unless told otherwise.
    internal_addr: str = "127.0.0.1:50052"
    #: PEM certificate chain and key of both listeners; unset = plaintext.
    tls_cert_file: str = ""
    tls_key_file: str = ""
    #: CA of the dialers' client certificates: set = the internal listener
    #: requires one (mutual TLS). Needs tls_cert_file/tls_key_file.
    internal_tls_client_ca_file: str = ""
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
    #: Jurisdiction rules (issue 16) always apply to calls on SIP trunks; a
    #: simulated trunk reaches no one, so they apply to it only when this is
    #: true (tests of the rules, a demo of them). docs/compliance.md.
    jurisdiction_on_simulated: bool = False

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        e = dict(os.environ if env is None else env)
        d = cls()
        return cls(
            database_url=e.get("DATABASE_URL", d.database_url),
            redis_url=e.get("REDIS_URL", d.redis_url),
            redis_cluster_url=e.get("REDIS_CLUSTER_URL", d.redis_cluster_url),
            grpc_host=e.get("BATCHCALLS_GRPC_HOST", d.grpc_host),
            grpc_port=int(e.get("BATCHCALLS_GRPC_PORT", d.grpc_port)),
            service_token=e.get("BATCHCALLS_SERVICE_TOKEN", d.service_token),
            internal_addr=e.get("BATCHCALLS_INTERNAL_ADDR", "").strip() or d.internal_addr,
            tls_cert_file=e.get("BATCHCALLS_TLS_CERT_FILE", d.tls_cert_file).strip(),
            tls_key_file=e.get("BATCHCALLS_TLS_KEY_FILE", d.tls_key_file).strip(),
            internal_tls_client_ca_file=e.get("BATCHCALLS_INTERNAL_TLS_CLIENT_CA_FILE",
                                              d.internal_tls_client_ca_file).strip(),
            retry_delays=_floats(e["BATCHCALLS_RETRY_DELAYS"]) if e.get("BATCHCALLS_RETRY_DELAYS") else d.retry_delays,
            dial_grace_seconds=float(e.get("BATCHCALLS_DIAL_GRACE_SECONDS", d.dial_grace_seconds)),
            scheduler_interval_seconds=float(e.get("BATCHCALLS_SCHEDULER_INTERVAL_SECONDS", d.scheduler_interval_seconds)),
            reconcile_interval_seconds=float(e.get("BATCHCALLS_RECONCILE_INTERVAL_SECONDS", d.reconcile_interval_seconds)),
            prices=e.get("BATCHCALLS_PRICES", d.prices),
            validation_workers=int(e.get("BATCHCALLS_VALIDATION_WORKERS", d.validation_workers)),
            jurisdiction_on_simulated=e.get("BATCHCALLS_JURISDICTION_ON_SIMULATED", "").strip().lower()
            in ("1", "true", "yes", "on") or d.jurisdiction_on_simulated,
        )
