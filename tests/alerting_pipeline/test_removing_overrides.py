"""Removing an override added while running, through the sentinel's API: one in force
ends now (the rotation pages again, the hours it covered stay true), one still to come
is deleted, one already ended is refused (409); a responder may, a viewer may not."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from common.clock import FakeClock
from common.identity import Role
from common.yaml_config import parse_yaml_model
from sentinel.alerting.models import AuditEvent, ScheduleOverride
from sentinel.alerting.overrides import add_override
from sentinel.api import create_app
from sentinel.catalogue import Catalogue
from sentinel.service import Sentinel, build_sentinel
from sentinel.settings import SentinelSettings
from tests.alerting_pipeline.conftest import CONFIG
from tests.identity import ANONYMOUS, account, bearer


@pytest.fixture
def api(sentinel_url, database_url, tmp_path) -> Iterator[tuple[TestClient, Sentinel]]:  # type: ignore[no-untyped-def]
    config = tmp_path / "alerting.yaml"
    config.write_text(CONFIG)
    clock = FakeClock()
    clock.set(clock.now().replace(year=2026, month=1, day=5, hour=12, minute=0))  # alice's week
    settings = SentinelSettings(
        database_url=sentinel_url, translator_database_url=database_url, alerting=config
    )
    sentinel = build_sentinel(
        settings, clock=clock, catalogue=parse_yaml_model("signals: []", Catalogue), migrate=False
    )
    try:
        with TestClient(create_app(sentinel, run_loop=False)) as http:
            yield http, sentinel
    finally:
        sentinel.close()


def _add(sentinel: Sentinel, start_hours: float, end_hours: float) -> int:
    now = sentinel.clock.now()
    with sentinel.db.session() as s:
        row = add_override(s, sentinel.alerting, "primary", "bob",
                           now + timedelta(hours=start_hours), now + timedelta(hours=end_hours),
                           by="alice", via="console", now=now)  # fmt: skip
        return row.id


def test_removing_an_override_in_force_ends_it_now_and_the_rotation_is_back(api) -> None:
    http, sentinel = api
    added = _add(sentinel, -1, 3)
    assert http.get("/api/oncall").json()[0]["person"] == "bob"
    (listed,) = http.get("/api/overrides").json()
    assert (listed["id"], listed["person"], listed["created_by"]) == (added, "bob", "alice")

    removed = http.delete(f"/api/overrides/{added}")
    assert removed.status_code == 200, removed.text
    body = removed.json()
    assert body["outcome"] == "ended"
    assert body["ends_at"].startswith(sentinel.clock.now().strftime("%Y-%m-%dT%H:%M"))
    assert http.get("/api/oncall").json()[0]["person"] == "alice"
    assert http.get("/api/overrides").json() == []
    # the hour bob was on call stays in the record
    (kept,) = http.get("/api/overrides", params={"active": "false"}).json()
    assert kept["id"] == added
    with sentinel.db.session() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.kind == "override.removed")).one()
    assert (event.actor, event.via, event.detail["outcome"]) == ("admin", "api", "ended")

    again = http.delete(f"/api/overrides/{added}")
    assert again.status_code == 409
    assert f"override {added} already ended" in again.json()["detail"]


def test_removing_an_override_still_to_come_deletes_it(api) -> None:
    http, sentinel = api
    added = _add(sentinel, 24, 30)
    removed = http.delete(f"/api/overrides/{added}")
    assert removed.status_code == 200 and removed.json()["outcome"] == "deleted"
    with sentinel.db.session() as s:
        assert s.scalars(select(ScheduleOverride)).all() == []
    assert http.delete(f"/api/overrides/{added}").status_code == 404


def test_an_unknown_override_is_404_and_only_a_responder_may_remove(api) -> None:
    http, sentinel = api
    missing = http.delete("/api/overrides/4242")
    assert missing.status_code == 404 and missing.json()["detail"] == "no override 4242"
    added = _add(sentinel, 0, 2)
    viewer = bearer(account("carol", Role.viewer))
    assert http.get("/api/overrides", headers=viewer).status_code == 200
    assert http.delete(f"/api/overrides/{added}", headers=viewer).status_code == 403
    assert http.delete(f"/api/overrides/{added}", headers=ANONYMOUS).status_code == 401
    assert http.get("/api/overrides", headers=ANONYMOUS).status_code == 401
    responder = bearer(account("bob", Role.responder))
    refused = http.delete(f"/api/overrides/{added}", params={"by": "alice"}, headers=responder)
    assert refused.status_code == 403  # nobody removes as someone else
    assert http.delete(f"/api/overrides/{added}", headers=responder).status_code == 200
    assert http.get("/api/oncall").json()[0]["person"] == "alice"
