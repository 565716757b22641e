"""The sentinel end to end: a real translator database, SQL and push signals,
the evaluation cycle under a fake clock, alerts in the API, two replicas."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from common.identity import AccountKind, Role
from common.yaml_config import parse_yaml_model
from sentinel.api import create_app
from sentinel.catalogue import Catalogue
from sentinel.models import AlertState
from sentinel.service import LEADER_LEASE, build_sentinel
from sentinel.settings import SentinelSettings
from tests.helpers import add_user
from tests.identity import account, bearer
from tests.sentinel_service.test_lease import expire

CATALOGUE = """
signals:
  - name: payments.failed
    description: failed payments per method, last 10 minutes
    kind: count
    severity: P1
    interval_seconds: 30
    labels: {team: payments, service: translator}
    runbook: Check the gateway.
    no_data: ok
    source:
      type: sql
      window_seconds: 600
      query: |
        SELECT m.method AS method,
               SUM(CASE WHEN p.status = 'failed' THEN 1 ELSE 0 END) AS value,
               COUNT(p.id) AS volume
        FROM (SELECT 'card' AS method UNION ALL SELECT 'wallet') AS m
        LEFT JOIN payments AS p
          ON p.method = m.method AND p.created_at >= :start AND p.created_at < :end
        GROUP BY m.method
    detector: {kind: static, params: {threshold: 2.5, direction: above}, for_samples: 2}
  - name: batch.heartbeat
    description: a nightly batch pushes its row count
    kind: level
    interval_seconds: 30
    no_data_after_seconds: 120
    labels: {team: data, service: batch}
    source: {type: push, window_seconds: 60}
    detector: {kind: static, params: {threshold: 0, direction: below}}
"""


@pytest.fixture
def sentinel(sentinel_url, database_url, clock):
    catalogue = parse_yaml_model(CATALOGUE, Catalogue)
    settings = SentinelSettings(
        database_url=sentinel_url, translator_database_url=database_url, replica="replica-a"
    )
    s = build_sentinel(settings, clock=clock, catalogue=catalogue, migrate=False)
    yield s
    s.close()


def _pay(api, headers, token, times):
    for _ in range(times):
        api.post(
            "/api/payments/checkout",
            headers=headers,
            json={"plan": "basic", "method": "wallet", "token": token},
        )


def test_failed_payments_fire_an_alert_that_the_api_lists(sentinel, svc, api, clock):
    _, h = add_user(svc, "a@example.com")
    _pay(api, h, "wallet_ok", 2)
    assert sentinel.cycle() == 2  # both signals due on the first cycle
    assert sentinel.is_leader

    _pay(api, h, "wallet_auth_failed", 3)
    clock.advance(seconds=30)
    sentinel.cycle()  # 3 failures > 2.5: anomalous once, pending
    alerts = TestClient(create_app(sentinel, run_loop=False)).get("/api/alerts").json()
    wallet = [a for a in alerts if a["signal"] == "payments.failed"]
    assert [(a["state"], a["labels"]["method"]) for a in wallet] == [("pending", "wallet")]

    clock.advance(seconds=30)
    sentinel.cycle()  # twice in a row: firing
    client = TestClient(create_app(sentinel, run_loop=False))
    firing = client.get("/api/alerts", params={"state": "firing"}).json()
    assert len(firing) == 1
    alert = firing[0]
    assert alert["summary"].startswith("[P1] payments.failed{method=wallet} FIRING: 3")
    assert "Runbook: Check the gateway." in alert["summary"]
    assert alert["started_at"] < alert["firing_at"]
    detail = client.get(f"/api/alerts/{alert['id']}").json()
    assert [t["to_state"] for t in detail["transitions"]] == ["pending", "firing"]
    assert detail["evidence"]["value"] == 3 and detail["evidence"]["volume"] == 5
    assert detail["evidence"]["detector"]["kind"] == "static"

    clock.advance(minutes=11)  # the failures leave the 10-minute window
    sentinel.cycle()
    assert (
        client.get("/api/alerts", params={"active": True, "signal": "payments.failed"}).json() == []
    )
    signal = client.get("/api/signals/payments.failed").json()
    assert {s["labels"]["method"]: s["last_value"] for s in signal["series"]} == {
        "card": 0,
        "wallet": 0,
    }


def test_missing_push_data_becomes_a_no_data_alert_then_recovers(sentinel, clock):
    client = TestClient(create_app(sentinel, run_loop=False))
    assert client.post("/api/push/batch.heartbeat", json={"value": 120}).status_code == 202
    sentinel.cycle()
    for _ in range(5):  # 150 s without pushes, more than no_data_after_seconds
        clock.advance(seconds=30)
        sentinel.cycle()
    states = [(a["signal"], a["state"]) for a in client.get("/api/alerts").json()]
    assert ("batch.heartbeat", "no_data") in states
    assert client.post("/api/push/batch.heartbeat", json={"value": 5}).status_code == 202
    clock.advance(seconds=30)
    sentinel.cycle()
    heartbeat = [a for a in client.get("/api/alerts").json() if a["signal"] == "batch.heartbeat"]
    assert heartbeat[0]["state"] == "resolved"


def test_a_source_down_from_the_start_does_not_leave_a_phantom_series(sentinel, clock):
    """Before the source ever answered, its no-data stands as one unlabelled series; when
    it answers with its own series, that alert resolves and does not come back."""
    client = TestClient(create_app(sentinel, run_loop=False))
    for _ in range(6):  # 150 s without a push, past no_data_after_seconds
        sentinel.cycle()
        clock.advance(seconds=30)
    assert sentinel.book.state_of("batch.heartbeat", "") is AlertState.no_data
    body = {"value": 5, "labels": {"job": "nightly"}}
    for _ in range(3):
        assert client.post("/api/push/batch.heartbeat", json=body).status_code == 202
        sentinel.cycle()
        clock.advance(seconds=30)
    assert sentinel.book.state_of("batch.heartbeat", "") is None
    (phantom,) = [
        a
        for a in client.get("/api/alerts").json()
        if a["labels"].get("job") is None and a["signal"] == "batch.heartbeat"
    ]
    assert phantom["state"] == "resolved"
    assert list(sentinel.evaluator.series["batch.heartbeat"]) == ['job="nightly"']


def test_push_validation(sentinel):
    client = TestClient(create_app(sentinel, run_loop=False))
    assert client.post("/api/push/nope", json={"value": 1}).status_code == 404
    assert client.post("/api/push/payments.failed", json={"value": 1}).status_code == 409
    assert client.post("/api/push/batch.heartbeat", json={"value": "x"}).status_code == 422


def test_push_needs_a_responders_bearer_token(sentinel):
    token = account("pusher", Role.responder, AccountKind.service)
    client = TestClient(create_app(sentinel, run_loop=False))
    del client.headers["Authorization"]
    push = "/api/push/batch.heartbeat"
    assert client.post(push, json={"value": 1}).status_code == 401
    # The token alone, without "Bearer ", is refused: no guessing at the scheme.
    assert client.post(push, json={"value": 1}, headers={"Authorization": token}).status_code == 401
    viewer = bearer(account("vic", Role.viewer))
    assert client.post(push, json={"value": 1}, headers=viewer).status_code == 403
    assert client.post(push, json={"value": 1}, headers=bearer(token)).status_code == 202


def test_only_the_leader_evaluates_and_a_standby_takes_over(
    sentinel, sentinel_url, database_url, clock
):
    standby = build_sentinel(
        SentinelSettings(
            database_url=sentinel_url, translator_database_url=database_url, replica="replica-b"
        ),
        clock=clock,
        catalogue=sentinel.catalogue,
        migrate=False,
    )
    assert sentinel.cycle() == 2
    assert standby.cycle() == 0 and not standby.is_leader
    # replica-a stops renewing (crashed): once its lease ran out, b takes over.
    expire(sentinel.db, LEADER_LEASE)
    assert standby.cycle() == 2 and standby.is_leader
    assert sentinel.cycle() == 0 and not sentinel.is_leader
    health = TestClient(create_app(standby, run_loop=False)).get("/api/health").json()
    assert health["leader"] is True and health["replica"] == "replica-b"
    standby.close()


def test_new_leader_warms_detectors_from_history(sentinel, svc, api, clock):
    _, h = add_user(svc, "a@example.com")
    for _ in range(4):
        sentinel.cycle()
        clock.advance(seconds=30)
    sentinel.step_down()
    sentinel.cycle()  # leads again: replays the stored samples first
    state = sentinel.evaluator.series["payments.failed"]['method="wallet"']
    assert len(state.recent) == 5 and state.last_data_t is not None
