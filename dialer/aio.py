"""asyncio helpers of the dialer: waiting that never swallows a cancellation.

On Python 3.11 ``asyncio.wait_for`` can swallow a cancellation of the
waiting task; a dialer that must stop within its drain timeout cannot
afford that, so its loops wait with these instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

from dialer.logging import log_event

__all__ = ["cancel_and_wait", "epoch_seconds_fn", "wait_event"]

log = logging.getLogger("dialer.worker")


def epoch_seconds_fn(clock: Any) -> Callable[[], float]:
    """Accept ``Callable[[], float]`` (epoch s) or a clock object with
    ``.now() -> aware datetime`` (``server.domain.clock``'s shape), so tests
    can hand the dialer the same fake clock as the server."""
    if hasattr(clock, "now") and callable(clock.now):
        return lambda: clock.now().timestamp()
    return clock


async def wait_event(event: asyncio.Event, timeout: float | None) -> bool:
    """Wait for ``event`` up to ``timeout`` s; True if set. Built on
    asyncio.wait, which (unlike wait_for on Python 3.11) never swallows a
    cancellation of the waiting task."""
    if event.is_set():
        return True
    waiter = asyncio.ensure_future(event.wait())
    try:
        done, _ = await asyncio.wait({waiter}, timeout=timeout)
        return bool(done)
    finally:
        waiter.cancel()


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]], *, rounds: int = 100) -> None:
    """Cancel tasks and wait for them; re-cancel if a cancellation got
    swallowed (asyncio.wait_for on 3.11 can do that)."""
    pending = {t for t in tasks if not t.done()}
    for _ in range(rounds):
        if not pending:
            return
        for t in pending:
            t.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.1)
    if pending:  # pragma: no cover
        log_event(log, "dialer.tasks_would_not_stop", logging.ERROR, tasks=[t.get_name() for t in pending])
