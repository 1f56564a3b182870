"""Small helpers every kind of test uses: one definition of each.

- `run`: runs one coroutine to completion on a fresh event loop, for tests
  that drive async code from a synchronous test function.
- `Clock`: a clock a test moves by hand, injected wherever the code takes a
  `clock()` returning epoch seconds (docs/design.md §6: every component takes
  its time from one injectable source).
- `free_port`: a loopback port free for both TCP and UDP, so the same helper
  serves gRPC and HTTP servers and SIP peers (sipp listens on one port for
  both transports).
- `dialer_env`: the environment of a `python -m dialer` process started by a
  test: short leases and polls, so crashes are noticed and calls placed in
  well under a second, and no metrics port to collide on.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

#: Dialer settings for tests (read by dialer/settings.py). A lease that lives
#: 1 s makes a killed dialer's leases expire quickly, so the reaper's work is
#: seen within a test's timeout.
TEST_DIALER_ENV: dict[str, str] = {
    "BATCHCALLS_LEASE_TTL_SECONDS": "1",
    "BATCHCALLS_HEARTBEAT_SECONDS": "0.25",
    "BATCHCALLS_POLL_SECONDS": "0.02",
    "BATCHCALLS_DIALER_METRICS_PORT": "0",
    "BATCHCALLS_RING_TIMEOUT_SECONDS": "30",
    "BATCHCALLS_LOG_LEVEL": "WARNING",
}


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Runs `coro` on a new event loop and returns its result."""
    return asyncio.run(coro)


class Clock:
    """A fake wall clock in epoch seconds: `clock()` reads it, `advance` moves it.

    It starts at a fixed instant (2023-11-14) so that scores and expiries in
    Redis are the same from run to run.
    """

    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def free_port() -> int:
    """A port on 127.0.0.1 that is free for both UDP and TCP right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                    tcp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


def dialer_env(simcarrier_url: str, dialer_id: str, **overrides: str) -> dict[str, str]:
    """The environment (on top of the stack's) of one test dialer process."""
    return {
        **TEST_DIALER_ENV,
        "BATCHCALLS_SIMCARRIER_URL": simcarrier_url,
        "BATCHCALLS_DIALER_ID": dialer_id,
        **overrides,
    }
