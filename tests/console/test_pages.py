"""The console's pages, as an on-call engineer opening the console sees them."""

from __future__ import annotations

import json
import re

import pytest

from sentinel.catalogue.loader import load_catalogue
from sentinel.settings import DEFAULT_CATALOGUE
from tests.console.conftest import CARD, WALLET


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
    assert data["names"] == [CARD, WALLET]
    times, card, wallet = data["columns"]
    assert len(times) == len(card) == len(wallet) > 100
    assert max(v for v in wallet if v is not None) == pytest.approx(0.7)
    assert max(v for v in card if v is not None) == pytest.approx(0.01)
    ((start, end),) = data["shade"]
    assert end - start == pytest.approx(18 * 60)
    assert "/static/vendor/uplot/uPlot.iife.min.js" in html


def test_the_signal_page_says_how_each_series_was_tuned(seeded) -> None:
    client, _ = seeded
    html = client.get("/signals/payments.failed_ratio").text
    tuning = html[html.index("<h2>Tuning") : html.index("<h2>Alerts")]
    assert "method=wallet" in tuning and "applied" in tuning and "by alice" in tuning
    assert "k=6.5" in tuning
    assert "0.26 false/week (budget 1.0)" in tuning
    assert "incidents caught 2, missed 0" in tuning
    never = client.get("/signals/queue.depth").text
    assert "Never tuned" in never


def test_the_alert_page_shows_every_delivery_attempt_and_who_acknowledged(seeded) -> None:
    client, alert_id = seeded
    html = client.get(f"/alerts/{alert_id}").text
    assert "acknowledged by <strong>alice</strong>" in html
    assert "provider answered 503" in html
    assert "SM0123456789abcdef" in html
    assert "2026-03-04 09:43:00 UTC" in html  # to the second


def test_the_on_call_page_lists_the_coming_shifts_silences_and_windows(seeded) -> None:
    client, _ = seeded
    html = client.get("/oncall?days=7").text
    rota = html[html.index("ops-primary: the next 7 days") : html.index("<h2>Silences")]
    # weekday office hours and nights/weekends alternate: many shifts, at least two people
    assert rota.count("<tr") > 7
    assert len(set(re.findall(r"<strong>([^<]+)</strong>", rota))) >= 2
    silences = html[html.index("<h2>Silences") : html.index("<h2>Maintenance windows")]
    assert "LLM provider maintenance" in silences and "alice" in silences
    assert "2026-03-04 12:00:00 UTC" in silences


def test_the_hosts_page_shows_each_node_against_its_limits(seeded) -> None:
    client, _ = seeded
    html = client.get("/hosts").text
    node = html[html.index("<h2>node-1:9100") :]
    for value, limit in (("35.00%", "80.00%"), ("62.00%", "85.00%"), ("91.00%", "90.00%")):
        assert value in node and f"limit {limit}" in node
    assert "mountpoint=/" in node


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
