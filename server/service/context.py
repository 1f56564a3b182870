"""What every use case needs, wired once by the bootstrap."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from server.adapters.redis.state import RedisState
from server.domain.clock import Clock
from server.domain.cost import PriceTable
from server.domain.retry import RetryPolicy
from server.settings import Settings


@dataclass
class ServiceContext:
    engine: AsyncEngine
    redis_state: RedisState
    clock: Clock
    settings: Settings
    retry_policy: RetryPolicy
    prices: PriceTable
    validator: Any  # server.service.validation_runner runner with validate_async
