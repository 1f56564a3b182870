"""Simulated telephony carrier + voice agent, run as its own process.

It stands in for a carrier: the dialer talks to it over HTTP through
:class:`dialer.providers.simulated.SimulatedProvider` and imports nothing
from here. The modules:

- :mod:`simcarrier.model` — outcomes, durations, the per-number override
  table (pure, no clock);
- :mod:`simcarrier.calls` — one call's state and JSON shapes;
- :mod:`simcarrier.carrier` — the call registry, timers and live counters;
- :mod:`simcarrier.routes` — the HTTP API (documented there), on aiohttp;
- :mod:`simcarrier.server` — the process: serves the API until stopped;
- :mod:`simcarrier.record` — the JSON Lines record file;
- :mod:`simcarrier.analysis` — checks over that record.

:func:`spawn` starts it as a child process and waits for its READY line; it
is what tests and ``batchcalls up`` should use.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Self

from simcarrier.model import OVERRIDES, number_with_outcome

__all__ = ["OVERRIDES", "SimCarrierProcess", "number_with_outcome", "spawn"]

READY_PREFIX = "SIMCARRIER_READY "


@dataclass
class SimCarrierProcess:
    """A running carrier child process and the URL it listens on."""

    process: subprocess.Popen[str]
    url: str

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL if it does not stop in time."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def spawn(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    time_scale: float = 1.0,
    seed: int | str = 0,
    record_file: str | None = None,
    log_level: str = "WARNING",
    startup_timeout: float = 15.0,
    stderr: int | None = None,
) -> SimCarrierProcess:
    """Starts ``python -m simcarrier`` and returns once it listens."""
    cmd = [sys.executable, "-m", "simcarrier", "--host", host, "--port", str(port),
           "--time-scale", repr(time_scale), "--seed", str(seed), "--log-level", log_level]
    if record_file:
        cmd += ["--record-file", str(record_file)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, text=True, env=os.environ.copy())
    assert proc.stdout is not None
    deadline = time.monotonic() + startup_timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or proc.poll() is not None:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"simulated carrier did not start (exit code {proc.returncode})")
        ready, _, _ = select.select([proc.stdout], [], [], remaining)
        if ready:
            line = proc.stdout.readline()
            if line.startswith(READY_PREFIX):
                return SimCarrierProcess(proc, line[len(READY_PREFIX):].strip())
