"""The detector replay over an incident window, on a stored synthetic history."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from postmortems.replay import ReplayError, canonical_series, replay_detector
from sentinel import tunings
from sentinel.catalogue.models import Catalogue
from sentinel.db import Database
from sentinel.history import HistoryStore, Row
from sentinel.models import Resolution

INCIDENT = datetime(2026, 11, 30, 13, 50, tzinfo=UTC)  # the wallet starts failing
DETECTED = INCIDENT + timedelta(minutes=12)  # a person noticed
WALLET = 'method="wallet"'
CARD = 'method="card"'


def catalogue(detector: dict[str, Any] | None) -> Catalogue:
    signal: dict[str, Any] = {
        "name": "payments.failed",
        "description": "failed payments per method",
        "kind": "count",
        "unit": "payments",
        "interval_seconds": 60,
        "severity": "P1",
        "labels": {"team": "payments", "service": "translator"},
        "source": {"type": "push"},
    }
    if detector is not None:
        signal["detector"] = detector
    return Catalogue.model_validate({"signals": [signal]})


STATIC = catalogue({"kind": "static", "params": {"threshold": 4}})


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.migrate()
    yield database
    database.dispose()


def store(db: Database, series: str, start: datetime, values: list[float], step: float) -> None:
    HistoryStore(db).append(
        [
            Row("payments.failed", series, start + timedelta(seconds=i * step), v, None)
            for i, v in enumerate(values)
        ]
    )


def quiet(n: int, seed: int) -> list[float]:
    return [float(x) for x in np.random.default_rng(seed).poisson(0.4, n).clip(0, 2)]


def history(db: Database, *, wallet_fails: bool) -> None:
    """Two days of one-minute samples before the incident and an hour after it; the
    wallet series fails six times a minute from INCIDENT on if ``wallet_fails``."""
    start = INCIDENT - timedelta(days=2)
    before = int((INCIDENT - start).total_seconds() // 60)
    store(db, CARD, start, quiet(before + 60, 1), 60)
    wallet = quiet(before + 60, 2)
    if wallet_fails:
        wallet[before:] = [6.0] * 60
    store(db, WALLET, start, wallet, 60)


def replay(db: Database, cat: Catalogue = STATIC, **kwargs: Any):  # type: ignore[no-untyped-def]
    args: dict[str, Any] = {
        "window_start": INCIDENT - timedelta(minutes=30),
        "window_end": INCIDENT + timedelta(minutes=45),
        "detected_at": DETECTED,
        "catalogue": cat,
        **kwargs,
    }
    return replay_detector(db, "payments.failed", **args)


def test_detector_fires_before_detection(db: Database) -> None:
    history(db, wallet_fails=True)
    result = replay(db)
    assert result.would_have_fired
    assert result.series == WALLET
    assert result.first_alert_at == INCIDENT
    assert result.lead_seconds == 12 * 60
    assert result.series_replayed == 2
    assert "static(threshold=4" in result.detector and "catalogue" in result.detector
    assert "12 min before detection" in result.note
    assert "{method=wallet}" in result.note


def test_detector_that_would_not_fire(db: Database) -> None:
    history(db, wallet_fails=False)
    result = replay(db)
    assert not result.would_have_fired
    assert result.first_alert_at is None and result.lead_seconds is None
    assert result.samples == 2 * 76  # both series, every minute of the window
    assert "would not have fired (none of 2 series)" in result.note


def test_one_series_only(db: Database) -> None:
    history(db, wallet_fails=True)
    card = replay(db, series="method=card")
    assert not card.would_have_fired and card.series == CARD
    wallet = replay(db, series="{method=wallet}")
    assert wallet.would_have_fired and wallet.series == WALLET


def test_a_detector_slower_than_people_has_a_negative_lead(db: Database) -> None:
    history(db, wallet_fails=True)
    slow = catalogue({"kind": "static", "params": {"threshold": 4}, "for_seconds": 20 * 60})
    result = replay(db, slow)
    assert result.would_have_fired
    assert result.first_alert_at == INCIDENT + timedelta(minutes=20)
    assert result.lead_seconds == -8 * 60
    assert "8 min after detection" in result.note


def test_an_alert_already_firing_counts_from_its_start(db: Database) -> None:
    history(db, wallet_fails=True)
    result = replay(
        db, window_start=INCIDENT + timedelta(minutes=10), window_end=INCIDENT + timedelta(hours=1)
    )
    assert result.first_alert_at == INCIDENT
    assert "already firing when the window opened" in result.note


def week_of_history(db: Database, *, wallet_fails: bool) -> None:
    """Eight days of five-minute wallet samples: the default detector judges window
    means only once it has seen a whole week."""
    start = INCIDENT - timedelta(days=8)
    before = int((INCIDENT - start).total_seconds() // 300)
    wallet = quiet(before + 12, 3)
    if wallet_fails:
        wallet[before:] = [10.0] * 12
    store(db, WALLET, start, wallet, 300)


def test_the_default_detector_learns_from_the_warm_up(db: Database) -> None:
    """No detector in the catalogue: the product's default for counts, warmed up on
    the week before the window, catches a jump from well under one to ten a sample at once."""
    week_of_history(db, wallet_fails=True)
    result = replay(db, catalogue(None))
    assert result.detector.startswith("auto(") and "default for count" in result.detector
    assert result.would_have_fired and result.series == WALLET
    assert result.first_alert_at == INCIDENT
    assert result.lead_seconds == 12 * 60
    assert result.warmup_samples == 8 * 24 * 12 - 6  # the window opens 30 min early


def test_the_default_detector_stays_quiet_on_normal_history(db: Database) -> None:
    week_of_history(db, wallet_fails=False)
    assert not replay(db, catalogue(None)).would_have_fired


def test_an_applied_tuning_is_what_replays(db: Database) -> None:
    history(db, wallet_fails=True)
    spec = {"kind": "static", "params": {"threshold": 50}}
    tuning_id = tunings.record(
        db, "payments.failed", spec, {"days": 30}, INCIDENT, apply=True, by="test"
    )
    result = replay(db)
    assert not result.would_have_fired
    assert f"tuning #{tuning_id}" in result.detector


def test_short_history_is_said(db: Database) -> None:
    history(db, wallet_fails=True)
    result = replay(db, warmup=timedelta(days=10))
    assert "may still have been learning" in result.note


def test_an_old_incident_replays_on_hourly_means(db: Database) -> None:
    """After retention folded the raw samples into hourly means, the replay runs on
    those and says so."""
    start = INCIDENT - timedelta(days=3)
    hours = [0.3] * 72 + [6.0, 6.0]
    HistoryStore(db).append(
        [
            Row("payments.failed", WALLET, start + timedelta(hours=i), v, None)
            for i, v in enumerate(hours)
        ],
        Resolution.hour,
    )
    result = replay(db, detected_at=INCIDENT + timedelta(hours=1))
    assert result.resolution == "1h"
    assert result.first_alert_at == INCIDENT
    assert "hourly means" in result.note


def test_no_history(db: Database) -> None:
    result = replay(db)
    assert not result.would_have_fired and result.samples == 0
    assert "no stored samples" in result.note


def test_bad_requests_are_refused(db: Database) -> None:
    with pytest.raises(ReplayError, match="no signal 'nope'"):
        replay_detector(
            db,
            "nope",
            window_start=INCIDENT,
            window_end=DETECTED,
            detected_at=DETECTED,
            catalogue=STATIC,
        )
    with pytest.raises(ReplayError, match="before it starts"):
        replay(db, window_start=DETECTED, window_end=INCIDENT)
    with pytest.raises(ReplayError, match="label=value"):
        canonical_series("wallet")


def test_catalogue_file_errors_name_the_file(db: Database, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "catalogue.yaml"
    path.write_text("signals:\n  - name: Bad Name\n")
    with pytest.raises(ReplayError, match="catalogue.yaml"):
        replay(db, path)
