"""The translator's tables share one declarative base; ``Database`` owns the
engine, the session factory and bringing the schema to the latest migration."""

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


def alembic_config(engine: Engine):  # type: ignore[no-untyped-def]
    return common_db.alembic_config(engine, MIGRATIONS_DIR)


def upgrade(engine: Engine, revision: str = "head") -> None:
    common_db.upgrade(engine, MIGRATIONS_DIR, revision)


def downgrade(engine: Engine, revision: str) -> None:
    common_db.downgrade(engine, MIGRATIONS_DIR, revision)


def import_all_models() -> None:
    """Register every table on ``Base.metadata`` (for migrations and tests)."""
    from translator.accounts import models as _accounts  # noqa: F401
    from translator.files import models as _files  # noqa: F401
    from translator.jobs import models as _jobs  # noqa: F401
    from translator.ops import models as _ops  # noqa: F401
    from translator.payments import models as _payments  # noqa: F401
