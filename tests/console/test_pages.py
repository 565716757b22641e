"""The console's pages over a sentinel database holding two hours of a payment signal,
a firing alert and its pages: what an on-call engineer opening the console sees."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dashboards.console import SentinelReader, create_console
from sentinel.alerting.config import load_alerting_config
from sentinel.alerting.models import AlertGroup, GroupState
from sentinel.catalogue.loader import load_catalogue
from sentinel.db import Database
from sentinel.history import HistoryStore, Row
from sentinel.models import (
    Alert,
    AlertState,
    DeliveryAttempt,
    Notification,
    NotificationStatus,
)
from sentinel.settings import DEFAULT_CATALOGUE

NOW = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)  # a Wednesday, office hours
EXAMPLES = Path(__file__).resolve().parents[2] / "sentinel" / "alerting" / "examples"
WALLET = "method=wallet"


@pytest.fixture
def seeded(sentinel_url: str):
    db = Database(sentinel_url)
    store = HistoryStore(db)
    rows = []
    for i in range(2 * 3600 // 15):
        t = NOW - timedelta(hours=2) + timedelta(seconds=15 * i)
        broken = t >= NOW - timedelta(minutes=20)
        rows.append(Row("payments.failed_ratio", WALLET, t, 0.7 if broken else 0.01, 40.0))
        rows.append(Row("payments.failed_ratio", "method=card", t, 0.01, 120.0))
    store.append(rows)
    with db.session() as s:
        group = AlertGroup(
            key="payments-wallet",
            route="business",
            policy="page-by-phone",
            labels={"signal": "payments.failed_ratio", "service": "translator"},
            severity="P1",
            state=GroupState.acknowledged,
            opened_at=NOW - timedelta(minutes=18),
            updated_at=NOW - timedelta(minutes=15),
            acked_at=NOW - timedelta(minutes=15),
            acked_by="alice",
        )
        s.add(group)
        s.flush()
        alert = Alert(
            fingerprint="f" * 16,
            signal="payments.failed_ratio",
            series=WALLET,
            labels={"method": "wallet"},
            severity="P1",
            state=AlertState.firing,
            summary="[P1] payments.failed_ratio{method=wallet} FIRING: 0.7, expected 0–0.05",
            value=0.7,
            evidence={"reason": "0.7 above 0.05 (median 0.01 of the last 24 hours)"},
            started_at=NOW - timedelta(minutes=19),
            firing_at=NOW - timedelta(minutes=18),
            updated_at=NOW - timedelta(minutes=18),
            group_id=group.id,
        )
        s.add(alert)
        s.flush()
        sms = Notification(
            key="g1-sms-alice",
            alert_id=alert.id,
            channel="sms",
            recipient="+15550100",
            payload={"body": alert.summary},
            status=NotificationStatus.sent,
            attempts=2,
            next_attempt_at=NOW - timedelta(minutes=18),
            created_at=NOW - timedelta(minutes=18),
            sent_at=NOW - timedelta(minutes=17),
            group_id=group.id,
            person="alice",
            step=0,
            provider_id="SM0123456789abcdef",
        )
        s.add(sms)
        s.flush()
        s.add_all(
            [
                DeliveryAttempt(
                    notification_id=sms.id,
                    at=NOW - timedelta(minutes=18),
                    ok=False,
                    status="failed",
                    error="provider answered 503",
                ),
                DeliveryAttempt(
                    notification_id=sms.id,
                    at=NOW - timedelta(minutes=17),
                    ok=True,
                    status="sent",
                    provider_id="SM0123456789abcdef",
                ),
            ]
        )
        alert_id = alert.id
    reader = SentinelReader(
        db,
        load_catalogue(DEFAULT_CATALOGUE),
        load_alerting_config(EXAMPLES / "alerting.yaml"),
    )
    with TestClient(create_console(reader, clock=lambda: NOW)) as client:
        yield client, alert_id
    db.dispose()


def test_home_puts_the_firing_alert_first_and_shows_every_signal(seeded) -> None:
    client, alert_id = seeded
    page = client.get("/")
    assert page.status_code == 200
    html = page.text
    firing = html.index("Firing and pending")
    assert html.index(f'href="/alerts/{alert_id}"') > firing
    assert html.index(f'href="/alerts/{alert_id}"') < html.index("On call now")
    for name in load_catalogue(DEFAULT_CATALOGUE).signals:
        assert f'href="/signals/{name.name}"' in html
    # the broken method's row: its state, its current value as a share, a sparkline
    row = html[html.index("<td>method=wallet</td>") :][:2000]
    assert "state-firing" in row
    assert "70.00%" in row
    assert "<polyline" in row


def test_home_says_who_is_on_call_now(seeded) -> None:
    client, _ = seeded
    html = client.get("/").text
    section = html[html.index("On call now") : html.index("<h2>Signals")]
    assert "ops-primary" in section
    assert "nobody" not in section


def test_the_signal_page_charts_every_series_with_the_firing_time_shaded(seeded) -> None:
    client, _ = seeded
    html = client.get("/signals/payments.failed_ratio?hours=6").text
    data = json.loads(re.search(r'<script id="chart-data"[^>]*>(.*?)</script>', html, re.S)[1])
    assert data["names"] == ["method=card", WALLET]
    times, card, wallet = data["columns"]
    assert len(times) == len(card) == len(wallet) > 100
    assert max(v for v in wallet if v is not None) == pytest.approx(0.7)
    assert max(v for v in card if v is not None) == pytest.approx(0.01)
    (start, end), = data["firing"]
    assert end - start == pytest.approx(18 * 60)
    assert "/static/vendor/uplot/uPlot.iife.min.js" in html


def test_the_alert_page_shows_every_delivery_attempt_and_who_acknowledged(seeded) -> None:
    client, alert_id = seeded
    html = client.get(f"/alerts/{alert_id}").text
    assert "acknowledged by <strong>alice</strong>" in html
    assert "provider answered 503" in html
    assert "SM0123456789abcdef" in html
    assert "2026-03-04 09:43:00 UTC" in html  # to the second


def test_unknown_pages_answer_404_and_bad_ids_422(seeded) -> None:
    client, _ = seeded
    assert client.get("/signals/no.such.signal").status_code == 404
    assert client.get("/alerts/999999").status_code == 404
    assert client.get("/alerts/9223372036854775808").status_code == 422
    assert client.get("/signals/payments.failed_ratio?hours=0").status_code == 422


def test_every_asset_is_served_from_the_package(seeded) -> None:
    client, _ = seeded
    html = client.get("/signals/payments.failed_ratio").text
    for ref in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert not ref.startswith(("http:", "https:", "//")), ref
        if ref.startswith("/static/"):
            assert client.get(ref).status_code == 200, ref
