"""Live figures of a batch that are derived, not stored (ETA and waits).

Placeholder until the analytics work lands: no ETA, no extra counts."""

from __future__ import annotations

from typing import Any

from server.service.context import ServiceContext


async def live_figures(ctx: ServiceContext, row: Any) -> dict[str, Any]:
    return {}
