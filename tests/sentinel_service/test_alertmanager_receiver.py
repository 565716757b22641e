"""Alerts from an existing Prometheus through the Alertmanager webhook (v4)."""

from __future__ import annotations

import pytest
import yaml
from fastapi.testclient import TestClient

from common.identity import AccountKind, Role
from common.yaml_config import parse_yaml_model
from sentinel.api import create_app
from sentinel.catalogue import Catalogue
from sentinel.service import build_sentinel
from sentinel.settings import SentinelSettings
from tests.identity import account, bearer

FIRING = {
    "version": "4",
    "groupKey": '{}:{alertname="DiskFull"}',
    "truncatedAlerts": 0,
    "status": "firing",
    "receiver": "sentinel",
    "groupLabels": {"alertname": "DiskFull"},
    "commonLabels": {"alertname": "DiskFull", "severity": "critical"},
    "commonAnnotations": {},
    "externalURL": "http://alertmanager:9093",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "DiskFull", "instance": "db-1", "severity": "critical"},
            "annotations": {"summary": "disk 97% full on db-1", "runbook_url": "https://wiki/disk"},
            "startsAt": "2026-01-05T11:58:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=disk",
            "fingerprint": "a1b2c3d4e5f60718",
        }
    ],
}


@pytest.fixture
def client(sentinel_url, database_url, clock):
    sentinel = build_sentinel(
        SentinelSettings(database_url=sentinel_url, translator_database_url=database_url),
        clock=clock,
        catalogue=parse_yaml_model("signals: []", Catalogue),
        migrate=False,
    )
    client = TestClient(create_app(sentinel, run_loop=False))
    # Alertmanager speaks as a service account of its own, a responder.
    AUTH.update(bearer(account("alertmanager", Role.responder, AccountKind.service)))
    yield client
    sentinel.close()


AUTH: dict[str, str] = {}


def test_firing_then_resolved(client):
    assert client.post("/api/alertmanager/webhook", json=FIRING, headers=AUTH).json() == {
        "opened": 1,
        "updated": 0,
        "resolved": 0,
        "reopened": 0,
    }
    # Alertmanager repeats a notification: the same episode, not a new alert.
    client.post("/api/alertmanager/webhook", json=FIRING, headers=AUTH)
    (alert,) = client.get("/api/alerts").json()
    assert alert["source"] == "alertmanager" and alert["state"] == "firing"
    assert alert["severity"] == "P1" and alert["labels"]["instance"] == "db-1"
    assert alert["summary"] == (
        "[P1] DiskFull FIRING (Prometheus): disk 97% full on db-1 Runbook: https://wiki/disk"
    )
    assert alert["started_at"].startswith("2026-01-05T11:58:00")

    resolved = {
        **FIRING,
        "status": "resolved",
        "alerts": [{**FIRING["alerts"][0], "status": "resolved", "endsAt": "2026-01-05T12:10:00Z"}],
    }
    assert (
        client.post("/api/alertmanager/webhook", json=resolved, headers=AUTH).json()["resolved"]
        == 1
    )
    detail = client.get(f"/api/alerts/{alert['id']}").json()
    assert detail["state"] == "resolved"
    assert detail["resolved_at"].startswith("2026-01-05T12:10:00")
    assert [t["to_state"] for t in detail["transitions"]] == ["firing", "resolved"]
    assert detail["labels"]["signal"] == "DiskFull"  # routes and inhibition read it


def test_a_re_fire_soon_after_resolving_reopens_the_same_alert(client, clock):
    resolved = {
        **FIRING,
        "status": "resolved",
        "alerts": [{**FIRING["alerts"][0], "status": "resolved", "endsAt": "2026-01-05T12:00:00Z"}],
    }
    client.post("/api/alertmanager/webhook", json=FIRING, headers=AUTH)
    client.post("/api/alertmanager/webhook", json=resolved, headers=AUTH)
    clock.advance(minutes=5)
    assert (
        client.post("/api/alertmanager/webhook", json=FIRING, headers=AUTH).json()["reopened"] == 1
    )
    (alert,) = client.get("/api/alerts").json()
    detail = client.get(f"/api/alerts/{alert['id']}").json()
    assert [t["to_state"] for t in detail["transitions"]] == ["firing", "resolved", "firing"]
    clock.advance(hours=1)
    client.post("/api/alertmanager/webhook", json=resolved, headers=AUTH)
    clock.advance(hours=1)
    client.post("/api/alertmanager/webhook", json=FIRING, headers=AUTH)
    assert len(client.get("/api/alerts").json()) == 2  # long after: a new episode


def test_forged_or_malformed_calls(client):
    none = {"Authorization": ""}
    assert client.post("/api/alertmanager/webhook", json=FIRING, headers=none).status_code == 401
    forged = {"Authorization": "Bearer guess-a-token-of-twenty"}
    assert client.post("/api/alertmanager/webhook", json=FIRING, headers=forged).status_code == 401
    old = {**FIRING, "version": "3"}
    assert client.post("/api/alertmanager/webhook", json=old, headers=AUTH).status_code == 422
    assert client.get("/api/alerts").json() == []


def _phone_pages(sentinel):  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from sentinel.models import Notification

    with sentinel.db.session() as s:
        return s.scalars(
            select(Notification).where(Notification.channel.in_(("voice", "sms")))
        ).all()


def test_an_alertmanager_alert_pages_without_our_group_wait(client, clock):
    """Alertmanager grouped and waited already: the built-in configuration's critical
    route (group_wait 10 s) pages its alert at the first pipeline run, no later."""
    sentinel = client.app.state.sentinel
    assert sentinel.alerting.routes[0].group_wait_seconds == 10
    assert client.post("/api/alertmanager/webhook", json=FIRING, headers=AUTH).status_code == 200
    sentinel.notifier.run_once()  # same instant: no clock advance
    pages = _phone_pages(sentinel)
    assert sorted(p.channel for p in pages) == ["sms", "voice"]  # a call and an SMS at once
    assert all(p.created_at == clock.now() and "DiskFull" in p.payload["text"] for p in pages)


def test_a_route_can_ask_alertmanager_alerts_to_wait_its_group_wait(
    sentinel_url, database_url, clock, tmp_path
):
    from sentinel.alerting.config import DEFAULT_CONFIG

    config = yaml.safe_load(DEFAULT_CONFIG.read_text())
    assert config["routes"][0]["group_wait_seconds"] == 10
    config["routes"][0]["alertmanager_group_wait"] = True
    text = yaml.safe_dump(config)
    (tmp_path / "alerting.yaml").write_text(text)
    (tmp_path / "schedules.yaml").write_text((DEFAULT_CONFIG.parent / "schedules.yaml").read_text())
    sentinel = build_sentinel(
        SentinelSettings(
            database_url=sentinel_url,
            translator_database_url=database_url,
            alerting=tmp_path / "alerting.yaml",
        ),
        clock=clock,
        catalogue=parse_yaml_model("signals: []", Catalogue),
        migrate=False,
    )
    try:
        api = TestClient(create_app(sentinel, run_loop=False))
        assert api.post("/api/alertmanager/webhook", json=FIRING).status_code == 200
        sentinel.notifier.run_once()
        assert _phone_pages(sentinel) == []
        clock.advance(seconds=10)
        sentinel.notifier.run_once()
        assert sorted(p.channel for p in _phone_pages(sentinel)) == ["sms", "voice"]
    finally:
        sentinel.close()
