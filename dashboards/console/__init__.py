"""The console: one web face over what the platform records (signals, alerts, pages,
who is on call), server-rendered, every asset served from this package."""

from dashboards.console.app import create_console
from dashboards.console.readers import SentinelReader
from dashboards.console.releases import ReleaseReader
from dashboards.console.settings import ConsoleSettings

__all__ = ["ConsoleSettings", "ReleaseReader", "SentinelReader", "build_console", "create_console"]


def build_console(settings: ConsoleSettings | None = None, identity=None):  # type: ignore[no-untyped-def]
    """The console app over the databases and files the settings name; its logins are
    the platform's (`identity`, default: the store VIGIL_* names)."""
    from sentinel.alerting.config import load_alerting_config
    from sentinel.catalogue.loader import load_catalogue
    from sentinel.db import Database

    settings = settings or ConsoleSettings()
    alerting = load_alerting_config(settings.alerting) if settings.alerting else None
    reader = SentinelReader(
        Database(settings.sentinel_database_url), load_catalogue(settings.catalogue), alerting
    )
    gate = incidents = pm = translator_db = None
    if settings.gate_database_url:
        from release_gate.db import Database as GateDatabase

        gate = ReleaseReader(GateDatabase(settings.gate_database_url))
    if settings.postmortems_database_url:
        from postmortems.db import Database as PostmortemsDatabase
        from postmortems.service import Postmortems
        from postmortems.settings import PostmortemSettings

        pm = Postmortems(
            PostmortemSettings(
                database_url=settings.postmortems_database_url,
                sentinel_database_url=settings.sentinel_database_url,
                gate_database_url=settings.gate_database_url,
            ),
            PostmortemsDatabase(settings.postmortems_database_url),
        )
        incidents = lambda: pm.list(open_only=True, limit=20)  # noqa: E731
    if settings.translator_database_url:
        from common.db import make_engine

        translator_db = make_engine(settings.translator_database_url, read_only=True)
    from common.identity import open_store

    return create_console(
        reader,
        identity or open_store(announce=True),
        gate=gate,
        incidents=incidents,
        postmortems_url=settings.postmortems_url,
        sentinel_url=settings.sentinel_url,
        postmortems=pm,
        translator_db=translator_db,
    )
