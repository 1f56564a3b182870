"""The one place that wires settings, engines, Redis and use cases."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from server.adapters.db.engine import make_async_engine
from server.adapters.redis.state import RedisState
from server.domain.clock import Clock, SystemClock
from server.domain.cost import PriceTable
from server.domain.retry import RetryPolicy
from server.service.context import ServiceContext
from server.service.validation_cache import CachingValidator
from server.settings import Settings


def redis_client(url: str, **timeouts: Any) -> aioredis.Redis:
    from contract.redis_client import socket_timeouts

    return aioredis.Redis.from_url(url, decode_responses=False, health_check_interval=10,
                                   **socket_timeouts(**timeouts))


def redis_cluster_client(urls: str, **timeouts: Any) -> Any:
    """redis-py's RedisCluster from one or more comma-separated seed URLs
    (``REDIS_CLUSTER_URL``); the first gives scheme, credentials and TLS,
    every one is a startup node (docs/redis.md). Shared with the dialer:
    ``contract.redis_client``."""
    from contract.redis_client import redis_cluster_client as build

    return build(urls, **timeouts)


def redis_from_settings(settings: Settings) -> Any:
    """A RedisCluster when ``REDIS_CLUSTER_URL`` is set, else a Redis."""
    timeouts = _redis_timeouts(settings)
    if settings.redis_cluster_url:
        return redis_cluster_client(settings.redis_cluster_url, **timeouts)
    return redis_client(settings.redis_url, **timeouts)


def _redis_timeouts(settings: Settings) -> dict[str, Any]:
    """Socket and connect timeouts (0 = none) from the settings."""
    sock = float(getattr(settings, "redis_socket_timeout_seconds", 5.0))
    conn = float(getattr(settings, "redis_connect_timeout_seconds", 5.0))
    return {"socket_timeout": sock, "connect_timeout": conn}


def build_context(settings: Settings, clock: Clock | None = None, validator: Any = None) -> ServiceContext:
    clock = clock or SystemClock()
    engine = make_async_engine(
        settings.database_url,
        connect_timeout=float(getattr(settings, "db_connect_timeout_seconds", 0) or 0),
        statement_timeout=float(getattr(settings, "db_statement_timeout_seconds", 0) or 0),
    )
    state = RedisState(redis_from_settings(settings), clock=lambda: clock.now().timestamp())
    return ServiceContext(
        engine=engine,
        redis_state=state,
        clock=clock,
        settings=settings,
        retry_policy=RetryPolicy(
            delays_seconds=settings.retry_delays,
            by_outcome={"voicemail": getattr(settings, "voicemail_retry_delays", (3600.0,))},
        ),
        prices=PriceTable.from_env_string(settings.prices),
        validator=validator or CachingValidator(workers=settings.validation_workers),
    )


async def close_context(ctx: ServiceContext) -> None:
    await ctx.engine.dispose()
    try:
        await ctx.redis_state.redis.aclose()
    except Exception:
        pass
    close = getattr(ctx.validator, "shutdown", None)
    if close:
        close()
