"""A sentinel database holding two hours of a payment signal, its method "wallet" broken
for the last twenty minutes, a firing alert and its pages: what the console shows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from common.identity import open_store
from dashboards.console import ReleaseReader, SentinelReader, create_console
from release_gate.db import Database as GateDatabase
from release_gate.models import Release, ReleaseStatus
from sentinel.alerting.config import load_alerting_config
from sentinel.alerting.models import AlertGroup, GroupState, Silence
from sentinel.catalogue.loader import load_catalogue
from sentinel.db import Database
from sentinel.history import HistoryStore, Row, series_key
from sentinel.models import (
    Alert,
    AlertState,
    DeliveryAttempt,
    Notification,
    NotificationStatus,
    Tuning,
    TuningStatus,
)
from sentinel.settings import DEFAULT_CATALOGUE

NOW = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)  # a Wednesday, office hours
EXAMPLES = Path(__file__).resolve().parents[2] / "sentinel" / "alerting" / "examples"
WALLET = series_key({"method": "wallet"})
CARD = series_key({"method": "card"})


@pytest.fixture
def console_reader(sentinel_url: str):
    """A reader over a sentinel database seeded as the module says, and the alert's id."""
    db = Database(sentinel_url)
    store = HistoryStore(db)
    rows = []
    for i in range(2 * 3600 // 15):
        t = NOW - timedelta(hours=2) + timedelta(seconds=15 * i)
        broken = t >= NOW - timedelta(minutes=20)
        rows.append(Row("payments.failed_ratio", WALLET, t, 0.7 if broken else 0.01, 40.0))
        rows.append(Row("payments.failed_ratio", CARD, t, 0.01, 120.0))
    for i in range(60):
        t = NOW - timedelta(minutes=60 - i)
        node = {"instance": "node-1:9100"}
        rows.append(Row("host.cpu_busy_ratio", series_key(node), t, 0.35, None))
        rows.append(Row("host.memory_used_ratio", series_key(node), t, 0.62, None))
        root = series_key({**node, "mountpoint": "/"})
        rows.append(Row("host.disk_used_ratio", root, t, 0.91, None))
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
        s.add(
            Silence(
                matchers=['service="translator"', 'signal="jobs.failed"'],
                starts_at=NOW - timedelta(minutes=5),
                ends_at=NOW + timedelta(hours=2),
                created_by="alice",
                comment="LLM provider maintenance",
                created_at=NOW - timedelta(minutes=5),
            )
        )
        s.add(
            Tuning(
                signal="payments.failed_ratio",
                series=WALLET,
                status=TuningStatus.applied,
                spec={"kind": "auto", "params": {"k": 6.5, "direction": "up"}},
                provenance={
                    "weeks_judged": 3.9,
                    "budget_per_week": 1.0,
                    "false_alerts_per_week": 0.26,
                    "days": 28,
                    "backtest": {"alerts_total": 3, "incidents_caught": 2, "incidents_missed": 0},
                },
                created_at=NOW - timedelta(days=2),
                decided_at=NOW - timedelta(days=2),
                decided_by="alice",
            )
        )
        alert_id = alert.id
    reader = SentinelReader(
        db,
        load_catalogue(DEFAULT_CATALOGUE),
        load_alerting_config(EXAMPLES / "alerting.yaml"),
    )
    yield reader, alert_id
    db.dispose()


def canary_samples(canary_error_rate: float, seconds: int = 40) -> dict:
    """What the gate stores of a canary's life: cumulative counts every 5 s, 20 req/s."""
    rows: dict = {"canary": [], "control": []}
    for t in range(5, seconds + 1, 5):
        requests = 20 * t
        rows["canary"].append(
            {"t": t, "requests": requests, "errors": int(requests * canary_error_rate)}
        )
        rows["control"].append(
            {"t": t, "requests": 3 * requests, "errors": int(3 * requests * 0.002)}
        )
    return rows


@pytest.fixture
def gate_reader(postgres_database: str | None, database_url: str, tmp_path: Path):
    """The gate's records: 1.4.0 rolled back by the judge after 30 s of canary, 1.4.1 in
    its canary now."""
    url = database_url if postgres_database else f"sqlite:///{tmp_path / 'gate.db'}"
    db = GateDatabase(url)
    db.migrate()
    started = NOW - timedelta(minutes=30)
    with db.session() as s:
        s.add(
            Release(
                service="translator",
                version="1.4.0",
                previous_version="1.3.9",
                author="ci:deploy-pipeline",
                status=ReleaseStatus.rolled_back,
                decision="rollback",
                samples=canary_samples(0.2),
                verdict={
                    "decision": "rollback",
                    "decided_at": 30.0,
                    "reason": "canary 20% vs control 0.2%",
                },
                started_at=started,
                canary_started_at=started + timedelta(seconds=20),
                decided_at=started + timedelta(seconds=50),
                rolled_back_at=started + timedelta(seconds=55),
                heartbeat_at=started,
            )
        )
        s.add(
            Release(
                service="translator",
                version="1.4.1",
                previous_version="1.3.9",
                author="ci:deploy-pipeline",
                status=ReleaseStatus.canary,
                samples=canary_samples(0.002, seconds=15),
                started_at=NOW - timedelta(minutes=1),
                heartbeat_at=NOW,
            )
        )
    yield ReleaseReader(db)
    db.dispose()


@pytest.fixture
def seeded(console_reader):
    reader, alert_id = console_reader
    with TestClient(create_console(reader, open_store(), clock=lambda: NOW)) as client:
        yield client, alert_id


def add_open_page(db: Database) -> int:
    """A P1 on `jobs.failed` whose page nobody has acknowledged yet; its alert's id."""
    with db.session() as s:
        group = AlertGroup(
            key="jobs-failed",
            route="business",
            policy="page-by-phone",
            labels={"signal": "jobs.failed", "service": "translator"},
            severity="P1",
            state=GroupState.open,
            opened_at=NOW - timedelta(minutes=3),
            updated_at=NOW - timedelta(minutes=3),
        )
        s.add(group)
        s.flush()
        alert = Alert(
            fingerprint="j" * 16,
            signal="jobs.failed",
            series="",
            labels={},
            severity="P1",
            state=AlertState.firing,
            summary="[P1] jobs.failed FIRING: 12 failed jobs in 30 min, expected ≤ 3",
            value=12.0,
            evidence={"reason": "12 above 3"},
            started_at=NOW - timedelta(minutes=4),
            firing_at=NOW - timedelta(minutes=3),
            updated_at=NOW - timedelta(minutes=3),
            group_id=group.id,
        )
        s.add(alert)
        s.flush()
        return alert.id
