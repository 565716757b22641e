"""Alembic environment of the translator (database: TRANSLATOR_DATABASE_URL)."""

from common.db import run_migrations
from translator.db import Base, import_all_models
from translator.settings import TranslatorSettings

import_all_models()
run_migrations(Base.metadata, lambda: TranslatorSettings().database_url)
