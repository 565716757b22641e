"""The postmortems' migrations: up, down, up again, and no drift from the models."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from common.db import downgrade, make_engine, upgrade
from postmortems.db import MIGRATIONS_DIR, Base, import_all_models
from tests.conftest import fresh_database

import_all_models()
VERSION_TABLE = "postmortem_alembic_version"


def test_postmortems_schema_round_trip(tmp_path: Path) -> None:
    with fresh_database(tmp_path, "pm_migrations") as url:
        engine = make_engine(url)
        upgrade(engine, MIGRATIONS_DIR)
        tables = set(inspect(engine).get_table_names())
        assert set(Base.metadata.tables) | {VERSION_TABLE} == tables
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"version_table": VERSION_TABLE, "compare_type": True}
            )
            assert compare_metadata(context, Base.metadata) == []
        downgrade(engine, MIGRATIONS_DIR, "base")
        assert set(inspect(engine).get_table_names()) == {VERSION_TABLE}
        upgrade(engine, MIGRATIONS_DIR)
        assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
        engine.dispose()
