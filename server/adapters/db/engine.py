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


def make_async_engine(url: str, pool_size: int = 40) -> AsyncEngine:
    return create_async_engine(
        normalize_url(url), pool_size=pool_size, max_overflow=20, pool_recycle=1800
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
