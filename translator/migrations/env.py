"""Alembic environment: the engine comes from the caller (``translator.db.upgrade``)
or, for the alembic CLI, from TRANSLATOR_DATABASE_URL."""

from __future__ import annotations

from alembic import context

from common.db import is_sqlite, make_engine
from translator.db import Base, import_all_models

import_all_models()
target_metadata = Base.metadata
config = context.config


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        from translator.settings import TranslatorSettings

        engine = make_engine(TranslatorSettings().database_url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            # SQLite cannot ALTER most things in place: copy-and-move tables.
            render_as_batch=is_sqlite(engine),
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
