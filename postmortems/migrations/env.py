"""Alembic environment of the postmortems (database: POSTMORTEM_DATABASE_URL).
Its own version table lets it share a database with the other components."""

from common.db import run_migrations
from postmortems.db import Base, import_all_models
from postmortems.settings import PostmortemSettings

import_all_models()
run_migrations(
    Base.metadata,
    lambda: PostmortemSettings().database_url,
    version_table="postmortem_alembic_version",
)
