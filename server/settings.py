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
    #: Default delays after a machine answer (voicemail), when the batch
    #: sets none: one hour (not in the seed; docs/design.md §4).
    voicemail_retry_delays: tuple[float, ...] = (3600.0,)
    #: How long a StartAttempt grant may wait before the call is placed;
    #: pause and cancel wait this out so no call starts after they return.
    dial_grace_seconds: float = 1.0
    scheduler_interval_seconds: float = 1.0
    reconcile_interval_seconds: float = 15.0
    #: Leader lease of the background duties (scheduler, reconciler):
    #: one replica holds it, another takes over at most this long after
    #: the holder dies (server/service/leader.py).
    leader_ttl_seconds: float = 5.0
    max_message_bytes: int = 16 * 1024 * 1024
    #: Price table "base=0.05,llm=0.015,stt=0.003,tts=0.005" (USD per minute).
    prices: str = "base=0.05,llm=0.015,stt=0.003,tts=0.005"
    validation_workers: int = 2
    #: Jurisdiction rules (issue 16) always apply to calls on SIP trunks; a
    #: simulated trunk reaches no one, so they apply to it only when this is
    #: true (tests of the rules, a demo of them). docs/compliance.md.
    jurisdiction_on_simulated: bool = False
    #: Fernet key(s) encrypting trunk and agent passwords at rest, several
    #: comma-separated to rotate (the first encrypts); docs/design.md §7.
    secrets_key: str = ""
    #: Trunk and agent hosts on loopback, private or link-local ranges (and
    #: "localhost") are refused unless true: `batchcalls up` and the tests'
    #: stack set it (they dial 127.0.0.1). docs/design.md §7.
    allow_private_hosts: bool = False
    #: Secret that signs page tokens (server/service/page_keys.py); unset =
    #: derived from service_token, which every replica shares.
    page_token_key: str = ""

    #: WatchBatch streams (server/api/streams.py, docs/design.md §7): open
    #: streams per API key / per organization in one server process (0 =
    #: no cap), a stream's longest life (then it ends; clients reconnect),
    #: how often a stream's key is re-checked (revoked/expired ends it).
    watch_max_per_key: int = 10
    watch_max_per_org: int = 50
    watch_max_seconds: float = 3600.0
    watch_key_check_seconds: float = 30.0
    #: Requests per second and burst per API key, across replicas (Redis,
    #: contract/lua/rate_limit.lua); 0 = off.
    rate_limit_rps: float = 50.0
    rate_limit_burst: int = 100
    #: Redis socket read/write and connect timeouts (pub/sub reads wait
    #: with their own timeout), seconds.
    redis_socket_timeout_seconds: float = 5.0
    redis_connect_timeout_seconds: float = 5.0
    #: Postgres connect timeout and the runtime engine's statement_timeout
    #: (migrations are not cut), seconds; 0 = none.
    db_connect_timeout_seconds: float = 5.0
    db_statement_timeout_seconds: float = 30.0

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
            voicemail_retry_delays=(_floats(e["BATCHCALLS_VOICEMAIL_RETRY_DELAYS"])
                                    if e.get("BATCHCALLS_VOICEMAIL_RETRY_DELAYS") else d.voicemail_retry_delays),
            dial_grace_seconds=float(e.get("BATCHCALLS_DIAL_GRACE_SECONDS", d.dial_grace_seconds)),
            scheduler_interval_seconds=float(e.get("BATCHCALLS_SCHEDULER_INTERVAL_SECONDS", d.scheduler_interval_seconds)),
            reconcile_interval_seconds=float(e.get("BATCHCALLS_RECONCILE_INTERVAL_SECONDS", d.reconcile_interval_seconds)),
            leader_ttl_seconds=float(e.get("BATCHCALLS_LEADER_TTL_SECONDS", d.leader_ttl_seconds)),
            prices=e.get("BATCHCALLS_PRICES", d.prices),
            validation_workers=int(e.get("BATCHCALLS_VALIDATION_WORKERS", d.validation_workers)),
            jurisdiction_on_simulated=e.get("BATCHCALLS_JURISDICTION_ON_SIMULATED", "").strip().lower()
            in ("1", "true", "yes", "on") or d.jurisdiction_on_simulated,
            secrets_key=e.get("BATCHCALLS_SECRETS_KEY", d.secrets_key).strip(),
            allow_private_hosts=e.get("BATCHCALLS_ALLOW_PRIVATE_HOSTS", "").strip().lower()
            in ("1", "true", "yes", "on") or d.allow_private_hosts,
            page_token_key=e.get("BATCHCALLS_PAGE_TOKEN_KEY", d.page_token_key),
            watch_max_per_key=int(e.get("BATCHCALLS_WATCH_MAX_PER_KEY", d.watch_max_per_key)),
            watch_max_per_org=int(e.get("BATCHCALLS_WATCH_MAX_PER_ORG", d.watch_max_per_org)),
            watch_max_seconds=float(e.get("BATCHCALLS_WATCH_MAX_SECONDS", d.watch_max_seconds)),
            watch_key_check_seconds=float(e.get("BATCHCALLS_WATCH_KEY_CHECK_SECONDS", d.watch_key_check_seconds)),
            rate_limit_rps=float(e.get("BATCHCALLS_RATE_LIMIT_RPS", d.rate_limit_rps)),
            rate_limit_burst=int(e.get("BATCHCALLS_RATE_LIMIT_BURST", d.rate_limit_burst)),
            redis_socket_timeout_seconds=float(e.get("BATCHCALLS_REDIS_SOCKET_TIMEOUT_SECONDS",
                                                     d.redis_socket_timeout_seconds)),
            redis_connect_timeout_seconds=float(e.get("BATCHCALLS_REDIS_CONNECT_TIMEOUT_SECONDS",
                                                      d.redis_connect_timeout_seconds)),
            db_connect_timeout_seconds=float(e.get("BATCHCALLS_DB_CONNECT_TIMEOUT_SECONDS",
                                                   d.db_connect_timeout_seconds)),
            db_statement_timeout_seconds=float(e.get("BATCHCALLS_DB_STATEMENT_TIMEOUT_SECONDS",
                                                     d.db_statement_timeout_seconds)),
        )
