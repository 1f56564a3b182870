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

from typing import Any
from urllib.parse import urlsplit

__all__ = ["redis_client", "redis_cluster_client", "redis_from_urls"]


def redis_client(url: str, *, health_check_interval: int = 10) -> Any:
    """``redis.asyncio.Redis`` for one server (bytes replies)."""
    import redis.asyncio as aioredis

    return aioredis.Redis.from_url(url, decode_responses=False, health_check_interval=health_check_interval)


def redis_cluster_client(urls: str) -> Any:
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
    return RedisCluster.from_url(seeds[0], startup_nodes=nodes, decode_responses=False)


def redis_from_urls(url: str, cluster_urls: str = "", *, health_check_interval: int = 10) -> Any:
    """A ``RedisCluster`` when ``cluster_urls`` is set, else a ``Redis`` on
    ``url``."""
    if cluster_urls.strip():
        return redis_cluster_client(cluster_urls)
    return redis_client(url, health_check_interval=health_check_interval)
