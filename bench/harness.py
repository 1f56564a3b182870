"""What every benchmark starts with: embedded PostgreSQL and Redis in a
temporary directory, migrated, and an in-process server on them (the
tests' ``Stack``, for its helpers: orgs, channels, spawning processes)."""

from __future__ import annotations

import base64
import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _fernet_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


@contextmanager
def embedded_stack(prefix: str, *, env: dict[str, str] | None = None,
                   server_settings: dict[str, Any] | None = None) -> Iterator[Any]:
    """Yields a started ``tests.support.stack.Stack``; ``env`` is added to
    what its spawned processes get, ``server_settings`` overrides the
    in-process server's settings. Everything is stopped on the way out."""
    from server.adapters.db.engine import migrate
    from launcher.embedded import start_embedded
    from tests.support.stack import Stack

    services = start_embedded(Path(tempfile.mkdtemp(prefix=prefix)), persistent=False)
    stack = None
    try:
        migrate(services.database_url)
        stack = Stack(database_url=services.database_url, redis_url=services.redis_url,
                      service_token=secrets.token_urlsafe(32))  # `batchcalls server` wants 32+ chars
        stack.services = services  # bench/proc_cpu.py reads the Postgres and Redis pids from it
        stack.env = {"DATABASE_URL": services.database_url, "REDIS_URL": services.redis_url,
                     "BATCHCALLS_SERVICE_TOKEN": stack.service_token,
                     # `batchcalls server` refuses to start without one (server/adapters/secrets.py)
                     "BATCHCALLS_SECRETS_KEY": os.environ.get("BATCHCALLS_SECRETS_KEY") or _fernet_key(),
                     # Benchmarks measure the server, not the per-key rate limit (README).
                     "BATCHCALLS_RATE_LIMIT_RPS": "0",
                     **(env or {})}
        stack.start_server(server_settings)
        yield stack
    finally:
        if stack is not None:
            stack.stop()
        services.stop()
