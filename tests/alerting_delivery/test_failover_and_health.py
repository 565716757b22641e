"""A failing channel shows: the failover route takes its pages after N
minutes (one page now and then still probes the channel), and the sentinel's
/api/health and /metrics say which channel fails, what is stuck, and when the
evaluation loop or the database is away."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from common.db import make_engine
from common.identity import open_store
from sentinel.alerting.dispatcher import Dispatcher, Failover
from sentinel.alerting.outbox import RetryPolicy, enqueue
from sentinel.api import create_app
from sentinel.models import DeliveryAttempt, NotificationStatus
from sentinel.service import build_sentinel
from sentinel.settings import SentinelSettings
from tests.alerting_delivery.conftest import Provider
from tests.alerting_pipeline.conftest import Rig


def _queue(rig: Rig, *keys: str) -> None:
    with rig.db.session() as s:
        for key in keys:
            enqueue(s, key, "sms", "+15550000001", {"text": f"[P1] {key}"}, rig.clock.now())


def test_after_n_minutes_of_failure_the_failover_route_carries_the_pages(rig: Rig) -> None:
    twilio, gateway = Provider("twilio"), Provider("gateway")
    twilio.up = False
    dispatcher = Dispatcher(
        rig.db,
        {"sms": twilio},
        rig.clock,
        RetryPolicy(max_attempts=100, backoff_seconds=5, max_backoff_seconds=5),
        failover=Failover(
            send=gateway,
            channels=frozenset({"sms"}),
            after=timedelta(minutes=2),
            probe_every=timedelta(seconds=30),
        ),
    )
    _queue(rig, "early")
    dispatcher.run_once()
    assert gateway.sent == []  # one failure is not an outage
    rig.clock.advance(minutes=2, seconds=1)
    _queue(rig, "a", "b", "c")
    dispatcher._health_read = 0.0  # read the channel's health now, not a second from now
    dispatcher.run_once()
    # Two minutes failing: one page probes Twilio, the rest go by the gateway.
    assert twilio.tries == 2 and len(gateway.sent) == 3
    assert {i.recipient for i in gateway.sent} == {"+15550000001"}
    with rig.db.session() as s:
        notes = s.scalars(select(DeliveryAttempt.error).where(DeliveryAttempt.ok)).all()
    assert notes and all(n.startswith("via failover") for n in notes)
    # Twilio is back: the next probe (the page that probed before) goes through
    # and ends the failover; a new page goes by Twilio again.
    twilio.up = True
    dispatcher._probed = {k: v - 31 for k, v in dispatcher._probed.items()}  # 30 s on
    rig.clock.advance(seconds=31)
    dispatcher.run_once()
    assert len(twilio.sent) == 1 and len(gateway.sent) == 3
    _queue(rig, "d")
    dispatcher._health_read = 0.0
    dispatcher.run_once()
    assert [i.key for i in twilio.sent] == ["early", "d"] and len(gateway.sent) == 3
    assert {n.status for n in rig.notifications()} == {NotificationStatus.sent}


@pytest.fixture
def sentinel(sentinel_url, database_url, clock):  # type: ignore[no-untyped-def]
    s = build_sentinel(
        SentinelSettings(
            database_url=sentinel_url, translator_database_url=database_url, replica="a"
        ),
        clock=clock,
        migrate=False,
    )
    yield s
    s.close()


@pytest.fixture
def identity():  # type: ignore[no-untyped-def]
    """The platform's store, closed after the test (the apps here never start)."""
    store = open_store()
    yield store
    store.dispose()


def _health(sentinel, identity, loops_started=True):  # type: ignore[no-untyped-def]
    app = create_app(sentinel, run_loop=False, identity=identity)
    if loops_started:
        app.state.loops_started_at = sentinel.clock.now()
    return app, TestClient(app)


def test_health_is_honest_about_a_failing_channel_and_a_stuck_page(
    sentinel, clock, identity
) -> None:
    twilio = Provider("twilio")
    twilio.up = False
    app, client = _health(sentinel, identity)
    sentinel.last_cycle_ok_at = clock.now()
    sentinel.dispatcher.last_ok_at = clock.now()
    assert client.get("/api/health").status_code == 200
    dispatcher = Dispatcher(sentinel.db, {"sms": twilio}, clock, RetryPolicy(max_attempts=10))
    with sentinel.db.session() as s:
        enqueue(s, "p1", "sms", "+15550000001", {"text": "[P1] down"}, clock.now())
    for _ in range(3):
        dispatcher.run_once()
        clock.advance(seconds=20)
    sentinel.last_cycle_ok_at = sentinel.dispatcher.last_ok_at = clock.now()
    r = client.get("/api/health")
    assert r.status_code == 503 and r.json()["status"] == "degraded"
    (reason,) = r.json()["reasons"]
    assert reason.startswith("channel sms: failing for 60 s (3 failures in a row: twilio 500")
    metrics = client.get("/metrics").text
    assert 'sentinel_channel_failing{channel="sms"} 1.0' in metrics
    assert 'sentinel_channel_failing_seconds{channel="sms"} 60.0' in metrics
    # Its next try (8 s after the third, at 40 s) is due and nothing sends it (the
    # dispatcher is gone): that shows too.
    clock.advance(seconds=90)
    sentinel.last_cycle_ok_at = sentinel.dispatcher.last_ok_at = clock.now()
    reasons = client.get("/api/health").json()["reasons"]
    assert "delivery: 1 page(s) due and not sent, the oldest for 102 s" in reasons
    assert "sentinel_notifications_oldest_due_seconds 102.0" in client.get("/metrics").text
    twilio.up = True
    dispatcher.run_once()
    assert client.get("/api/health").status_code == 200


def test_health_says_when_the_evaluation_loop_keeps_failing(sentinel, clock, identity) -> None:
    app, client = _health(sentinel, identity)
    sentinel.run_cycle()
    sentinel.dispatcher.last_ok_at = clock.now()
    assert client.get("/api/health").status_code == 200
    real = sentinel.db.engine
    dead = make_engine("postgresql://127.0.0.1:1/nothing")  # refused at once
    sentinel.db.engine = dead
    sentinel.db.sessions.configure(bind=dead)
    failures = 0
    for _ in range(21):  # 21 s of a database outage, one cycle a second
        clock.advance(seconds=1)
        with pytest.raises(Exception):  # noqa: B017  (whatever the driver raises)
            sentinel.run_cycle()
        failures += 1
    r = client.get("/api/health")
    assert r.status_code == 503
    body = r.json()
    assert body["checks"]["database"]["status"] == "unreachable"
    assert body["reasons"][0].startswith("database: OperationalError")
    # The database is back; the loop has not caught up yet.
    sentinel.db.engine = real
    sentinel.db.sessions.configure(bind=real)
    clock.advance(seconds=10)
    sentinel.dispatcher.last_ok_at = clock.now()
    reasons = client.get("/api/health").json()["reasons"]
    assert reasons == [
        f"evaluation: no successful cycle for 31 s ({failures} failed in a row: "
        + sentinel.last_cycle_error
        + ")"
    ]
    sentinel.run_cycle()
    assert client.get("/api/health").status_code == 200
    dead.dispose()


def test_a_replica_without_loops_is_judged_on_its_database_only(sentinel, clock, identity) -> None:
    _, client = _health(sentinel, identity, loops_started=False)
    clock.advance(hours=1)
    body = client.get("/api/health").json()
    assert body["status"] == "healthy" and "evaluation" not in body["checks"]
