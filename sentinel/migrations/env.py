"""Alembic environment of the sentinel (database: SENTINEL_DATABASE_URL). Its
own version table lets it share a database with the translator."""

from common.db import run_migrations
from sentinel.db import Base, import_all_models
from sentinel.settings import SentinelSettings

import_all_models()
run_migrations(
    Base.metadata, lambda: SentinelSettings().database_url, version_table="sentinel_alembic_version"
)
