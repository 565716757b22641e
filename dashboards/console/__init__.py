"""The console: one web face over what the platform records (signals, alerts, pages,
who is on call), server-rendered, every asset served from this package."""

from dashboards.console.app import create_console
from dashboards.console.readers import SentinelReader
from dashboards.console.settings import ConsoleSettings

__all__ = ["ConsoleSettings", "SentinelReader", "build_console", "create_console"]


def build_console(settings: ConsoleSettings | None = None):  # type: ignore[no-untyped-def]
    """The console app over the databases and files the settings name."""
    from sentinel.alerting.config import load_alerting_config
    from sentinel.catalogue.loader import load_catalogue
    from sentinel.db import Database

    settings = settings or ConsoleSettings()
    alerting = load_alerting_config(settings.alerting) if settings.alerting else None
    reader = SentinelReader(
        Database(settings.sentinel_database_url), load_catalogue(settings.catalogue), alerting
    )
    return create_console(reader)
