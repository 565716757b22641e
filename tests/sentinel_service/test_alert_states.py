"""The alert state machine, as a table of cases, and its records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from sentinel.alerts import AlertBook, Step, alert_text, decide
from sentinel.catalogue.models import NoDataPolicy, SignalSpec
from sentinel.db import Database
from sentinel.detectors.base import Verdict
from sentinel.models import Alert, AlertState, AlertTransition

P, F, R, N, C = (
    AlertState.pending,
    AlertState.firing,
    AlertState.resolved,
    AlertState.no_data,
    AlertState.cancelled,
)


def verdict(kind: str, value: float | None = 1.0, t: float = 0.0) -> Verdict:
    return Verdict(
        t=t,
        value=None if kind == "nodata" else value,
        score=0.9 if kind != "ok" else 0.1,
        anomalous=kind in ("anomalous", "firing"),
        firing=kind == "firing",
        no_data=kind == "nodata",
        expected=0.05,
        lower=0.0,
        upper=0.12,
        reason="0.42 above 0.12 (median 0.05 + 4×MAD, Tue 14:00)",
    )


def step(kind: str, silent: float = 0.0, policy: NoDataPolicy = NoDataPolicy.alert) -> Step:
    return Step(verdict(kind), silent_seconds=silent, policy=policy, absence_seconds=90)


@pytest.mark.parametrize(
    ("current", "kind", "silent", "policy", "expected"),
    [
        (None, "ok", 0, NoDataPolicy.alert, None),
        (None, "anomalous", 0, NoDataPolicy.alert, P),
        (None, "firing", 0, NoDataPolicy.alert, F),
        (P, "anomalous", 0, NoDataPolicy.alert, None),
        (P, "firing", 0, NoDataPolicy.alert, F),
        (P, "ok", 0, NoDataPolicy.alert, C),
        (F, "firing", 0, NoDataPolicy.alert, None),
        (F, "anomalous", 0, NoDataPolicy.alert, None),  # hysteresis belongs to the detector
        (F, "ok", 0, NoDataPolicy.alert, R),
        (None, "nodata", 30, NoDataPolicy.alert, None),  # not silent long enough yet
        (None, "nodata", 90, NoDataPolicy.alert, N),
        (F, "nodata", 120, NoDataPolicy.alert, N),
        (N, "nodata", 500, NoDataPolicy.alert, None),
        (N, "ok", 0, NoDataPolicy.alert, R),
        (N, "anomalous", 0, NoDataPolicy.alert, P),
        (N, "firing", 0, NoDataPolicy.alert, F),
        (F, "nodata", 500, NoDataPolicy.keep, None),
        (F, "nodata", 500, NoDataPolicy.ok, R),
        (P, "nodata", 500, NoDataPolicy.ok, C),
        (None, "nodata", 500, NoDataPolicy.ok, None),
    ],
)
def test_transitions(current, kind, silent, policy, expected):
    assert decide(current, step(kind, silent, policy)) is expected


def spec(**overrides) -> SignalSpec:
    base = {
        "name": "payments.failed_ratio",
        "description": "failed payments",
        "kind": "ratio",
        "source": {"type": "push"},
        "severity": "P1",
        "unit": "",
        "labels": {"team": "payments", "service": "translator"},
        "runbook": "Check the gateway status page.\nThen the logs.",
    }
    return SignalSpec.model_validate({**base, **overrides})


def test_alert_text_fits_an_sms_and_says_what_how_bad_since_when():
    started = datetime(2026, 3, 3, 14, 2, tzinfo=UTC)
    text = alert_text(
        spec(),
        {"method": "wallet"},
        F,
        verdict("firing", 0.42),
        started,
        {"tuned_at": "2026-03-01T00:00:00", "days": 30, "false_alerts_per_week": 0.3},
    )
    assert text.startswith("[P1] payments.failed_ratio{method=wallet} FIRING: 0.42")
    assert "expected 0–0.12" in text and "since 14:02 UTC" in text
    assert "~0.3 false alerts/week" in text
    assert text.endswith("Runbook: Check the gateway status page. Then the logs.")
    assert len(text) < 320


def test_book_records_each_transition_with_evidence(sentinel_url):
    db = Database(sentinel_url)
    book = AlertBook(db)
    now = datetime(2026, 3, 3, 14, 0, tzinfo=UTC)
    s = spec()
    labels = {"method": "wallet"}
    first = Step(verdict("anomalous", 0.3, t=now.timestamp()), 0, NoDataPolicy.alert, 90)
    assert book.observe(s, 'method="wallet"', labels, first, now, {"value": 0.3}) is P
    assert (
        book.observe(
            s, 'method="wallet"', labels, first, now + timedelta(seconds=30), {"value": 0.3}
        )
        is None
    )
    fire = Step(verdict("firing", 0.42), 0, NoDataPolicy.alert, 90)
    assert (
        book.observe(
            s, 'method="wallet"', labels, fire, now + timedelta(minutes=1), {"value": 0.42}
        )
        is F
    )
    calm = Step(verdict("ok", 0.02), 0, NoDataPolicy.alert, 90)
    assert (
        book.observe(
            s, 'method="wallet"', labels, calm, now + timedelta(minutes=5), {"value": 0.02}
        )
        is R
    )

    with db.session() as session:
        alert = session.scalars(select(Alert)).one()
        assert alert.state is R and alert.started_at == now
        assert alert.firing_at == now + timedelta(minutes=1)
        assert alert.resolved_at == now + timedelta(minutes=5)
        assert alert.labels == {
            "team": "payments",
            "service": "translator",
            "method": "wallet",
            "signal": "payments.failed_ratio",
            "severity": "P1",
        }
        moves = session.scalars(select(AlertTransition).order_by(AlertTransition.id)).all()
        assert [(m.from_state, m.to_state, m.value) for m in moves] == [
            (None, "pending", 0.3),
            ("pending", "firing", 0.42),
            ("firing", "resolved", 0.02),
        ]
        assert moves[1].evidence["value"] == 0.42

    # A new episode of the same series is a new alert; a fresh book sees it after a restart.
    book.observe(s, 'method="wallet"', labels, fire, now + timedelta(hours=1), {})
    assert AlertBook(db).state_of("payments.failed_ratio", 'method="wallet"') is F
    db.dispose()


def test_a_series_that_re_fires_soon_after_resolving_reopens_its_alert(sentinel_url):
    db = Database(sentinel_url)
    book = AlertBook(db, flap_window=timedelta(minutes=15))
    now = datetime(2026, 3, 3, 14, 0, tzinfo=UTC)
    s, labels, key = spec(), {"method": "wallet"}, 'method="wallet"'
    fire = Step(verdict("firing", 0.42, t=now.timestamp()), 0, NoDataPolicy.alert, 90)
    calm = Step(verdict("ok", 0.02), 0, NoDataPolicy.alert, 90)
    book.observe(s, key, labels, fire, now, {})
    book.observe(s, key, labels, calm, now + timedelta(minutes=2), {})
    book.observe(s, key, labels, fire, now + timedelta(minutes=10), {})  # flapping
    book.observe(s, key, labels, calm, now + timedelta(minutes=12), {})
    book.observe(s, key, labels, fire, now + timedelta(minutes=40), {})  # a new episode
    with db.session() as session:
        first, second = session.scalars(select(Alert).order_by(Alert.id)).all()
        assert first.reopened == 1 and first.started_at == now  # the passive phase holds
        moves = session.scalars(
            select(AlertTransition.to_state)
            .where(AlertTransition.alert_id == first.id)
            .order_by(AlertTransition.id)
        ).all()
        assert moves == ["firing", "resolved", "firing", "resolved"]
        assert second.state is F and second.reopened == 0
    db.dispose()
