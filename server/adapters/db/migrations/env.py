"""Alembic environment: runs on the connection handed over by engine.migrate
(which holds the advisory lock), or on DATABASE_URL for alembic's own CLI."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

from server.adapters.db.engine import normalize_url
from server.adapters.db.schema import metadata

config = context.config


def run() -> None:
    conn = config.attributes.get("connection")
    if conn is not None:
        context.configure(connection=conn, target_metadata=metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(normalize_url(os.environ["DATABASE_URL"]))
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()


run()
