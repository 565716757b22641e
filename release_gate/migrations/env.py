"""Alembic environment of the release gate (database: GATE_DATABASE_URL). Its
own version table lets it share a database with the other components."""

from common.db import run_migrations
from release_gate.db import Base, import_all_models
from release_gate.settings import GateSettings

import_all_models()
run_migrations(
    Base.metadata, lambda: GateSettings().database_url, version_table="gate_alembic_version"
)
