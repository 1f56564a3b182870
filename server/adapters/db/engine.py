"""Database engine and migrations.

Migrations run under a Postgres advisory lock, so several replicas starting
at once migrate exactly once and the others wait, then find nothing to do.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
#: Arbitrary constant: the advisory lock key of "batchcalls migrate".
MIGRATION_LOCK_KEY = 0x6261746368  # "batch"


def normalize_url(url: str) -> str:
    """Accept postgres:// and postgresql:// and use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_async_engine(url: str, pool_size: int = 40, *, connect_timeout: float = 0,
                      statement_timeout: float = 0) -> AsyncEngine:
    """The server's runtime engine. ``connect_timeout`` (psycopg, seconds)
    and ``statement_timeout`` (Postgres, seconds, set on every connection
    of this engine only: ``migrate`` builds its own engine, so a long
    migration is never cut); 0 = none."""
    connect_args: dict[str, object] = {}
    if connect_timeout > 0:
        connect_args["connect_timeout"] = max(1, round(connect_timeout))
    if statement_timeout > 0:
        connect_args["options"] = f"-c statement_timeout={round(statement_timeout * 1000)}"
    return create_async_engine(
        normalize_url(url), pool_size=pool_size, max_overflow=20, pool_recycle=1800,
        connect_args=connect_args,
        # Statement parameters (passwords, numbers) never in logs or error
        # messages (docs/design.md §7).
        hide_parameters=True,
    )


def migrate(url: str) -> None:
    """Bring the schema to the newest revision (idempotent, replica-safe)."""
    from alembic import command
    from alembic.config import Config

    engine = create_engine(normalize_url(url))
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
        try:
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            conn.commit()
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})
            conn.commit()
    engine.dispose()
