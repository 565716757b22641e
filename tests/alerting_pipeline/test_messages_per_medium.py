"""Each medium gets the words it is good at, end to end: real wallet payments
fail in the translator, the sentinel's default ``payments.failed_ratio``
signal fires, and the page goes out through the official twilio and
slack_sdk clients to the local fakes. The SMS is one short line with a link
to the runbook page the sentinel serves; an undelivered SMS becomes a call
that speaks the same facts; Slack carries the whole evidence."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode, urlparse

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from common.clock import FakeClock
from sentinel.alerting.channels.signatures import TWILIO_SIGNATURE_HEADER, sign_twilio
from sentinel.alerting.gsm import septets
from sentinel.alerting.messages import (
    DETAIL_CAP,
    SMS_CAP,
    SMS_GOAL,
    Facts,
    group_words,
    sms_line,
    spoken_line,
)
from sentinel.alerting.models import AlertGroup, GroupState
from sentinel.api import create_app
from sentinel.catalogue import Catalogue, load_catalogue
from sentinel.detectors.spec import DetectorSpec
from sentinel.models import Alert, AlertState, Notification
from sentinel.service import Sentinel, build_sentinel
from sentinel.settings import DEFAULT_CATALOGUE, SentinelSettings
from tests.fakes.providers import provider_settings
from tests.fakes.slack_server import FakeSlackServer, SlackRequest
from tests.fakes.twilio_server import FakeTwilioServer, TwilioRequest
from tests.helpers import add_user

PUBLIC = "https://sentinel.example.com"
RUNBOOK_URL = PUBLIC + "/runbooks/payments.failed_ratio"
SERIES = "payments.failed_ratio{method=wallet}"
# A line of the signal's runbook in the default catalogue: Slack quotes it, an SMS must not.
RUNBOOK_LINE = "compare with the other method to tell our bug from the provider's"

ALERTING = """
people:
  alice: {phone: "+15550000001", slack: U0ALICE}
policies:
  page:
    steps:
      - notify: {people: [alice]}
        channels: [sms, voice]
        wait_minutes: 15
    broadcast: [{channel: slack, to: "#ops"}]
routes:
  - name: everything
    policy: page
    group_by: [signal]
    group_wait_seconds: 0
"""


def _catalogue() -> Catalogue:
    """The default catalogue's payment signals (the others read sources this
    test does not start), the wallet ratio judged by a fixed guard so that a
    handful of payments decide (no history to learn from here)."""
    catalogue = load_catalogue(DEFAULT_CATALOGUE)
    signals = []
    for spec in catalogue.signals:
        if not spec.name.startswith("payments."):
            continue
        if spec.name == "payments.failed_ratio":
            guard = DetectorSpec(kind="ratio", params={"threshold": 0.2, "min_volume": 5})
            spec = spec.model_copy(update={"detector": guard})
        signals.append(spec)
    return Catalogue(signals=signals)


@dataclass
class Rig:
    sentinel: Sentinel
    http: TestClient
    twilio: FakeTwilioServer
    slack: FakeSlackServer
    clock: FakeClock

    def page(self) -> None:
        """One evaluation, then the pipeline and the outbox, as the leader runs them."""
        self.sentinel.cycle()
        self.sentinel.notifier.run_once()
        self.sentinel.deliver()

    def sent(self, resource: str, about: str = "") -> list[TwilioRequest]:
        """Twilio requests whose SMS body or call TwiML mentions ``about``."""
        return [
            r
            for r in self.twilio.requests
            if r.resource == resource and about in (r.param("Body") or r.param("Twiml") or "")
        ]

    def slack_about(self, series: str) -> list[SlackRequest]:
        return [r for r in self.slack.requests if series in r.params["text"]]

    def notification(self, channel: str, about: str) -> Notification:
        with self.sentinel.db.session() as s:
            rows = s.scalars(
                select(Notification)
                .where(Notification.channel == channel)
                .order_by(Notification.id.desc())
            ).all()
            return next(n for n in rows if about in n.payload["text"])

    def twilio_callback(self, params: dict[str, str]) -> int:
        path = "/api/twilio/status"
        signature = sign_twilio(self.twilio.auth_token, PUBLIC + path, params)
        return self.http.post(
            path,
            content=urlencode(params),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                TWILIO_SIGNATURE_HEADER: signature,
            },
        ).status_code


@pytest.fixture
def rig(sentinel_url, database_url, clock, tmp_path, monkeypatch) -> Iterator[Rig]:
    monkeypatch.delenv("TWILIO_REGION", raising=False)
    monkeypatch.delenv("TWILIO_EDGE", raising=False)
    config = tmp_path / "alerting.yaml"
    config.write_text(ALERTING)
    with FakeTwilioServer() as twilio, FakeSlackServer() as slack:
        settings = SentinelSettings(
            database_url=sentinel_url,
            translator_database_url=database_url,
            alerting=config,
            public_url=PUBLIC,
            outbox_file=tmp_path / "outbox.jsonl",
            **provider_settings(twilio, slack),
            replica="replica-a",
        )
        sentinel = build_sentinel(settings, clock=clock, catalogue=_catalogue(), migrate=False)
        with TestClient(create_app(sentinel, run_loop=False)) as http:
            yield Rig(sentinel, http, twilio, slack, clock)
        sentinel.close()


def _pay(api, headers, token: str, times: int) -> None:  # type: ignore[no-untyped-def]
    for _ in range(times):
        api.post(
            "/api/payments/checkout",
            headers=headers,
            json={"plan": "basic", "method": "wallet", "token": token},
        )


@pytest.fixture
def wallet_fault(rig, svc, api) -> Rig:
    """Wallet payments start failing: 4 of 8 in the window, against a 20% guard."""
    _, headers = add_user(svc, "payer@example.com")
    _pay(api, headers, "wallet_ok", 4)
    rig.clock.advance(seconds=30)
    rig.page()
    assert rig.twilio.requests == []  # healthy: nobody is paged
    _pay(api, headers, "wallet_auth_failed", 4)
    rig.clock.advance(seconds=30)
    rig.page()
    return rig


def test_the_sms_is_one_short_line_with_the_facts_and_the_runbook_link(wallet_fault):
    (sms,) = wallet_fault.sent("Messages", "payments.failed_ratio")
    body = sms.param("Body") or ""
    assert sms.param("To") == "+15550000001"
    assert "\n" not in body
    assert body == ("[P1] payments.failed_ratio{method=wallet} 0.5, expected <= 0.2 " + RUNBOOK_URL)
    assert RUNBOOK_LINE not in body and "Runbook:" not in body
    count = septets(body)
    assert count is not None and count <= SMS_GOAL  # one GSM-7 segment


def test_the_runbook_link_opens_the_signals_runbook_page(wallet_fault):
    page = wallet_fault.http.get(urlparse(RUNBOOK_URL).path)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "<h1>payments.failed_ratio</h1>" in html
    assert "compare with the other method to tell our bug from the provider&#x27;s" in html
    assert ">P1<" in html and "Share of payments that failed" in html
    assert 'href="/api/signals/payments.failed_ratio"' in html
    assert re.search(r"<td>method=wallet</td><td>firing</td><td>0\.5</td>", html)
    assert "<script" not in html and "http" not in html.split("</style>")[1]  # nothing external


def test_an_undelivered_sms_becomes_a_call_that_speaks_the_same_facts(wallet_fault):
    rig = wallet_fault
    sid = rig.notification("sms", "payments.failed_ratio").provider_id
    assert sid
    assert rig.twilio_callback({"MessageSid": sid, "MessageStatus": "undelivered"}) == 204
    rig.sentinel.deliver()
    (call,) = rig.sent("Calls", "payments failed ratio")
    twiml = call.param("Twiml") or ""
    said = " ".join(re.findall(r"<Say>(.*?)</Say>", twiml))
    assert said.startswith(
        "Priority 1 alert. payments failed ratio, method wallet. "
        "Value 50 percent, expected at most 20 percent."
    )
    assert "Press 1 to acknowledge" in said and "<Gather" in twiml
    assert "http" not in said and "runbooks" not in said and "{" not in said


def test_slack_carries_the_whole_evidence_and_the_runbook(wallet_fault):
    (post,) = wallet_fault.slack_about(SERIES)
    assert post.method == "chat.postMessage" and post.params["channel"] == "#ops"
    section = post.params["blocks"][0]["text"]["text"]
    assert "*payments.failed_ratio{method=wallet}* is *firing* since" in section
    assert "Value *0.5*, expected ≤ 0.2 (out of 8)" in section
    assert re.search(r"Detector \*ratio\*: ratio 0.5 above 0.2\b.+", section)
    assert "Recent samples (oldest first): 0, 0.5" in section
    assert f"*Runbook*: <{RUNBOOK_URL}|payments.failed_ratio>" in section
    assert RUNBOOK_LINE in section
    buttons = [b for b in post.params["blocks"] if b["type"] == "actions"][0]["elements"]
    assert [b["text"]["text"] for b in buttons] == [
        "Acknowledge",
        "Resolve",
        "Silence 30m",
        "Open",
        "Runbook",
    ]
    assert buttons[-1]["url"] == RUNBOOK_URL


def test_the_stored_summary_stays_the_full_account(wallet_fault):
    alerts = wallet_fault.http.get("/api/alerts", params={"signal": "payments.failed_ratio"})
    (alert,) = alerts.json()
    assert alert["summary"].startswith("[P1] payments.failed_ratio{method=wallet} FIRING: 0.5")
    assert "Runbook: A payment method fails more often" in alert["summary"]


def test_an_unknown_signal_has_no_runbook_page(rig):
    assert rig.http.get("/runbooks/no.such.signal").status_code == 404
    page = rig.http.get("/runbooks/payments.failed")
    assert page.status_code == 200 and "grep &#x27;event=payment.recorded&#x27;" in page.text


def test_alertmanager_alerts_link_their_own_runbook_url(rig):
    payload = {
        "version": "4",
        "groupKey": '{}:{alertname="DiskFull"}',
        "status": "firing",
        "receiver": "vigil",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "DiskFull", "instance": "node-1", "severity": "critical"},
                "annotations": {
                    "summary": "disk / is 97% full",
                    "runbook_url": "https://wiki.example.com/runbooks/disk-full",
                },
                "startsAt": "2026-01-05T11:59:00Z",
                "fingerprint": "d15c",
            }
        ],
    }
    assert rig.http.post("/api/alertmanager/webhook", json=payload).status_code == 200
    rig.sentinel.notifier.run_once()
    rig.sentinel.deliver()
    (sms,) = rig.sent("Messages")
    assert sms.param("Body") == (
        "[P1] DiskFull{instance=node-1} FIRING: disk / is 97% full "
        "https://wiki.example.com/runbooks/disk-full"
    )


# ------------------------------------------------- the line's shape, case by case


def _facts(**changes) -> Facts:  # type: ignore[no-untyped-def]
    base = {
        "severity": "P1",
        "name": "http.error_ratio_by_route",
        "labels": {"route": "/api/jobs"},
        "state": AlertState.firing,
        "value": 0.213,
        "unit": "ratio",
        "lower": None,
        "upper": 0.05,
        "volume": 400.0,
        "reason": "above the prior guard",
        "detector": "ratio",
        "samples": [],
        "started_at": datetime(2026, 1, 5, 12, 3, tzinfo=UTC),
        "note": "",
        "source_url": None,
        "provenance": None,
        "runbook_text": "Find the request ids.",
        "runbook_url": PUBLIC + "/runbooks/http.error_ratio_by_route",
    }
    return Facts(**{**base, **changes})


def test_a_band_reads_as_a_range_and_other_alerts_as_a_count():
    line = sms_line(_facts(lower=0.01, upper=0.05), more=3)
    assert line == (
        "[P1] http.error_ratio_by_route{route=/api/jobs} 0.213, expected 0.01-0.05 +3 more "
        + PUBLIC
        + "/runbooks/http.error_ratio_by_route"
    )


def test_long_labels_are_shortened_to_one_segment_and_the_link_stays_whole():
    labels = {"user": "someone.with.a.very.long.address@example.com", "route": "/api/" + "x" * 80}
    line = sms_line(_facts(labels=labels), more=12)
    count = septets(line)
    assert count is not None and count <= SMS_GOAL
    assert line.endswith(" +12 more " + PUBLIC + "/runbooks/http.error_ratio_by_route")
    assert "0.213, expected <= 0.05" in line and "..." in line


def test_no_line_exceeds_the_hard_cap_even_when_one_segment_cannot_hold_it():
    long_url = "https://wiki.example.com/" + "runbooks/" * 16
    line = sms_line(_facts(runbook_url=long_url, name="a." + "b" * 120, labels={}))
    assert len(line) <= SMS_CAP and line.endswith(long_url)
    cyrillic = sms_line(_facts(labels={"user": "Пользователь-с-длинным-именем" * 4}))
    assert len(cyrillic) <= SMS_CAP and septets(cyrillic) is None  # UCS-2 anyway


def test_a_signal_without_data_says_since_when():
    f = _facts(state=AlertState.no_data, value=None, upper=None)
    assert sms_line(f).startswith(
        "[P1] http.error_ratio_by_route{route=/api/jobs} NO DATA since 12:03 UTC https://"
    )
    assert "No data since 12:03 UTC." in spoken_line(f)


def test_units_and_routes_are_spoken_as_words():
    f = _facts(name="queue.lag_seconds", labels={"queue": "x"}, unit="s", value=912, upper=600)
    assert spoken_line(f, more=1) == (
        "Priority 1 alert. queue lag seconds, queue x. "
        "Value 912 seconds, expected at most 600 seconds. And 1 more alert in this group."
    )
    assert "api jobs" in spoken_line(_facts())


def test_the_resolved_notice_is_short_too(wallet_fault, svc, api):
    _, headers = add_user(svc, "recovered@example.com")
    _pay(api, headers, "wallet_ok", 24)  # 4 failed of 32: 12%, under the guard again
    wallet_fault.clock.advance(seconds=30)
    wallet_fault.page()
    *_, resolved = wallet_fault.sent("Messages", SERIES)
    assert resolved.param("Body") == (
        "RESOLVED [P1] payments.failed_ratio{method=wallet}. No action needed."
    )
    update = wallet_fault.slack_about(SERIES)[-1]
    assert update.method == "chat.update"
    assert "*Resolved*: `payments.failed_ratio{method=wallet}`" in update.params["text"]


def test_a_big_group_keeps_slack_within_one_block_and_the_runbook_link():
    opened = datetime(2026, 1, 5, 12, 3, tzinfo=UTC)
    group = AlertGroup(
        id=7, key="k", route="critical", policy="phone", labels={"service": "translator"},
        severity="P1", state=GroupState.open, opened_at=opened, updated_at=opened,
        reopened=0, acked_by=None,
    )  # fmt: skip
    alerts = [
        Alert(
            id=i,
            fingerprint=f"fp{i}",
            signal="http.error_ratio_by_route",
            series=f'route="/api/{"x" * 150}{i}"',
            labels={},
            severity="P1",
            source="sentinel",
            state=AlertState.firing,
            summary="",
            value=0.3,
            runbook="Find the request ids.\n" * 200,
            started_at=opened,
            updated_at=opened,
            evidence={
                "value": 0.3,
                "upper": 0.05,
                "unit": "ratio",
                "reason": "above 5%",
                "samples": [0.01] * 10,
                "detector": {"kind": "ratio"},
            },
        )  # fmt: skip
        for i in range(40)
    ]
    words = group_words(group, alerts, alerts, {}, PUBLIC)
    assert len(words.detail) <= DETAIL_CAP
    assert f"*Runbook*: <{PUBLIC}/runbooks/http.error_ratio_by_route|" in words.detail
    assert "39 more firing in this group" in words.detail
    assert words.text.endswith(" +39 more " + PUBLIC + "/runbooks/http.error_ratio_by_route")
    count = septets(words.text)
    assert count is not None and count <= SMS_GOAL
