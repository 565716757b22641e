"""Backfill from the business tables, tuning on history with provenance, and
the weekly re-tune that only proposes."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from common.yaml_config import parse_yaml_model
from sentinel import maintenance, tunings
from sentinel.catalogue import Catalogue
from sentinel.history import Row
from sentinel.models import Alert, Tuning, TuningStatus
from sentinel.operations import backfill_signal, tune_signal
from sentinel.service import build_sentinel
from sentinel.settings import SentinelSettings
from tests.helpers import add_user
from translator.accounts.service import get_plan
from translator.payments.models import Payment, PaymentKind, PaymentMethod, PaymentStatus

CATALOGUE = """
signals:
  - name: payments.failed
    description: failed payments per method, last hour
    kind: count
    interval_seconds: 60
    labels: {team: payments, service: translator}
    no_data: ok
    source:
      type: sql
      window_seconds: 3600
      query: |
        SELECT m.method AS method,
               SUM(CASE WHEN p.status = 'failed' THEN 1 ELSE 0 END) AS value,
               COUNT(p.id) AS volume
        FROM (SELECT 'card' AS method UNION ALL SELECT 'wallet') AS m
        LEFT JOIN payments AS p
          ON p.method = m.method AND p.created_at >= :start AND p.created_at < :end
        GROUP BY m.method
  - name: queue.depth
    description: queue depth
    kind: level
    interval_seconds: 60
    labels: {team: translation, service: translator}
    source: {type: push}
"""


@pytest.fixture
def sentinel(sentinel_url, database_url, clock):
    s = build_sentinel(
        SentinelSettings(database_url=sentinel_url, translator_database_url=database_url),
        clock=clock,
        catalogue=parse_yaml_model(CATALOGUE, Catalogue),
        migrate=False,
    )
    yield s
    s.close()


def test_backfill_reads_the_past_from_business_timestamps(sentinel, svc, clock):
    user_id, _ = add_user(svc, "a@example.com")
    with svc.db.session() as s:
        plan = get_plan(s, "basic")
        for hours_ago, method, status in [
            (30, "card", "failed"),
            (30, "card", "succeeded"),
            (5, "wallet", "failed"),
            (5, "wallet", "failed"),
        ]:
            s.add(
                Payment(
                    user_id=user_id,
                    plan_id=plan.id,
                    kind=PaymentKind.checkout,
                    method=PaymentMethod(method),
                    amount_cents=990,
                    currency="USD",
                    status=PaymentStatus(status),
                    created_at=clock.now() - timedelta(hours=hours_ago, minutes=30),
                )
            )
    assert backfill_signal(sentinel, "payments.failed", days=2, step=timedelta(hours=1)) == 98
    rows = {(r.series, r.t): (r.value, r.volume) for r in sentinel.history.load("payments.failed")}
    at = clock.now() - timedelta(hours=30)
    assert rows[('method="card"', at)] == (1, 2)
    assert rows[('method="wallet"', clock.now() - timedelta(hours=5))] == (2, 2)
    assert sum(v for v, _ in rows.values()) == 3
    with pytest.raises(Exception, match="backfill needs an sql or promql source"):
        backfill_signal(sentinel, "queue.depth", days=1)


def _history(sentinel, clock, days=21, incident_day=15):
    """Minute-ish queue depth with a daily rhythm and one 2-hour incident."""
    rng = np.random.default_rng(7)
    start = clock.now() - timedelta(days=days)
    rows = []
    for i in range(days * 24 * 6):  # every 10 minutes
        t = start + timedelta(minutes=10 * i)
        value = 20 + 10 * np.sin(2 * np.pi * (t.hour + t.minute / 60) / 24) + rng.normal(0, 2)
        if timedelta(days=incident_day) <= t - start < timedelta(days=incident_day, hours=2):
            value += 80
        rows.append(Row("queue.depth", "", t, float(value)))
    sentinel.history.append(rows)
    return start + timedelta(days=incident_day), start + timedelta(days=incident_day, hours=2)


def test_tune_records_provenance_and_alerts_quote_it(sentinel, clock, tmp_path):
    incident = _history(sentinel, clock)
    tuned = tune_signal(
        sentinel,
        "queue.depth",
        days=21,
        budget_per_week=1.0,
        incidents=[incident],
        chart_dir=tmp_path,
    )
    (item,) = tuned
    assert item.result.backtest.incidents_caught == 1
    assert item.result.backtest.false_alerts_per_week <= 1.0
    assert item.chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    applied = tunings.applied(sentinel.db)[("queue.depth", "")]
    assert applied.status is TuningStatus.applied
    assert applied.provenance["days"] == 21 and applied.provenance["budget_per_week"] == 1.0

    # The evaluator uses the tuned detector, and its alerts say how it was tuned.
    sentinel.cycle()
    sentinel.push.push("queue.depth", 500.0, t=clock.now())
    for _ in range(4):
        clock.advance(seconds=60)
        sentinel.push.push("queue.depth", 500.0, t=clock.now())
        sentinel.cycle()
    with sentinel.db.session() as s:
        alert = s.scalars(
            select(Alert).where(Alert.signal == "queue.depth", Alert.state == "firing")
        ).one()
        assert "false alerts/week" in alert.summary
        assert alert.evidence["detector"] == applied.spec


def test_weekly_retune_proposes_and_never_applies(sentinel, clock, tmp_path):
    _history(sentinel, clock)
    tune_signal(sentinel, "queue.depth", days=21, budget_per_week=0.5)
    before = tunings.applied(sentinel.db)[("queue.depth", "")]
    # A month later the series runs at a new level: the re-tune may want other numbers.
    sentinel.history.append(
        [
            Row("queue.depth", "", clock.now() + timedelta(minutes=10 * i), 60.0 + (i % 7))
            for i in range(3000)
        ]
    )
    clock.advance(days=21)
    maintenance.propose_retunes(sentinel)
    after = tunings.applied(sentinel.db)[("queue.depth", "")]
    assert after.id == before.id  # nothing applied silently
    with sentinel.db.session() as s:
        retuned = s.scalars(select(Tuning).where(Tuning.id != before.id)).all()
    assert len(retuned) == 1
    assert retuned[0].status in (TuningStatus.proposed, TuningStatus.rejected)
    assert retuned[0].provenance["tuned_at"] == clock.now().isoformat()


def test_tune_cli(sentinel_url, database_url, monkeypatch, tmp_path, clock):
    monkeypatch.setenv("SENTINEL_DATABASE_URL", sentinel_url)
    monkeypatch.setenv("SENTINEL_TRANSLATOR_DATABASE_URL", database_url)
    catalogue = tmp_path / "signals.yaml"
    catalogue.write_text(CATALOGUE)
    monkeypatch.setenv("SENTINEL_CATALOGUE", str(catalogue))
    from sentinel.cli import main

    runner = CliRunner()
    empty = runner.invoke(main, ["tune", "queue.depth", "--days", "7"])
    assert empty.exit_code == 1 and "run `sentinel backfill queue.depth` first" in empty.output
    bad = runner.invoke(main, ["tune", "queue.depth", "--budget", "often"])
    assert bad.exit_code == 2 and "per week" in bad.output
    unknown = runner.invoke(main, ["tune", "nope"])
    assert unknown.exit_code == 1 and "no signal 'nope'" in unknown.output


def test_proposals_are_accepted_or_rejected_by_a_person(
    sentinel_url, database_url, monkeypatch, tmp_path, sentinel, clock
):
    _history(sentinel, clock)
    applied = tune_signal(sentinel, "queue.depth", days=21, budget_per_week=1.0)[0].tuning_id
    proposed = tune_signal(
        sentinel, "queue.depth", days=21, budget_per_week=3.0, apply=False, by="retune"
    )[0].tuning_id
    monkeypatch.setenv("SENTINEL_DATABASE_URL", sentinel_url)
    monkeypatch.setenv("SENTINEL_TRANSLATOR_DATABASE_URL", database_url)
    catalogue = tmp_path / "signals.yaml"
    catalogue.write_text(CATALOGUE)
    monkeypatch.setenv("SENTINEL_CATALOGUE", str(catalogue))
    from sentinel.cli import main

    runner = CliRunner()
    listed = runner.invoke(main, ["tunings", "list"])
    assert f"#{applied:<5} applied" in listed.output and f"#{proposed:<5} proposed" in listed.output
    accepted = runner.invoke(main, ["tunings", "accept", str(proposed), "--by", "admin"])
    assert accepted.exit_code == 0 and "applied" in accepted.output
    assert tunings.applied(sentinel.db)[("queue.depth", "")].id == proposed
    again = runner.invoke(main, ["tunings", "reject", str(proposed)])
    assert again.exit_code == 1 and f"no proposed tuning {proposed}" in again.output


def test_a_new_leader_backfills_signals_without_history_beside_the_loop(
    sentinel_url, database_url, clock, svc
):
    """A fresh sentinel fills what can read the past, without holding up evaluation,
    then replays it into its detectors; a restart does not fill it twice."""
    user_id, _ = add_user(svc, "a@example.com")
    with svc.db.session() as s:
        plan = get_plan(s, "basic")
        s.add(
            Payment(
                user_id=user_id, plan_id=plan.id, kind=PaymentKind.checkout,
                method=PaymentMethod.wallet, amount_cents=990, currency="USD",
                status=PaymentStatus.failed, created_at=clock.now() - timedelta(hours=20),
            )
        )  # fmt: skip
    settings = SentinelSettings(
        database_url=sentinel_url, translator_database_url=database_url, backfill_days=2
    )
    catalogue = parse_yaml_model(CATALOGUE, Catalogue)
    first = build_sentinel(settings, clock=clock, catalogue=catalogue, migrate=False)
    try:
        first.cycle()  # evaluates at once; the backfill runs beside it
        assert [s.name for s in first.backfill.signals] == ["payments.failed"]  # not the push
        assert first.backfill.finished.wait(60)
        oldest = min(r.t for r in first.history.load("payments.failed"))
        assert oldest <= clock.now() - timedelta(days=2) + timedelta(minutes=10)
        assert first.evaluator is None  # rebuilt on the next cycle, replaying the history
        first.cycle()
        replayed = first.evaluator.series["payments.failed"]['method="wallet"']
        assert replayed.last_data_t is not None and len(replayed.recent) == 10
    finally:
        first.close()
    again = build_sentinel(settings, clock=clock, catalogue=catalogue, migrate=False)
    try:
        again.cycle()
        assert again.backfill.signals == []
    finally:
        again.close()
