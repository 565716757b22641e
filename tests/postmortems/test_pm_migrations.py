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


def test_existing_incidents_keep_their_titles_people_and_fit_the_platforms(
    tmp_path: Path,
) -> None:
    from sqlalchemy import text

    long = "[P0] [P0] http.error_ratio FIRING: 0.21, expected ≤ 0.05 since 14:02 UTC. " * 3
    with fresh_database(tmp_path, "pm_titles") as url:
        engine = make_engine(url)
        upgrade(engine, MIGRATIONS_DIR, "p0001")
        with engine.begin() as conn:
            for source, title in (("watcher", long), ("web", long), ("release_gate", "short")):
                conn.execute(
                    text(
                        "INSERT INTO pm_incidents (title, severity, status, incident_class,"
                        " service, source, started_at, detected_at, created_at, updated_at)"
                        " VALUES (:title, 'P0', 'open', 'unclassified', 'translator', :source,"
                        " :at, :at, :at, :at)"
                    ),
                    {"title": title, "source": source, "at": "2026-01-05 12:00:00+00:00"},
                )
        upgrade(engine, MIGRATIONS_DIR)
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT source, title, title_author FROM pm_incidents ORDER BY id")
            ).all()
        engine.dispose()
    watcher, web, gate = rows
    assert len(watcher.title) < 80 and watcher.title.endswith("…")
    assert long.startswith(watcher.title.removesuffix("…")) and watcher.title_author is None
    assert (web.title, web.title_author) == (long, "web")  # a person's words, kept
    assert (gate.title, gate.title_author) == ("short", None)
