"""The console as `python -m dashboards.console` builds it from its settings: over the
sentinel's, the release gate's and postmortems' real databases, the home page shows the
release in flight and the open incident beside the signals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from dashboards.console import ConsoleSettings, build_console
from postmortems.db import Database as PostmortemsDatabase
from postmortems.schemas import IncidentIn
from postmortems.service import Postmortems
from postmortems.settings import PostmortemSettings
from release_gate.db import Database as GateDatabase
from release_gate.models import Release, ReleaseStatus


def _gate_with_a_release_in_flight(url: str) -> None:
    db = GateDatabase(url)
    db.migrate()
    now = datetime.now(UTC)
    with db.session() as s:
        for i, status in enumerate((ReleaseStatus.rolled_back, ReleaseStatus.canary)):
            s.add(
                Release(
                    service="translator",
                    version=f"1.4.{i}",
                    previous_version="1.3.9",
                    author="ci:deploy-pipeline",
                    status=status,
                    started_at=now - timedelta(minutes=30 - 10 * i),
                    heartbeat_at=now,
                )
            )
    db.dispose()


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
    sentinel_url: str, database_url: str, postgres_database: str | None, tmp_path: Any
) -> None:
    gate = database_url if postgres_database else f"sqlite:///{tmp_path / 'gate.db'}"
    pms = database_url if postgres_database else f"sqlite:///{tmp_path / 'pm.db'}"
    _gate_with_a_release_in_flight(gate)
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
    assert 'href="http://pm.example/incidents/' in incidents


def test_without_the_gate_and_postmortems_the_home_says_what_to_configure(
    sentinel_url: str,
) -> None:
    settings = ConsoleSettings(sentinel_database_url=sentinel_url)
    with TestClient(build_console(settings)) as client:
        html = client.get("/").text
    assert "CONSOLE_GATE_DATABASE_URL" in html
    assert "CONSOLE_POSTMORTEMS_DATABASE_URL" in html
