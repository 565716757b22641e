"""Alembic environment of the identity store (database: VIGIL_IDENTITY_DATABASE_URL).

Every service migrates the store on start, so several may do it at once: on
PostgreSQL an advisory lock taken inside the migration's transaction makes the
others wait and then find the schema current (SQLite's BEGIN IMMEDIATE does the
same there)."""

from alembic import context
from sqlalchemy import text

from common.db import is_sqlite, make_engine
from common.identity.db import VERSION_TABLE
from common.identity.models import Base
from common.identity.settings import IdentitySettings

MIGRATION_LOCK = 0x76696769  # "vigi": any constant the platform uses for nothing else

engine = context.config.attributes.get("engine") or make_engine(
    IdentitySettings().identity_database_url
)
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=is_sqlite(engine),
        compare_type=True,
        version_table=VERSION_TABLE,
    )
    with context.begin_transaction():
        if not is_sqlite(engine):
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        context.run_migrations()
