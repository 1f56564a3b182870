"""The simulated carrier process: call state on real timers, behind an HTTP JSON API.

Why a process of its own with an HTTP API: real calls outlive the dialer that
placed them, so the carrier must keep ringing, talking and hanging up on its
own timers when a dialer is killed, and must answer a recovering dialer's
"how did call X end?" (docs/design.md §5–6). It is also the ground truth for
tests and benchmarks: it records every call it receives, with wall-clock
start, answer and end, and tracks live calls per organization, batch and
number at the exact instants calls start and end.

The pieces: :mod:`simcarrier.carrier` (call registry and timers),
:mod:`simcarrier.routes` (the HTTP API, documented there),
:mod:`simcarrier.record` (the record file). HTTP is served by ``aiohttp.web``
on the carrier's event loop: the dialer keeps one long-poll open per live
call, hundreds at once, and a coroutine per request costs far less than a
thread. Access logging is off, since it would write a line per request at
hundreds of requests per second.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiohttp import web

from simcarrier.carrier import Carrier
from simcarrier.routes import build_app

log = logging.getLogger("simcarrier")

#: Real seconds in-flight requests get to finish at shutdown (aiohttp waits
#: up to twice this); long-polls still waiting then are cut, and their
#: dialers retry or recover.
SHUTDOWN_GRACE_SECONDS = 0.25
LISTEN_BACKLOG = 4096


async def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    time_scale: float = 1.0,
    seed: int | str = 0,
    record_file: str | None = None,
    cps_limit: float | None = None,
    pushback_retry_after: float | None = 2.0,
    on_ready: Callable[[str], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Runs the carrier until ``stop`` is set (or forever).

    ``on_ready`` receives ``http://HOST:PORT`` once the socket listens
    (``port`` 0 picks a free port).
    """
    carrier = Carrier(time_scale=time_scale, seed=seed, record_file=record_file, cps_limit=cps_limit,
                      pushback_retry_after=pushback_retry_after)
    runner = web.AppRunner(build_app(carrier), access_log=None, handle_signals=False,
                           shutdown_timeout=SHUTDOWN_GRACE_SECONDS)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, backlog=LISTEN_BACKLOG, reuse_address=True)
        await site.start()
        bound = runner.addresses[0][1]
        url = f"http://{host}:{bound}"
        log.info("simulated carrier listening on %s (time scale %s, seed %s)", url, time_scale, seed)
        if on_ready is not None:
            on_ready(url)
        await (stop or asyncio.Event()).wait()
    finally:
        await runner.cleanup()
        carrier.close()
