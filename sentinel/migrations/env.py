"""Alembic environment: the engine comes from the caller (``Database.migrate``)
or, for the alembic CLI, from SENTINEL_DATABASE_URL."""

from __future__ import annotations

from alembic import context

from common.db import is_sqlite, make_engine
from sentinel.db import Base, import_all_models

import_all_models()
config = context.config


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        from sentinel.settings import SentinelSettings

        engine = make_engine(SentinelSettings().database_url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=is_sqlite(engine),
            # Its own version table, so the sentinel can share a database with others.
            version_table="sentinel_alembic_version",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
