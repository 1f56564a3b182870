"""Alembic migrations from an empty database, twice, and from replicas
starting together (advisory lock)."""

from __future__ import annotations

import threading

from sqlalchemy import create_engine, inspect, text

from server.adapters.db.engine import migrate, normalize_url


def _fresh_db(embedded, name: str) -> str:
    url = normalize_url(embedded.database_url)
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.replace("/batchcalls?", f"/{name}?")


def _head() -> str:
    """The newest revision of the migrations folder (one head: each new
    migration chains to the previous one)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from server.adapters.db.engine import MIGRATIONS_DIR

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    heads = ScriptDirectory.from_config(cfg).get_heads()
    assert len(heads) == 1, f"several migration heads: {heads}"
    return heads[0]


def test_migrate_from_empty_and_again(embedded):
    url = _fresh_db(embedded, "mig_once")
    migrate(url)
    migrate(url)
    engine = create_engine(url)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert {"organizations", "api_keys", "agents", "phone_numbers", "batches", "batch_counters", "contacts", "attempts", "do_not_call", "alembic_version"} <= tables


def test_replicas_migrating_at_once(embedded):
    url = _fresh_db(embedded, "mig_race")
    errors: list[BaseException] = []

    def run() -> None:
        try:
            migrate(url)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("select version_num from alembic_version")).scalar() == _head()
    engine.dispose()
