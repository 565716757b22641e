"""The identity store's own migrations (branch ``identity``, version table
``identity_alembic_version``): up, down and up again on an empty database of the
backend under test, beside another component's tables, matching the models."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from common.db import downgrade, make_engine
from common.identity.db import MIGRATIONS_DIR, VERSION_TABLE, Database
from common.identity.models import Base
from tests.conftest import fresh_database

TABLES = {
    "identity_accounts",
    "identity_tokens",
    "identity_feed_tokens",
    "identity_audit",
    VERSION_TABLE,
}


def test_upgrade_downgrade_upgrade_beside_another_component(tmp_path: Path) -> None:
    from sentinel.db import Database as SentinelDatabase

    with fresh_database(tmp_path, "identity") as url:
        sentinel = SentinelDatabase(url)
        sentinel.migrate()
        identity = Database(url)
        identity.migrate()
        engine = identity.engine
        assert set(inspect(engine).get_table_names()) >= TABLES
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn,
                opts={
                    "compare_type": True,
                    "version_table": VERSION_TABLE,
                    "include_name": lambda name, kind, _parent: (
                        kind != "table" or name.startswith("identity_")
                    ),
                },
            )
            assert compare_metadata(context, Base.metadata) == []
        downgrade(engine, MIGRATIONS_DIR, "base")
        left = set(inspect(engine).get_table_names())
        assert not (TABLES - {VERSION_TABLE}) & left
        assert "alerts" in left  # the sentinel's tables are untouched
        identity.migrate()
        assert set(inspect(make_engine(url)).get_table_names()) >= TABLES
        identity.dispose()
        sentinel.dispose()
