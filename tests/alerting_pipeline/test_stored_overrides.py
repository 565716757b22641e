"""An override added while the sentinel runs (the console's form) pages like one written
in the schedule's file: from its start to its end, above the rotation, audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from sentinel.alerting.models import AuditEvent
from sentinel.alerting.overrides import OverrideError, add_override


def _paged(rig):  # type: ignore[no-untyped-def]
    return [who for channel, who, _ in rig.pages() if channel == "voice"]


def test_a_stored_override_pages_its_person_instead_of_the_rotation(rig):
    now = rig.clock.now()  # alice's week
    with rig.db.session() as s:
        add_override(
            s, rig.notifier.config, "primary", "bob", now - timedelta(minutes=5),
            now + timedelta(hours=2), by="alice", via="console", now=now, reason="dentist",
        )  # fmt: skip
    rig.fire("payments.failed", service="translator")
    rig.clock.advance(seconds=30)
    rig.run()
    assert _paged(rig) == ["bob"]
    with rig.db.session() as s:
        (event,) = s.scalars(select(AuditEvent)).all()
    assert (event.kind, event.actor, event.via) == ("override", "alice", "console")
    assert event.detail["person"] == "bob" and event.detail["schedule"] == "primary"


def test_after_the_override_ends_the_rotation_pages_again(rig):
    now = rig.clock.now()
    with rig.db.session() as s:
        add_override(s, rig.notifier.config, "primary", "bob", now, now + timedelta(hours=1),
                     by="alice", via="console", now=now)  # fmt: skip
    rig.clock.advance(hours=2)
    rig.fire("payments.failed", service="translator")
    rig.clock.advance(seconds=30)
    rig.run()
    assert _paged(rig) == ["alice"]


@pytest.mark.parametrize(
    ("schedule", "person", "start", "end", "words"),
    [
        ("nope", "bob", 0, 1, "no schedule 'nope'"),
        ("primary", "mallory", 0, 1, "'mallory' is not among the people"),
        ("primary", "bob", 2, 1, "is not after the start"),
        ("primary", "bob", -3, -1, "ends in the past"),
        ("primary", "bob", 0, 24 * 40, "at most 31 days"),
    ],
)
def test_an_override_that_cannot_be_is_refused_saying_why(rig, schedule, person, start, end, words):
    now = rig.clock.now()
    with pytest.raises(OverrideError, match=words), rig.db.session() as s:
        add_override(s, rig.notifier.config, schedule, person, now + timedelta(hours=start),
                     now + timedelta(hours=end), by="alice", via="console", now=now)  # fmt: skip


def test_the_sentinel_api_answers_with_the_stored_override(sentinel_url, database_url, tmp_path):
    """GET /api/oncall and the iCal export read the same schedule the escalation pages."""
    from fastapi.testclient import TestClient

    from common.clock import FakeClock
    from common.yaml_config import parse_yaml_model
    from sentinel.api import create_app
    from sentinel.catalogue import Catalogue
    from sentinel.service import build_sentinel
    from sentinel.settings import SentinelSettings
    from tests.alerting_pipeline.conftest import CONFIG

    config = tmp_path / "alerting.yaml"
    config.write_text(CONFIG)
    clock = FakeClock()
    clock.set(clock.now().replace(year=2026, month=1, day=5, hour=12, minute=0))
    settings = SentinelSettings(
        database_url=sentinel_url, translator_database_url=database_url, alerting=config
    )
    sentinel = build_sentinel(
        settings, clock=clock, catalogue=parse_yaml_model("signals: []", Catalogue), migrate=False
    )
    try:
        with TestClient(create_app(sentinel, run_loop=False)) as http:
            assert http.get("/api/oncall").json()[0]["person"] == "alice"
            now = clock.now()
            with sentinel.db.session() as s:
                add_override(s, sentinel.alerting, "primary", "bob", now, now + timedelta(hours=3),
                             by="alice", via="console", now=now)  # fmt: skip
            (found,) = http.get("/api/oncall").json()
            assert (found["person"], found["layer"]) == ("bob", "override")
            ics = http.get("/api/oncall/primary.ics?days=1").text
            assert "SUMMARY:On call: bob (override)" in ics
    finally:
        sentinel.close()


def test_sentinel_oncall_in_a_terminal_reads_the_stored_override(monkeypatch, sentinel_url):
    from datetime import datetime

    from click.testing import CliRunner

    from sentinel.alerting.config import load_alerting_config
    from sentinel.cli import main
    from sentinel.db import Database

    # Wednesday 15:00 Moscow time: sysadmin-1's business hours, unless someone takes over
    at = datetime.fromisoformat("2025-01-08T15:00+03:00")
    db = Database(sentinel_url)
    with db.session() as s:
        add_override(s, load_alerting_config(), "ops-primary", "sysadmin-3",
                     at - timedelta(hours=1), at + timedelta(hours=1),
                     by="sysadmin-1", via="console", now=at)  # fmt: skip
    db.dispose()
    monkeypatch.setenv("SENTINEL_DATABASE_URL", sentinel_url)
    out = CliRunner().invoke(main, ["oncall", "--at", at.isoformat()], catch_exceptions=False)
    assert out.output.startswith("ops-primary: sysadmin-3 (override)")
