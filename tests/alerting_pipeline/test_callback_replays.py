"""A genuine signed callback is acted on once: a captured keypress, button
press or delivery receipt replayed later (on this replica or another) gets 403
and an audit record, and changes nothing."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from common.yaml_config import parse_yaml_model
from sentinel.api import create_app
from sentinel.catalogue import Catalogue
from sentinel.models import DeliveryAttempt
from sentinel.service import build_sentinel
from tests.alerting_pipeline.test_through_the_clients import live  # noqa: F401 - fixture
from tests.identity import ADMIN_HEADERS

TOKEN = ADMIN_HEADERS


def _active_silences(live) -> list[dict]:  # noqa: F811
    return live.http.get("/api/silences", params={"active": "true"}).json()


def test_a_replayed_silence_keypress_does_not_recreate_the_silence(live):  # noqa: F811
    live.fire()
    live.step(30)
    key = live.notification("voice").key
    path = f"/api/twilio/voice/{key}/keypress"
    press = {"CallSid": "CA1", "Digits": "3", "AccountSid": "AC1"}
    answer = live.twilio_post(path, press)
    assert answer.status_code == 200 and "Silenced" in answer.text
    (silence,) = _active_silences(live)
    expired = live.http.delete(f"/api/silences/{silence['id']}", headers=TOKEN)
    assert expired.status_code == 200 and _active_silences(live) == []

    live.clock.advance(seconds=30)
    for _ in range(3):
        replay = live.twilio_post(path, press)
        assert replay.status_code == 403
        assert replay.json()["detail"] == "this callback was already received"
    assert _active_silences(live) == []
    assert len(live.audits("replayed_callback")) == 3


def test_a_replay_is_refused_by_another_replica_too(live):  # noqa: F811
    live.fire()
    live.step(30)
    key = live.notification("voice").key
    path = f"/api/twilio/voice/{key}/keypress"
    press = {"CallSid": "CA9", "Digits": "1", "AccountSid": "AC1"}
    assert live.twilio_post(path, press).status_code == 200

    other = build_sentinel(
        live.sentinel.settings,
        clock=live.clock,
        catalogue=parse_yaml_model("signals: []", Catalogue),
        migrate=False,
    )
    try:
        with TestClient(create_app(other, run_loop=False)) as second:
            original = live.http
            live.http = second
            try:
                assert live.twilio_post(path, press).status_code == 403
            finally:
                live.http = original
    finally:
        other.close()


def test_a_keypress_long_after_the_call_is_refused(live):  # noqa: F811
    live.fire()
    live.step(30)
    key = live.notification("voice").key
    live.clock.advance(timedelta(hours=5))  # no call of that page is still up
    path = f"/api/twilio/voice/{key}/keypress"
    answer = live.twilio_post(path, {"CallSid": "CA2", "Digits": "2", "AccountSid": "AC1"})
    assert answer.status_code == 403
    assert live.group()["state"] == "open"


def test_a_replayed_delivery_receipt_is_recorded_once(live):  # noqa: F811
    from sentinel.models import AlertState
    from tests.alerting_pipeline.conftest import set_state

    set_state(
        live.sentinel.db, live.clock.now(), "queue.lag", "P2", AlertState.firing, {"service": "t"}
    )
    live.step()
    sms = live.notification("sms")
    receipt = {"MessageSid": sms.provider_id, "MessageStatus": "delivered"}
    assert live.twilio_post("/api/twilio/status", receipt).status_code == 204
    assert live.twilio_post("/api/twilio/status", receipt).status_code == 403
    with live.sentinel.db.session() as s:
        callbacks = s.scalar(
            select(func.count())
            .select_from(DeliveryAttempt)
            .where(DeliveryAttempt.source == "callback")
        )
    assert callbacks == 1


def test_a_replayed_slack_press_inside_the_window_is_refused(live):  # noqa: F811
    live.fire()
    live.step(30)
    group_id = live.group()["id"]
    first = live.slack_press("alert_acknowledge", group_id, "U0BOB")
    assert first.status_code == 200 and first.json()["state"] == "acknowledged"
    # Bob's colleague resolves it; a replay of bob's ack must not pull it back.
    resolved = live.http.post(
        f"/api/groups/{group_id}/resolve", json={"by": "admin"}, headers=TOKEN
    )
    assert resolved.status_code == 200
    live.clock.advance(seconds=60)
    replay = live.slack_press("alert_acknowledge", group_id, "U0BOB", age=60)
    assert replay.status_code == 403
    assert live.group()["state"] == "resolved"
    assert len(live.audits("replayed_callback")) == 1
