"""Fixtures of the release gate's tests: the gate's own database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from release_gate.db import Database


@pytest.fixture
def gate_db_url(postgres_database: str | None, database_url: str, tmp_path: Path) -> str:
    """The gate's database: its own SQLite file, or the shared PostgreSQL test database."""
    if postgres_database is not None:
        return database_url
    url = f"sqlite:///{tmp_path / 'gate.db'}"
    db = Database(url)
    db.migrate()
    db.dispose()
    return url


@pytest.fixture
def gate_db(gate_db_url: str) -> Iterator[Database]:
    db = Database(gate_db_url)
    yield db
    db.dispose()
