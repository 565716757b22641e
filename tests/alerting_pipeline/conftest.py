"""A small alerting setup: two people on a 24/7 rotation, a manager behind
them, phone for P0/P1, SMS for the rest, and alerts written the way the
sentinel writes them (an alert row and its transition)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pytest
from sqlalchemy import select

from common.clock import FakeClock
from sentinel.alerting.config import AlertingConfig, parse_alerting_config
from sentinel.alerting.models import AlertGroup
from sentinel.alerting.notifier import Notifier
from sentinel.alerts import fingerprint
from sentinel.db import Database
from sentinel.history import series_key
from sentinel.models import Alert, AlertState, AlertTransition, Notification

CONFIG = """
people:
  alice: {phone: "+15550000001", slack: U0ALICE}
  bob: {phone: "+15550000002", slack: U0BOB}
  manager: {phone: "+15550000099", slack: U0MGR}
schedules:
  primary:
    name: primary
    time_zone: Europe/Berlin
    layers:
      - name: weekly
        rotation: {participants: [alice, bob], start: "2026-01-05T09:00", handoff: weekly}
policies:
  phone:
    steps:
      - notify: {schedules: [primary]}
        channels: [voice, sms]
        wait_minutes: 5
      - notify: {people: [manager]}
        channels: [voice]
        wait_minutes: 10
    repeat: 1
    broadcast: [{channel: slack, to: "#ops"}]
  text:
    steps:
      - notify: {schedules: [primary]}
        channels: [sms, voice]
        wait_minutes: 15
    broadcast: [{channel: slack, to: "#ops"}]
routes:
  - name: critical
    matchers: ['severity=~"P0|P1"']
    policy: phone
    group_by: [signal, service]
    group_wait_seconds: 30
    group_interval_seconds: 300
  - name: rest
    policy: text
    group_by: [service]
    group_wait_seconds: 0
inhibit_rules:
  - source_matchers: ['signal="database.down"']
    target_matchers: ['signal!="database.down"']
    equal: [service]
flap_minutes: 15
announcements:
  broadcast: [{channel: slack, to: "#releases"}]
"""


def make_config(extra: str = "") -> AlertingConfig:
    return parse_alerting_config(CONFIG + extra, "alerting.yaml")


@dataclass
class Rig:
    db: Database
    clock: FakeClock
    notifier: Notifier

    def run(self):  # type: ignore[no-untyped-def]
        return self.notifier.run_once()

    def fire(self, signal: str, severity: str = "P1", **labels: str) -> int:
        return set_state(self.db, self.clock.now(), signal, severity, AlertState.firing, labels)

    def calm(self, signal: str, severity: str = "P1", **labels: str) -> int:
        return set_state(self.db, self.clock.now(), signal, severity, AlertState.resolved, labels)

    def notifications(self) -> list[Notification]:
        with self.db.session() as s:
            return list(s.scalars(select(Notification).order_by(Notification.id)).all())

    def groups(self) -> list[AlertGroup]:
        with self.db.session() as s:
            return list(s.scalars(select(AlertGroup).order_by(AlertGroup.id)).all())

    def pages(self) -> list[tuple[str, str, str]]:
        """(channel, person or recipient, status) of every notification, in order."""
        return [(n.channel, n.person or n.recipient, n.status.value) for n in self.notifications()]


def set_state(
    db: Database,
    now: datetime,
    signal: str,
    severity: str,
    state: AlertState,
    labels: dict[str, str],
) -> int:
    """Open, move or close the alert of one series, recording the transition
    as the sentinel's alert book does."""
    series = series_key(labels)
    fp = fingerprint(signal, series)
    with db.session() as s:
        alert = s.scalar(
            select(Alert).where(Alert.fingerprint == fp).order_by(Alert.id.desc()).limit(1)
        )
        previous = alert.state.value if alert else None
        closed = alert is not None and alert.state in (AlertState.resolved, AlertState.cancelled)
        if alert is None or (closed and state is AlertState.firing):
            alert = Alert(
                fingerprint=fp,
                signal=signal,
                series=series,
                labels={**labels, "signal": signal, "severity": severity},
                severity=severity,
                state=state,
                summary=f"[{severity}] {signal} {state.value.upper()}",
                value=1.0,
                evidence={},
                started_at=now,
                firing_at=now,
                updated_at=now,
            )
            s.add(alert)
            s.flush()
            previous = None
        alert.state = state
        alert.updated_at = now
        alert.summary = f"[{severity}] {signal} {state.value.upper()}"
        if state is AlertState.resolved:
            alert.resolved_at = now
        s.add(
            AlertTransition(
                alert_id=alert.id, from_state=previous, to_state=state.value, at=now, evidence={}
            )
        )
        return alert.id


@pytest.fixture
def rig(sentinel_url: str) -> Rig:
    db = Database(sentinel_url)
    # Monday 2026-01-05 12:00 UTC: alice's week on the rotation.
    clock = FakeClock(datetime.fromisoformat("2026-01-05T12:00:00+00:00"))
    rig = Rig(db, clock, Notifier(db, make_config(), clock))
    yield rig
    db.dispose()
