"""Console configuration, from ``CONSOLE_*`` environment variables: where the records
it shows live (the same values the sentinel is started with)."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from sentinel.settings import DEFAULT_CATALOGUE


class ConsoleSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONSOLE_", extra="ignore")

    sentinel_database_url: str = "sqlite:///var/sentinel.db"
    catalogue: Path = DEFAULT_CATALOGUE
    alerting: Path | None = None  # the sentinel's SENTINEL_ALERTING file: who is on call
    gate_database_url: str | None = None  # the release gate's: releases
    postmortems_database_url: str | None = None  # postmortems': open incidents
    postmortems_url: str | None = "http://127.0.0.1:8300"  # postmortems' own pages
    # The sentinel as calendar apps reach it (its SENTINEL_PUBLIC_URL): calendar feed URLs.
    sentinel_url: str = "http://127.0.0.1:8100"
    translator_database_url: str | None = None  # the translator's: its daily/weekly figures
    host: str = "127.0.0.1"
    port: int = 8400
