"""A first start on a month of business history: while the start-up backfill fills a
signal's history, its prior alone would judge, and a prior of "no payment in half
an hour" pages on what the month calls a quiet Saturday. Such a signal starts no
alert until its history is in (or, at the latest, until the hold runs out)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

import sentinel.backfill
from common.yaml_config import parse_yaml_model
from sentinel.catalogue import Catalogue
from sentinel.models import Alert
from sentinel.service import build_sentinel
from sentinel.settings import SentinelSettings
from tests.helpers import add_user
from translator.accounts.service import get_plan
from translator.payments.models import Payment, PaymentKind, PaymentMethod, PaymentStatus

CATALOGUE = """
signals:
  - name: payments.attempts
    description: payment attempts, last 30 minutes
    kind: count
    interval_seconds: 60
    severity: P2
    labels: {team: payments, service: translator}
    no_data: ok
    prior: {kind: static, params: {threshold: 0.5, direction: below}}
    source:
      type: sql
      window_seconds: 1800
      query: |
        SELECT COUNT(*) AS value FROM payments
        WHERE created_at >= :start AND created_at < :end
    detector: {kind: auto, params: {direction: down}}
"""


@pytest.fixture
def filling(monkeypatch):
    """The backfill's reads wait until the test lets them go (a month takes a while)."""
    go = threading.Event()
    fill = sentinel.backfill.backfill_series

    def slow_fill(*args, **kwargs):  # type: ignore[no-untyped-def]
        go.wait(120)  # released at teardown; a busy machine must not end it early
        return fill(*args, **kwargs)

    monkeypatch.setattr(sentinel.backfill, "backfill_series", slow_fill)
    yield go
    go.set()


def _start(sentinel_url, database_url, clock, hold_seconds):  # type: ignore[no-untyped-def]
    settings = SentinelSettings(
        database_url=sentinel_url,
        translator_database_url=database_url,
        backfill_days=2,
        backfill_hold_seconds=hold_seconds,
        startup_grace_seconds=0,
        source_warmup_seconds=0,
    )
    catalogue = parse_yaml_model(CATALOGUE, Catalogue)
    return build_sentinel(settings, clock=clock, catalogue=catalogue, migrate=False)


def _a_payment_hours_ago(svc, clock, hours: float) -> None:  # type: ignore[no-untyped-def]
    user_id, _ = add_user(svc, "a@example.com")
    with svc.db.session() as s:
        plan = get_plan(s, "basic")
        s.add(
            Payment(
                user_id=user_id,
                plan_id=plan.id,
                kind=PaymentKind.checkout,
                method=PaymentMethod.card,
                amount_cents=990,
                currency="USD",
                status=PaymentStatus.succeeded,
                created_at=clock.now() - timedelta(hours=hours),
            )
        )


def _firing(sentinel_) -> list[str]:  # type: ignore[no-untyped-def]
    with sentinel_.db.session() as s:
        alerts = s.scalars(select(Alert).where(Alert.state.in_(["pending", "firing"]))).all()
        return [a.signal for a in alerts]


def _cycles(sentinel_, clock, n: int) -> None:  # type: ignore[no-untyped-def]
    for _ in range(n):
        sentinel_.cycle()
        clock.advance(seconds=60)


def test_no_alert_from_the_prior_while_the_history_is_being_filled(
    sentinel_url, database_url, svc, clock, filling
):
    _a_payment_hours_ago(svc, clock, 3)  # nobody paid in the last half hour
    s = _start(sentinel_url, database_url, clock, hold_seconds=300)
    try:
        _cycles(s, clock, 3)
        assert _firing(s) == []
        assert s.history.load("payments.attempts")  # read and stored all the same
    finally:
        filling.set()  # the backfill ends before the sentinel closes its databases
        s.close()


def test_past_the_hold_the_prior_judges_again(sentinel_url, database_url, svc, clock, filling):
    _a_payment_hours_ago(svc, clock, 3)
    s = _start(sentinel_url, database_url, clock, hold_seconds=120)
    try:
        _cycles(s, clock, 2)
        assert _firing(s) == []
        _cycles(s, clock, 3)  # the backfill is still stuck, the hold ran out
        assert _firing(s) == ["payments.attempts"]
    finally:
        filling.set()  # the backfill ends before the sentinel closes its databases
        s.close()
