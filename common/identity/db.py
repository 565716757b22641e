"""The identity store's database: one for the whole platform, named by
``VIGIL_IDENTITY_DATABASE_URL`` in every service. It may share a PostgreSQL
database with the components; its migrations keep their own version table."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from common import db as common_db

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSION_TABLE = "identity_alembic_version"


class Database(common_db.Database):
    def __init__(self, url: str, engine: Engine | None = None) -> None:
        super().__init__(url, MIGRATIONS_DIR, engine)
