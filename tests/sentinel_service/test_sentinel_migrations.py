"""The sentinel's migrations: up, down, up again, and no drift from the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from common.db import downgrade, make_engine, upgrade
from sentinel.db import MIGRATIONS_DIR, Base, import_all_models
from tests.conftest import fresh_database

import_all_models()


def test_sentinel_schema_round_trip(tmp_path):
    with fresh_database(tmp_path, "sentinel_migrations") as url:
        engine = make_engine(url)
        upgrade(engine, MIGRATIONS_DIR)
        tables = set(inspect(engine).get_table_names())
        assert set(Base.metadata.tables) | {"sentinel_alembic_version"} == tables
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"version_table": "sentinel_alembic_version"}
            )
            assert compare_metadata(context, Base.metadata) == []
        downgrade(engine, MIGRATIONS_DIR, "base")
        assert set(inspect(engine).get_table_names()) == {"sentinel_alembic_version"}
        upgrade(engine, MIGRATIONS_DIR)
        assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
        engine.dispose()
