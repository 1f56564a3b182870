"""Building a redis-py asyncio client from settings, shared by the server
(``server/bootstrap.py``) and the dialer (``dialer/__main__.py``).

- ``REDIS_URL``: one Redis (``redis://``, ``rediss://`` or ``unix://``):
  ``redis.asyncio.Redis``.
- ``REDIS_CLUSTER_URL``: one or more seed nodes, comma-separated
  (``redis://[user:password@]host:port[,redis://host2:port2…]``); when set it
  wins over ``REDIS_URL``: ``redis.asyncio.cluster.RedisCluster``. The first
  URL gives scheme, credentials and TLS, every URL is a startup node
  (docs/redis.md).
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

__all__ = ["redis_client", "redis_cluster_client", "redis_from_urls", "socket_timeouts"]


def _seconds(env: str, default: float) -> float | None:
    try:
        value = float(os.environ.get(env, "") or default)
    except ValueError:
        value = default
    return value if value > 0 else None


def socket_timeouts(socket_timeout: float | None = None, connect_timeout: float | None = None) -> dict[str, Any]:
    """redis-py's ``socket_timeout`` / ``socket_connect_timeout``: the
    arguments, else ``BATCHCALLS_REDIS_SOCKET_TIMEOUT_SECONDS`` /
    ``BATCHCALLS_REDIS_CONNECT_TIMEOUT_SECONDS`` (5 s each; 0 = none). A
    command whose reply does not come in time fails instead of hanging. Pub/sub
    reads pass their own timeout (``get_message(timeout=…)``), so a quiet
    channel never trips it."""
    def pick(given: float | None, env: str) -> float | None:
        if given is None:
            return _seconds(env, 5.0)
        return float(given) if given > 0 else None

    return {
        "socket_timeout": pick(socket_timeout, "BATCHCALLS_REDIS_SOCKET_TIMEOUT_SECONDS"),
        "socket_connect_timeout": pick(connect_timeout, "BATCHCALLS_REDIS_CONNECT_TIMEOUT_SECONDS"),
    }


def redis_client(url: str, *, health_check_interval: int = 10, **timeouts: Any) -> Any:
    """``redis.asyncio.Redis`` for one server (bytes replies; timeouts:
    ``socket_timeouts``)."""
    import redis.asyncio as aioredis

    return aioredis.Redis.from_url(url, decode_responses=False, health_check_interval=health_check_interval,
                                   **socket_timeouts(**timeouts))


def redis_cluster_client(urls: str, **timeouts: Any) -> Any:
    """redis-py's ``RedisCluster`` from one or more comma-separated seed URLs
    (``REDIS_CLUSTER_URL``); bytes replies."""
    from redis.asyncio.cluster import ClusterNode, RedisCluster

    seeds = [u.strip() for u in urls.split(",") if u.strip()]
    if not seeds:
        raise ValueError("REDIS_CLUSTER_URL names no node")
    seeds = [seed if "://" in seed else f"redis://{seed}" for seed in seeds]
    nodes = []
    for seed in seeds:
        parts = urlsplit(seed)
        nodes.append(ClusterNode(parts.hostname or "127.0.0.1", parts.port or 6379))
    return RedisCluster.from_url(seeds[0], startup_nodes=nodes, decode_responses=False, **socket_timeouts(**timeouts))


def redis_from_urls(url: str, cluster_urls: str = "", *, health_check_interval: int = 10, **timeouts: Any) -> Any:
    """A ``RedisCluster`` when ``cluster_urls`` is set, else a ``Redis`` on
    ``url``. ``timeouts``: ``socket_timeout``, ``connect_timeout`` (else
    from the environment, see ``socket_timeouts``)."""
    if cluster_urls.strip():
        return redis_cluster_client(cluster_urls, **timeouts)
    return redis_client(url, health_check_interval=health_check_interval, **timeouts)
