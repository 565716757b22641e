"""The migrations on an empty database: up to head, down to base, up again, and
a migrated schema that matches the models."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, select

from common.db import make_engine
from tests.conftest import fresh_database
from translator.accounts.models import SubscriptionPlan
from translator.db import MIGRATIONS_DIR, Base, downgrade, import_all_models, upgrade

BACKEND = os.environ.get("TEST_DATABASE", "sqlite")
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/test")

import_all_models()
MODEL_TABLES = set(Base.metadata.tables)
# Tables a revision after 0001 creates: 0003_file_chunks (documents in the database).
TABLES_AFTER_0001 = {"stored_files", "file_chunks"}


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    with fresh_database(tmp_path, "migrations") as url:
        eng = make_engine(url)
        yield eng
        eng.dispose()


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def _revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _plans(engine: Engine) -> dict[str, tuple[int, int | None, int | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                SubscriptionPlan.code,
                SubscriptionPlan.price_cents,
                SubscriptionPlan.max_file_size_mb,
                SubscriptionPlan.max_total_upload_size_mb,
            )
        )
        return {code: (price, per_file, total) for code, price, per_file, total in rows}


DEFAULT_PLANS = {"free": (0, 2, 20), "basic": (990, 10, 500), "pro": (2990, 50, None)}


def test_upgrade_downgrade_upgrade_on_an_empty_database(engine: Engine) -> None:
    assert _tables(engine) == set()
    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()

    upgrade(engine)
    assert _tables(engine) == MODEL_TABLES | {"alembic_version"}
    assert _revision(engine) == head
    assert _plans(engine) == DEFAULT_PLANS

    downgrade(engine, "base")
    assert _tables(engine) == {"alembic_version"}
    assert _revision(engine) is None

    upgrade(engine)
    assert _tables(engine) == MODEL_TABLES | {"alembic_version"}
    assert _revision(engine) == head
    assert _plans(engine) == DEFAULT_PLANS


def test_each_revision_downgrades_cleanly(engine: Engine) -> None:
    upgrade(engine)
    downgrade(engine, "0001")
    assert _tables(engine) == (MODEL_TABLES - TABLES_AFTER_0001) | {"alembic_version"}
    assert _plans(engine) == {}  # 0002 owns exactly the default plans
    upgrade(engine)
    assert _plans(engine) == DEFAULT_PLANS


def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    upgrade(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []
