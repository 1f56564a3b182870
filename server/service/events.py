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
    await publish_many(ctx, {(org_id, batch_id): list(events)})


async def publish_many(ctx: ServiceContext, by_batch: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
    """Every event of a flush (of one or several batches) in one pipelined
    round trip; best effort, as ``publish``."""
    messages = [(o, b, json.dumps(e).encode()) for (o, b), batch_events in by_batch.items() for e in batch_events]
    if not messages:
        return
    try:
        await ctx.redis_state.publish_many(messages)
    except Exception as exc:  # Redis down: Postgres already holds the truth
        log.warning("event publish failed for %d batches: %s", len(by_batch), exc)


async def enqueue_ready(ctx: ServiceContext, items: list[tuple[str, str, str, float]]) -> None:
    """Puts contacts (org, batch, contact id, due epoch s) back into their
    ready queues in one pipelined round trip. A failure is repaired by the
    reconciler, which re-queues every waiting contact missing from Redis."""
    if not items:
        return
    try:
        await ctx.redis_state.enqueue_items(items)
    except Exception as exc:
        log.warning("re-enqueue of %d contacts failed (%s); reconciler will repair", len(items), exc)
