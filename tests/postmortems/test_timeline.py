"""The drafted timeline, from rows recorded in a migrated sentinel database and the
release gate's releases (both backends)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from postmortems.timeline import DraftEntry, draft_timeline, suspect_releases
from release_gate.db import Database as GateDatabase
from release_gate.models import Release, ReleaseStatus
from sentinel.alerting.models import AlertGroup, AuditEvent, GroupState
from sentinel.db import Database
from sentinel.models import (
    Alert,
    AlertState,
    AlertTransition,
    DeliveryAttempt,
    Notification,
    NotificationStatus,
)


def at(hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime(2026, 11, 30, hh, mm, ss, tzinfo=UTC)


INCIDENT = at(13, 50)


@pytest.fixture
def sentinel_db(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    db.migrate()
    yield db
    db.dispose()


@pytest.fixture
def gate_db(database_url: str) -> Iterator[GateDatabase]:
    db = GateDatabase(database_url)
    db.migrate()
    yield db
    db.dispose()


def add_alert(
    db: Database,
    service: str,
    started: datetime,
    transitions: list[tuple[str | None, str, datetime, float | None]],
    series: str = 'method="wallet"',
    group: bool = False,
) -> int:
    with db.session() as s:
        group_id = None
        if group:
            g = AlertGroup(
                key=f"g-{started.timestamp()}",
                route="payments",
                policy="payments-oncall",
                labels={"service": service},
                severity="P1",
                state=GroupState.acknowledged,
                opened_at=started,
                updated_at=started,
            )
            s.add(g)
            s.flush()
            group_id = g.id
        last = transitions[-1]
        alert = Alert(
            fingerprint=f"fp{started.timestamp()}{service}",
            signal="payments.failed",
            series=series,
            labels={"service": service, "team": "payments", "method": "wallet"},
            severity="P1",
            source="sentinel",
            state=AlertState(last[1]),
            summary="[P1] payments.failed{method=wallet} ...",
            value=last[3],
            evidence={},
            started_at=started,
            firing_at=next((t[2] for t in transitions if t[1] == "firing"), None),
            resolved_at=last[2] if last[1] == "resolved" else None,
            updated_at=last[2],
            group_id=group_id,
        )
        s.add(alert)
        s.flush()
        for from_state, to_state, when, value in transitions:
            s.add(
                AlertTransition(
                    alert_id=alert.id,
                    from_state=from_state,
                    to_state=to_state,
                    at=when,
                    value=value,
                    evidence={"lower": 0.0, "upper": 1.0},
                )
            )
        return alert.id


def add_notifications(db: Database, alert_id: int, group_id: int | None) -> None:
    with db.session() as s:
        sms = Notification(
            key=f"a{alert_id}-sms",
            alert_id=alert_id,
            group_id=group_id,
            person="alice",
            channel="twilio_sms",
            recipient="+79990000001",
            payload={},
            status=NotificationStatus.sent,
            attempts=1,
            next_attempt_at=at(13, 52),
            created_at=at(13, 52),
        )
        call = Notification(
            key=f"a{alert_id}-call",
            alert_id=alert_id,
            channel="twilio_voice",
            recipient="+79990000002",
            payload={},
            status=NotificationStatus.failed,
            attempts=1,
            next_attempt_at=at(13, 55),
            created_at=at(13, 55),
        )
        s.add_all([sms, call])
        s.flush()
        s.add_all(
            [
                DeliveryAttempt(notification_id=sms.id, at=at(13, 52, 5), ok=True, status="sent"),
                DeliveryAttempt(
                    notification_id=sms.id,
                    at=at(13, 52, 40),
                    ok=True,
                    status="delivered",
                    source="callback",
                ),
                DeliveryAttempt(
                    notification_id=call.id,
                    at=at(13, 56),
                    ok=False,
                    status="failed",
                    error="no-answer",
                ),
            ]
        )


def group_of(db: Database, alert_id: int) -> int | None:
    with db.session() as s:
        alert = s.get(Alert, alert_id)
        assert alert is not None
        return alert.group_id


def acknowledge(db: Database, group_id: int) -> None:
    with db.session() as s:
        s.add(
            AuditEvent(
                at=at(13, 58),
                kind="acknowledge",
                actor="alice",
                via="sms",
                group_id=group_id,
                detail={},
            )
        )
        s.add(AuditEvent(at=at(13, 59), kind="forbidden", via="api", detail={}))


def add_release(
    db: GateDatabase,
    service: str,
    version: str,
    author: str,
    status: ReleaseStatus,
    started: datetime,
    finished: datetime | None,
    rolled_back: datetime | None = None,
) -> int:
    with db.session() as s:
        release = Release(
            service=service,
            version=version,
            previous_version="1.4.1" if service == "translator" else None,
            author=author,
            status=status,
            started_at=started,
            finished_at=finished,
            rolled_back_at=rolled_back,
            heartbeat_at=finished or started,
        )
        s.add(release)
        s.flush()
        return release.id


@pytest.fixture
def recorded(sentinel_db: Database, gate_db: GateDatabase) -> dict[str, int]:
    """A wallet outage on the translator at 13:50, ten minutes after alice's release."""
    ids = {
        "wallet": add_alert(
            sentinel_db,
            "translator",
            INCIDENT,
            [
                (None, "pending", at(13, 50, 30), 6.0),
                ("pending", "firing", at(13, 52), 6.0),
                ("firing", "resolved", at(14, 40), 0.0),
            ],
            group=True,
        ),
        "elsewhere": add_alert(
            sentinel_db, "billing", at(14, 0), [(None, "firing", at(14, 0), 3.0)]
        ),
        "earlier": add_alert(
            sentinel_db,
            "translator",
            at(11, 0),
            [(None, "firing", at(11, 0), 4.0), ("firing", "resolved", at(12, 0), 0.0)],
        ),
    }
    group_id = group_of(sentinel_db, ids["wallet"])
    assert group_id is not None
    add_notifications(sentinel_db, ids["wallet"], group_id)
    acknowledge(sentinel_db, group_id)
    R = ReleaseStatus
    ids["old"] = add_release(
        gate_db, "translator", "1.3.9", "dave", R.promoted, at(10, 0), at(10, 20)
    )
    ids["bob"] = add_release(
        gate_db, "translator", "1.4.0", "bob", R.promoted, at(13, 0), at(13, 10)
    )
    ids["refused"] = add_release(
        gate_db, "translator", "1.4.1-rc", "eve", R.refused, at(13, 20), at(13, 20)
    )
    ids["alice"] = add_release(
        gate_db, "translator", "1.4.2", "alice", R.promoted, at(13, 30), at(13, 40)
    )
    ids["neighbour"] = add_release(
        gate_db, "dashboards", "2.0", "carol", R.promoted, at(13, 45), at(13, 48)
    )
    ids["later"] = add_release(
        gate_db, "translator", "1.4.3", "alice", R.rolled_back, at(14, 20), at(14, 31), at(14, 30)
    )
    return ids


def lines(entries: list[DraftEntry]) -> list[str]:
    return [e.line() for e in entries]


def test_timeline_drafted_from_alerts_notifications_and_releases(
    sentinel_db: Database, gate_db: GateDatabase, recorded: dict[str, int]
) -> None:
    entries = draft_timeline(
        sentinel_db, gate_db, service="translator", start=INCIDENT, end=at(15, 0)
    )
    assert lines(entries) == [
        "13:10 release translator 1.4.0 by bob (promoted; started 13:00; from 1.4.1)"
        " — suspect: finished 40 min before the incident started",
        "13:40 release translator 1.4.2 by alice (promoted; started 13:30; from 1.4.1)"
        " — most suspect: finished 10 min before the incident started",
        "13:48 release dashboards 2.0 by carol (promoted; started 13:45)",
        "13:50 alert payments.failed{method=wallet} pending: 6 payments, expected 0–1",
        "13:52 alert payments.failed{method=wallet} firing: 6 payments, expected 0–1",
        "13:52 SMS to alice (+79990000001) sent",
        "13:52 SMS to alice (+79990000001) reported delivered",
        "13:56 call to +79990000002 failed: no-answer",
        f"13:58 alice acknowledged alert group {group_of(sentinel_db, recorded['wallet'])} via sms",
        "14:30 rollback of translator 1.4.3 to 1.4.1",
        "14:31 release translator 1.4.3 by alice (rolled back; started 14:20; from 1.4.1)",
        "14:40 alert payments.failed{method=wallet} resolved: 0 payments",
    ]
    suspects = [e.ref for e in entries if e.suspect]
    assert suspects == [f"release:{recorded['bob']}", f"release:{recorded['alice']}"]
    first = entries[3]
    assert first.at == INCIDENT  # the first anomalous sample, not the cycle's time
    assert first.ref == f"alert:{recorded['wallet']}"


def test_linked_alerts_of_other_services_are_included(
    sentinel_db: Database, recorded: dict[str, int]
) -> None:
    entries = draft_timeline(
        sentinel_db,
        None,
        service="translator",
        start=INCIDENT,
        end=at(15, 0),
        alert_ids=[recorded["elsewhere"], recorded["earlier"]],
    )
    refs = {e.ref for e in entries}
    assert f"alert:{recorded['elsewhere']}" in refs
    # a linked alert keeps its whole story, even outside the window
    earlier = [e.line() for e in entries if e.ref == f"alert:{recorded['earlier']}"]
    assert earlier == [
        "11:00 alert payments.failed{method=wallet} firing: 4 payments, expected 0–1",
        "12:00 alert payments.failed{method=wallet} resolved: 0 payments",
    ]
    assert not any(e.kind in ("release", "rollback") for e in entries)  # no gate given


def test_without_a_service_every_service_counts(
    sentinel_db: Database, gate_db: GateDatabase, recorded: dict[str, int]
) -> None:
    entries = draft_timeline(sentinel_db, gate_db, service=None, start=INCIDENT, end=at(15, 0))
    assert f"alert:{recorded['elsewhere']}" in {e.ref for e in entries}
    suspects = [e for e in entries if e.suspect]
    assert [e.ref for e in suspects] == [
        f"release:{recorded[k]}" for k in ("bob", "alice", "neighbour")
    ]
    assert "most suspect" in suspects[-1].text  # dashboards finished last


def test_the_suspect_window_and_incident_start_are_adjustable(
    sentinel_db: Database, gate_db: GateDatabase, recorded: dict[str, int]
) -> None:
    entries = draft_timeline(
        sentinel_db,
        gate_db,
        service="translator",
        start=at(13, 0),
        end=at(15, 0),
        incident_started_at=INCIDENT,
        suspect_window=timedelta(minutes=30),
    )
    assert [e.ref for e in entries if e.suspect] == [f"release:{recorded['alice']}"]


def test_suspects_are_judged_from_the_linked_alerts_first_sample(
    sentinel_db: Database, gate_db: GateDatabase, recorded: dict[str, int]
) -> None:
    """A window opened an hour early for context does not move the rule: the incident
    started with the linked alert's first anomalous sample."""
    entries = draft_timeline(
        sentinel_db,
        gate_db,
        service="translator",
        start=INCIDENT - timedelta(hours=1),
        end=at(15, 0),
        alert_ids=[recorded["wallet"]],
    )
    suspects = [e for e in entries if e.suspect]
    assert [e.ref for e in suspects] == [f"release:{recorded[k]}" for k in ("bob", "alice")]
    assert "most suspect: finished 10 min before" in suspects[-1].text


@dataclass
class StubRelease:
    id: int
    service: str
    version: str
    previous_version: str | None
    author: str
    status: str
    decision: str | None
    started_at: datetime
    finished_at: datetime | None
    rolled_back_at: datetime | None
    override_reason: str | None = None


class StubGate:
    def __init__(self, releases: list[StubRelease]) -> None:
        self.releases = releases
        self.calls: list[tuple[datetime, datetime, str | None]] = []

    def releases_between(
        self, start: datetime, end: datetime, service: str | None
    ) -> list[StubRelease]:
        self.calls.append((start, end, service))
        return [r for r in self.releases if start <= r.started_at < end]


def test_a_release_in_flight_is_the_most_suspect(sentinel_db: Database) -> None:
    gate = StubGate(
        [
            StubRelease(
                7,
                "translator",
                "2.0",
                "1.9",
                "alice",
                "promoted",
                "promote",
                at(13, 0),
                at(13, 20),
                None,
            ),
            StubRelease(
                8,
                "translator",
                "2.1",
                "2.0",
                "bob",
                "canary",
                None,
                at(13, 45),
                None,
                None,
                "hotfix for the login page",
            ),
        ]
    )
    entries = draft_timeline(sentinel_db, gate, service="translator", start=INCIDENT, end=at(15, 0))
    assert [e.line() for e in entries] == [
        "13:20 release translator 2.0 by alice (promoted; started 13:00; from 1.9)"
        " — suspect: finished 30 min before the incident started",
        "13:45 release translator 2.1 by bob (canary; from 2.0; override: hotfix for the login"
        " page) — most suspect: still rolling out when the incident started",
    ]
    assert gate.calls and gate.calls[0][0] <= INCIDENT - timedelta(hours=2)


def test_suspect_rule() -> None:
    def rel(i: int, service: str, started: datetime, finished: datetime | None) -> StubRelease:
        return StubRelease(i, service, "v", None, "x", "promoted", None, started, finished, None)

    releases = [
        rel(1, "translator", at(11, 0), at(11, 40)),  # 2 h 10 min before: too old
        rel(2, "translator", at(12, 0), at(12, 0)),  # 1 h 50 min before
        rel(3, "translator", at(13, 30), at(14, 10)),  # finished after the start
        rel(4, "translator", at(14, 0), at(14, 5)),  # started after the incident did
        rel(5, "billing", at(13, 40), at(13, 45)),
    ]
    assert [r.id for r in suspect_releases(releases, INCIDENT, "translator")] == [3, 2]
    assert [r.id for r in suspect_releases(releases, INCIDENT, None)] == [3, 5, 2]


def test_bad_window_is_refused(sentinel_db: Database) -> None:
    with pytest.raises(ValueError, match="before it starts"):
        draft_timeline(sentinel_db, None, service=None, start=at(15, 0), end=at(14, 0))
