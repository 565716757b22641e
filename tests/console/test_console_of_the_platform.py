"""The console as `python -m dashboards.console` builds it from its settings: over the
sentinel's, the release gate's and postmortems' real databases, the home page shows the
release in flight and the open incident beside the signals."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from dashboards.console import ConsoleSettings, build_console
from postmortems.db import Database as PostmortemsDatabase
from postmortems.schemas import IncidentIn
from postmortems.service import Postmortems
from postmortems.settings import PostmortemSettings


def _postmortems_with_an_open_incident(url: str, sentinel_url: str) -> None:
    settings = PostmortemSettings(database_url=url, sentinel_database_url=sentinel_url)
    db = PostmortemsDatabase(url)
    db.migrate()
    pm = Postmortems(settings, db, drafter=lambda *_args: [])
    pm.open(
        IncidentIn(title="Wallet payments declined", severity="P1", service="translator"),
        actor="carol",
    )
    db.dispose()


def test_home_shows_the_release_in_flight_and_the_open_incident(
    sentinel_url: str,
    database_url: str,
    postgres_database: str | None,
    tmp_path: Any,
    gate_reader: Any,
) -> None:
    gate = str(gate_reader.db.engine.url.render_as_string(hide_password=False))
    pms = database_url if postgres_database else f"sqlite:///{tmp_path / 'pm.db'}"
    _postmortems_with_an_open_incident(pms, sentinel_url)
    settings = ConsoleSettings(
        sentinel_database_url=sentinel_url,
        gate_database_url=gate,
        postmortems_database_url=pms,
        postmortems_url="http://pm.example",
    )
    with TestClient(build_console(settings)) as client:
        html = client.get("/").text
    releases = html[html.index("<h2>Releases") : html.index("<h2>Open incidents")]
    assert "translator 1.4.1" in releases and "in flight: canary" in releases
    assert "translator 1.4.0" in releases and "rolled_back" in releases
    incidents = html[html.index("<h2>Open incidents") : html.index("<h2>Signals")]
    assert "Wallet payments declined" in incidents
    # the console's own incident page, which links postmortems' for what it does not do
    link = re.search(r'href="(/incidents/\d+)"', incidents)
    assert link is not None
    with TestClient(build_console(settings)) as client:
        page = client.get(link[1]).text
    assert "Wallet payments declined" in page and 'href="http://pm.example/incidents/' in page


def test_without_the_gate_and_postmortems_the_home_says_what_to_configure(
    sentinel_url: str,
) -> None:
    settings = ConsoleSettings(sentinel_database_url=sentinel_url)
    with TestClient(build_console(settings)) as client:
        html = client.get("/").text
    assert "CONSOLE_GATE_DATABASE_URL" in html
    assert "CONSOLE_POSTMORTEMS_DATABASE_URL" in html


def test_the_reports_read_the_translators_database_its_settings_name(
    sentinel_url: str, database_url: str
) -> None:
    settings = ConsoleSettings(
        sentinel_database_url=sentinel_url, translator_database_url=database_url
    )
    with TestClient(build_console(settings)) as client:
        html = client.get("/reports").text
    assert "<th>Figure</th>" in html and "Files created" in html
    assert "CONSOLE_TRANSLATOR_DATABASE_URL" not in html
