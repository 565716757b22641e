"""Stored history: deduplicated appends, queries, retention with hourly rollups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sentinel.db import Database
from sentinel.history import HistoryStore, Row, parse_series_key, series_key
from sentinel.models import Resolution

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def test_series_keys_round_trip():
    assert series_key({}) == ""
    key = series_key((("route", "/api/jobs"), ("method", "GET")))
    assert key == 'method="GET",route="/api/jobs"'
    assert parse_series_key(key) == {"method": "GET", "route": "/api/jobs"}


def test_append_is_idempotent_and_no_data_is_kept(sentinel_url):
    store = HistoryStore(Database(sentinel_url))
    rows = [
        Row("s", "", T0 + timedelta(minutes=i), float(i) if i != 2 else None, 10.0)
        for i in range(5)
    ]
    store.append(rows)
    store.append(rows[3:] + [Row("s", "", T0 + timedelta(minutes=5), 5.0)])  # overlap
    got = store.load("s")
    assert [r.value for r in got] == [0.0, 1.0, None, 3.0, 4.0, 5.0]
    assert store.load("s", since=T0 + timedelta(minutes=4))[0].value == 4.0
    assert store.series_of("s") == [""]


def test_retention_rolls_old_samples_into_hourly_means(sentinel_url):
    store = HistoryStore(Database(sentinel_url))
    old = [Row("s", 'm="card"', T0 + timedelta(minutes=10 * i), float(i), 2.0) for i in range(12)]
    recent = [Row("s", 'm="card"', T0 + timedelta(days=40), 99.0)]
    store.append(old + recent)
    now = T0 + timedelta(days=40, hours=1)
    counts = store.apply_retention(now, raw_days=35, rollup_days=400)
    assert counts == {"rolled_up": 2, "raw_dropped": 12, "rollups_dropped": 0}
    assert [r.value for r in store.load("s")] == [99.0]
    hourly = store.load("s", resolution=Resolution.hour)
    assert [(r.t, r.value, r.volume) for r in hourly] == [
        (T0, 2.5, 12.0),
        (T0 + timedelta(hours=1), 8.5, 12.0),
    ]
    later = store.apply_retention(T0 + timedelta(days=401), 35, 400)
    assert later["rollups_dropped"] == 2
