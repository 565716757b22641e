"""The whole path through the official clients: an alert becomes a Twilio call
with a keypad menu and a Slack message with buttons (local fake servers on the
real REST paths); the keypad, the buttons and delivery receipts come back
signed with the SDKs' helpers, and forged ones are refused and audited."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from common.clock import FakeClock
from common.identity import AccountKind, Role, open_store
from common.yaml_config import parse_yaml_model
from sentinel.alerting.channels.signatures import TWILIO_SIGNATURE_HEADER, sign_slack, sign_twilio
from sentinel.alerting.models import AuditEvent, GroupState
from sentinel.api import create_app
from sentinel.catalogue import Catalogue
from sentinel.models import Notification, NotificationStatus
from sentinel.service import Sentinel, build_sentinel
from sentinel.settings import SentinelSettings
from tests.alerting_pipeline.conftest import CONFIG, set_state
from tests.fakes.providers import provider_settings
from tests.fakes.slack_server import FakeSlackServer, SlackReply
from tests.fakes.twilio_server import FakeTwilioServer
from tests.identity import account, bearer

PUBLIC = "https://sentinel.example.com"
SIGNING_SECRET = "slack-signing-secret"


@dataclass
class Live:
    sentinel: Sentinel
    http: TestClient
    twilio: FakeTwilioServer
    slack: FakeSlackServer
    clock: FakeClock

    def fire(self, signal: str = "payments.failed", **labels: str) -> None:
        from sentinel.models import AlertState

        labels = labels or {"service": "translator"}
        set_state(self.sentinel.db, self.clock.now(), signal, "P1", AlertState.firing, labels)

    def step(self, seconds: float = 0) -> None:
        """Time passes; the leader's pipeline runs and the outbox is delivered."""
        self.clock.advance(seconds=seconds)
        self.sentinel.notifier.run_once()
        self.sentinel.deliver()

    def notification(self, channel: str) -> Notification:
        with self.sentinel.db.session() as s:
            return s.scalars(
                select(Notification)
                .where(Notification.channel == channel)
                .order_by(Notification.id.desc())
            ).first()

    def twilio_post(self, path: str, params: dict[str, str], forge: bool = False):  # type: ignore[no-untyped-def]
        signature = sign_twilio(self.twilio.auth_token, PUBLIC + path, params)
        if forge:
            signature = signature[:-4] + "AAA="
        return self.http.post(
            path,
            content=urlencode(params),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                TWILIO_SIGNATURE_HEADER: signature,
            },
        )

    def slack_press(self, action_id: str, group_id: int, user: str, age: float = 0):  # type: ignore[no-untyped-def]
        payload = {
            "type": "block_actions",
            "user": {"id": user, "username": user.lower()},
            "actions": [
                {
                    "action_id": action_id,
                    "value": json.dumps(
                        {"notification_id": "x", "fingerprint": f"group:{group_id}"}
                    ),
                }
            ],
        }
        body = urlencode({"payload": json.dumps(payload)}).encode()
        stamp = int(self.clock.now().timestamp() - age)
        headers = sign_slack(SIGNING_SECRET, body, stamp)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        return self.http.post("/api/slack/interactions", content=body, headers=headers)

    def group(self):  # type: ignore[no-untyped-def]
        return self.http.get("/api/groups").json()[0]

    def audits(self, kind: str) -> list[AuditEvent]:
        with self.sentinel.db.session() as s:
            return list(s.scalars(select(AuditEvent).where(AuditEvent.kind == kind)).all())


@pytest.fixture
def live(sentinel_url, database_url, tmp_path, monkeypatch) -> Iterator[Live]:
    monkeypatch.delenv("TWILIO_REGION", raising=False)
    monkeypatch.delenv("TWILIO_EDGE", raising=False)
    config = tmp_path / "alerting.yaml"
    config.write_text(CONFIG)
    clock = FakeClock()
    clock.set(clock.now().replace(year=2026, month=1, day=5, hour=12, minute=0))
    with FakeTwilioServer() as twilio, FakeSlackServer() as slack:
        settings = SentinelSettings(
            database_url=sentinel_url,
            translator_database_url=database_url,
            alerting=config,
            public_url=PUBLIC,
            outbox_file=tmp_path / "outbox.jsonl",
            **provider_settings(twilio, slack),
            slack_signing_secret=SIGNING_SECRET,
            dispatcher_workers=4,
        )
        sentinel = build_sentinel(
            settings,
            clock=clock,
            catalogue=parse_yaml_model("signals: []", Catalogue),
            migrate=False,
        )
        with TestClient(create_app(sentinel, run_loop=False)) as http:
            yield Live(sentinel, http, twilio, slack, clock)
        sentinel.close()


def test_a_page_is_a_call_with_a_keypad_menu_and_a_slack_message(live):
    live.fire()
    live.step(30)
    (call,) = [r for r in live.twilio.requests if r.resource == "Calls"]
    assert call.param("To") == "+15550000001" and call.param("MachineDetection") == "Enable"
    twiml = call.param("Twiml")
    assert '<Gather action="' + PUBLIC + "/api/twilio/voice/" in twiml
    assert 'numDigits="1"' in twiml and "payments failed, service translator" in twiml
    assert call.param("StatusCallback") == PUBLIC + "/api/twilio/status"
    (post,) = live.slack.requests
    assert post.method == "chat.postMessage" and post.params["channel"] == "#ops"
    actions = [b for b in post.params["blocks"] if b["type"] == "actions"][0]["elements"]
    assert [a["action_id"] for a in actions][:3] == [
        "alert_acknowledge",
        "alert_resolve",
        "alert_silence_30m",
    ]
    assert live.notification("voice").status is NotificationStatus.sent


def test_pressing_1_acknowledges_stops_escalation_and_edits_the_slack_message(live):
    live.fire()
    live.step(30)
    key = live.notification("voice").key
    path = f"/api/twilio/voice/{key}/keypress"
    answer = live.twilio_post(path, {"CallSid": "CA1", "Digits": "1", "AccountSid": "AC1"})
    assert answer.status_code == 200 and "Acknowledged" in answer.text
    group = live.group()
    assert group["state"] == "acknowledged" and group["acked_by"] == "alice"
    live.step(10 * 60)
    assert len([r for r in live.twilio.requests if r.resource == "Calls"]) == 1  # no manager
    update = live.slack.requests[-1]
    # chat.update of the message chat.postMessage created (the fake's first ts).
    assert update.method == "chat.update" and update.params["ts"] == "1700000000.000100"
    assert "Acknowledged by alice" in update.params["text"]
    (detail,) = [e for e in live.http.get(f"/api/groups/{group['id']}").json()["audit"]]
    assert detail["kind"] == "acknowledge" and detail["via"] == "phone"


def test_a_forged_keypress_is_refused_audited_and_changes_nothing(live):
    live.fire()
    live.step(30)
    key = live.notification("voice").key
    path = f"/api/twilio/voice/{key}/keypress"
    assert live.twilio_post(path, {"Digits": "2"}, forge=True).status_code == 403
    unsigned = live.http.post(path, data={"Digits": "2"})
    assert unsigned.status_code == 403
    assert live.group()["state"] == "open"
    assert len(live.audits("forged_callback")) == 2


def test_a_slack_button_resolves_and_a_replayed_press_is_refused(live):
    live.fire()
    live.step(30)
    group_id = live.group()["id"]
    stale = live.slack_press("alert_resolve", group_id, "U0BOB", age=6 * 60)
    assert stale.status_code == 403  # outside Slack's five-minute window
    assert live.group()["state"] == "open"
    pressed = live.slack_press("alert_resolve", group_id, "U0BOB")
    assert pressed.status_code == 200 and pressed.json()["state"] == "resolved"
    live.step(1)
    assert live.slack.requests[-1].method == "chat.update"
    assert live.slack.requests[-1].params["text"].startswith("[P1]")
    sms = [r for r in live.twilio.requests if r.resource == "Messages"]
    assert sms and sms[-1].param("Body").startswith("RESOLVED")  # alice was paged: she is told
    audit = live.http.get(f"/api/groups/{group_id}").json()["audit"]
    assert audit[-1]["actor"] == "bob" and audit[-1]["via"] == "slack"


def test_an_undelivered_sms_receipt_turns_into_a_call(live):
    from sentinel.models import AlertState

    set_state(
        live.sentinel.db, live.clock.now(), "queue.lag", "P2", AlertState.firing, {"service": "t"}
    )
    live.step()
    sms = live.notification("sms")
    receipt = {"MessageSid": sms.provider_id, "MessageStatus": "undelivered", "ErrorCode": "30003"}
    assert live.twilio_post("/api/twilio/status", receipt).status_code == 204
    live.step()
    calls = [r for r in live.twilio.requests if r.resource == "Calls"]
    assert len(calls) == 1 and calls[0].param("To") == "+15550000001"
    history = live.http.get(f"/api/groups/{live.group()['id']}").json()["notifications"][0][
        "history"
    ]
    assert [(h["source"], h["status"]) for h in history] == [
        ("send", "queued"),
        ("callback", "undelivered"),
    ]


def test_slack_429_is_retried_after_the_time_slack_asked_for(live):
    live.slack.script(SlackReply.rate_limited("45"))
    live.fire()
    live.step(30)
    slack = live.notification("slack")
    assert slack.status is NotificationStatus.pending
    assert (slack.next_attempt_at - live.clock.now()).total_seconds() >= 45
    live.step(20)
    assert len(live.slack.requests) == 1  # not before Retry-After
    live.step(30)
    assert live.notification("slack").status is NotificationStatus.sent


def test_actions_over_the_api_need_the_token(live):
    live.fire()
    live.step(30)
    group_id = live.group()["id"]
    body = {"by": "alice"}
    ack = f"/api/groups/{group_id}/acknowledge"
    assert live.http.post(ack, json=body, headers={"Authorization": ""}).status_code == 401
    viewer = bearer(account("vic", Role.viewer))
    assert live.http.post(ack, json=body, headers=viewer).status_code == 403
    assert live.http.post(ack, json=body).status_code == 403  # the admin is not alice
    ok = live.http.post(ack, json=body, headers=bearer(account("alice", Role.responder)))
    assert ok.status_code == 200 and ok.json()["state"] == GroupState.acknowledged
    assert ok.json()["acked_by"] == "alice"
    store = open_store()
    trail = [(r.actor, r.status) for r in reversed(store.audit_trail(actor=None))]
    store.dispose()
    assert trail == [(None, 401), ("vic", 403), ("admin", 403), ("alice", 200)]


def test_release_announcements_are_one_slack_message_edited_in_place(live):
    auth = bearer(account("ops-bot", Role.responder, AccountKind.service))
    for state in ("started", "canary", "promoted"):
        answer = live.http.post(
            "/api/announcements",
            json={
                "key": "release:42",
                "title": "translator 1.4.2 by alice",
                "text": f"release {state}",
                "state": state,
            },
            headers=auth,
        )
        assert answer.status_code == 202 and answer.json() == {"notifications": 1}
        live.step()
    methods = [r.method for r in live.slack.requests]
    assert methods == ["chat.postMessage", "chat.update", "chat.update"]
    assert live.slack.requests[-1].params["text"].endswith("release promoted")
    assert {r.params["channel"] for r in live.slack.requests} == {"#releases"}
    unknown = live.http.post(
        "/api/announcements",
        json={"key": "r:1", "title": "t", "text": "x", "state": "started", "to": ["nobody"]},
        headers=auth,
    )
    assert unknown.status_code == 422 and "nobody" in unknown.text


def test_who_is_on_call_and_the_calendar(live):
    (now,) = live.http.get("/api/oncall").json()
    assert now["schedule"] == "primary" and now["person"] == "alice"
    ics = live.http.get("/api/oncall/primary.ics?days=14")
    assert ics.status_code == 200 and ics.text.count("BEGIN:VEVENT") >= 2
    assert live.http.get("/api/oncall/nope.ics").status_code == 404


def test_an_alert_from_alertmanager_pages_through_the_same_schedules(live):
    payload = {
        "version": "4",
        "groupKey": '{}:{alertname="database.down"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "vigil",
        "groupLabels": {"alertname": "database.down"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": [
            {
                "status": "firing",
                "labels": {
                    "alertname": "database.down",
                    "service": "payments",
                    "severity": "critical",
                },
                "annotations": {"summary": "primary database unreachable"},
                "startsAt": "2026-01-05T11:59:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph",
                "fingerprint": "c0ffee",
            }
        ],
    }
    auth = bearer(account("ops-bot", Role.responder, AccountKind.service))
    assert (
        live.http.post("/api/alertmanager/webhook", json=payload, headers=auth).status_code == 200
    )
    live.step(30)
    (call,) = [r for r in live.twilio.requests if r.resource == "Calls"]
    assert call.param("To") == "+15550000001"
    assert "database down, service payments. primary database unreachable." in call.param("Twiml")
