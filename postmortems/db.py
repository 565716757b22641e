"""The postmortems' own database: incidents, postmortems, action items,
timelines, lessons and the audit trail. It may share a database with the
sentinel; its migrations keep their own version table."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import DeclarativeBase

from common import db as common_db
from common.db import naming_metadata


class Base(DeclarativeBase):
    metadata = naming_metadata()


MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class Database(common_db.Database):
    def __init__(self, url: str, engine: Engine | None = None) -> None:
        super().__init__(url, MIGRATIONS_DIR, engine)


def import_all_models() -> None:
    from postmortems import models as _models  # noqa: F401
