"""Progress events, published through Redis pub/sub after each commit so any
server replica can serve any WatchBatch client."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from server.domain.phone import mask_phone
from server.service.context import ServiceContext

log = logging.getLogger(__name__)


def contact_event(contact_id: int, status: str, outcome: str, attempts: int, phone: str, at: datetime) -> dict[str, Any]:
    return {
        "type": "contact",
        "contact_id": str(contact_id),
        "status": status,
        "outcome": outcome,
        "attempts": attempts,
        "phone_masked": mask_phone(phone),
        "time": at.timestamp(),
    }


def batch_event(status: str, at: datetime) -> dict[str, Any]:
    return {"type": "batch", "status": status, "time": at.timestamp()}


async def publish(ctx: ServiceContext, org_id: str, batch_id: str, *events: dict[str, Any]) -> None:
    """Best effort: a lost event only delays a watcher until the next one,
    and every watcher starts from a fresh snapshot."""
    try:
        for event in events:
            await ctx.redis_state.publish(org_id, batch_id, json.dumps(event).encode())
    except Exception as exc:  # Redis down: Postgres already holds the truth
        log.warning("event publish failed for batch %s: %s", batch_id, exc)
