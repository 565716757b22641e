"""Incidents opened from critical sentinel alerts (read from the sentinel's own
tables behind a cursor), each with its own cause, and the timeline drafted from
what the sentinel and the release gate recorded."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from common.clock import FakeClock
from postmortems.db import Database
from postmortems.models import Incident
from postmortems.schemas import TransitionIn
from postmortems.service import Postmortems
from postmortems.settings import PostmortemSettings
from postmortems.watcher import AlertWatcher
from release_gate.db import Database as GateDatabase
from release_gate.models import Release, ReleaseStatus
from sentinel.db import Database as SentinelDatabase
from sentinel.models import Alert, AlertState, AlertTransition, Notification, NotificationStatus
from tests.postmortems.conftest import FakeReplayer


@pytest.fixture
def live(  # type: ignore[no-untyped-def]
    pm_url: str, sentinel_url: str, gate_url: str, clock: FakeClock, replayer: FakeReplayer
) -> Iterator[Postmortems]:
    settings = PostmortemSettings(
        database_url=pm_url, sentinel_database_url=sentinel_url, gate_database_url=gate_url
    )
    service = Postmortems(settings=settings, db=Database(pm_url), clock=clock, replayer=replayer)
    yield service
    service.db.dispose()


def add_alert(
    db: SentinelDatabase,
    *,
    severity: str = "P1",
    service: str | None = "translator",
    started: datetime,
    firing: datetime | None,
    state: AlertState = AlertState.firing,
    signal: str = "http.500_rate",
    person: str | None = None,
    route: str | None = None,
) -> int:
    labels = {"service": service} if service else {}
    if route:
        labels["route"] = route
    with db.session() as s:
        alert = Alert(
            fingerprint=f"{signal}-{started.timestamp()}-{severity}",
            signal=signal,
            series=f'route="{route}"' if route else "",
            labels=labels,
            severity=severity,
            source="sentinel",
            state=state,
            summary=f"[{severity}] {signal} FIRING: 40% of requests answer 500\nRunbook: ...",
            value=0.4,
            evidence={},
            started_at=started,
            firing_at=firing,
            updated_at=firing or started,
        )
        s.add(alert)
        s.flush()
        s.add(
            AlertTransition(
                alert_id=alert.id,
                from_state=None,
                to_state="pending",
                at=started,
                value=0.3,
                evidence={},
            )
        )
        if firing:
            s.add(
                AlertTransition(
                    alert_id=alert.id,
                    from_state="pending",
                    to_state="firing",
                    at=firing,
                    value=0.4,
                    evidence={},
                )
            )
        if person:
            s.add(
                Notification(
                    key=f"n-{alert.id}",
                    alert_id=alert.id,
                    channel="twilio_sms",
                    recipient="+79990000001",
                    person=person,
                    payload={},
                    status=NotificationStatus.sent,
                    attempts=1,
                    next_attempt_at=firing or started,
                    created_at=firing or started,
                )
            )
        return alert.id


def fire(db: SentinelDatabase, alert_id: int, at: datetime) -> None:
    with db.session() as s:
        alert = s.get(Alert, alert_id)
        assert alert is not None
        alert.state, alert.firing_at, alert.updated_at = AlertState.firing, at, at


def _incidents(service: Postmortems) -> list[Incident]:
    with service.db.session() as s:
        return list(s.scalars(select(Incident).order_by(Incident.id)))


def test_critical_alerts_open_incidents_once(live: Postmortems, sentinel_db, clock) -> None:  # type: ignore[no-untyped-def]
    t = clock.now()
    first = add_alert(
        sentinel_db,
        started=t - timedelta(minutes=9),
        firing=t - timedelta(minutes=6),
        person="alice",
    )
    add_alert(
        sentinel_db,
        severity="P2",
        started=t - timedelta(minutes=8),
        firing=t - timedelta(minutes=5),
        signal="queue.lag",
    )  # not critical
    pending = add_alert(
        sentinel_db,
        severity="P0",
        started=t - timedelta(minutes=2),
        firing=None,
        state=AlertState.pending,
        signal="payments.failed",
    )
    watcher = AlertWatcher(live, sentinel_db)

    [result] = watcher.run_once()
    assert result.alert_id == first and result.created
    incident = live.detail(result.incident_id)
    assert incident.severity == "P1" and incident.service == "translator"
    assert incident.started_at == t - timedelta(minutes=9)  # first anomalous sample
    assert incident.detected_at == t - timedelta(minutes=6)  # when it fired
    assert incident.passive_seconds == 180
    assert incident.on_call == "alice"
    assert incident.source == "watcher" and incident.source_ref == f"alert:{first}"
    assert incident.title == "P1: http.500_rate on translator"
    assert watcher.run_once() == []  # nothing twice

    # The pending P0 fires later: same service but another signal and page, so it
    # opens its own incident; the first keeps its severity.
    clock.advance(minutes=3)
    fire(sentinel_db, pending, clock.now())
    restarted = AlertWatcher(live, sentinel_db)  # a new process: the cursor is stored
    [opened] = restarted.run_once()
    assert opened.created and opened.incident_id != incident.id
    assert live.detail(opened.incident_id).title == "P0: payments.failed on translator"
    assert live.detail(incident.id).severity == "P1"
    assert len(_incidents(live)) == 2
    assert restarted.run_once() == []


def test_alerts_of_other_services_and_after_resolution_open_new_ones(  # type: ignore[no-untyped-def]
    live: Postmortems, sentinel_db, clock
) -> None:
    t = clock.now()
    add_alert(sentinel_db, started=t - timedelta(minutes=5), firing=t - timedelta(minutes=4))
    add_alert(
        sentinel_db,
        service="payments",
        started=t - timedelta(minutes=5),
        firing=t - timedelta(minutes=4),
        signal="payments.failed",
    )
    # An alert that fired and resolved between two passes still counts.
    add_alert(
        sentinel_db,
        service=None,
        started=t - timedelta(minutes=3),
        firing=t - timedelta(minutes=2),
        state=AlertState.resolved,
        signal="jobs.empty",
    )
    watcher = AlertWatcher(live, sentinel_db, default_service="translator")
    results = watcher.run_once()
    # The unlabelled alert belongs to the default service, with a cause of its own.
    assert [r.created for r in results] == [True, True, True]
    services = [i.service for i in _incidents(live)]
    assert services == ["translator", "payments", "translator"]

    translator = _incidents(live)[0]
    live.transition(translator.id, TransitionIn(status="resolved"), "bob")
    clock.advance(minutes=10)
    add_alert(sentinel_db, started=clock.now() - timedelta(minutes=1), firing=clock.now())
    [again] = watcher.run_once()
    assert again.created and again.incident_id != translator.id


def test_a_route_and_the_whole_service_failing_together_make_one_incident(  # type: ignore[no-untyped-def]
    live: Postmortems, sentinel_db, clock
) -> None:
    """One route answering 500 raises its own ratio and the service's: the default
    catalogue says the first is part of the second, so the lead gets one incident."""
    t = clock.now()
    by_route = add_alert(
        sentinel_db,
        signal="http.error_ratio_by_route",
        route="/api/jobs",
        started=t - timedelta(minutes=3),
        firing=t - timedelta(minutes=2),
    )
    watcher = AlertWatcher(live, sentinel_db)
    [opened] = watcher.run_once()
    assert opened.created and opened.alert_id == by_route
    clock.advance(minutes=1)
    add_alert(
        sentinel_db,
        severity="P0",
        signal="http.error_ratio",
        started=t - timedelta(minutes=2),
        firing=clock.now(),
    )
    # A latency alert of the same minutes is another measure: its own incident.
    add_alert(
        sentinel_db,
        signal="jobs.processing_seconds",
        started=t - timedelta(minutes=2),
        firing=clock.now(),
    )
    joined, own = watcher.run_once()
    assert not joined.created and joined.incident_id == opened.incident_id
    assert own.created
    incident = live.detail(opened.incident_id)
    assert incident.severity == "P0"  # raised by the service-wide alert
    assert [i.id for i in _incidents(live)] == [opened.incident_id, own.incident_id]


def test_the_timeline_is_drafted_from_alerts_and_releases(  # type: ignore[no-untyped-def]
    live: Postmortems, sentinel_db, gate_url: str, clock
) -> None:
    t = clock.now()
    gate = GateDatabase(gate_url)
    with gate.session() as s:
        s.add(
            Release(
                service="translator",
                version="1.4.2",
                previous_version="1.4.1",
                author="alice",
                status=ReleaseStatus.rolled_back,
                started_at=t - timedelta(minutes=15),
                finished_at=t - timedelta(minutes=2),
                rolled_back_at=t - timedelta(minutes=2),
                heartbeat_at=t,
            )
        )
    gate.dispose()
    add_alert(
        sentinel_db,
        started=t - timedelta(minutes=10),
        firing=t - timedelta(minutes=7),
        person="alice",
    )
    [opened] = AlertWatcher(live, sentinel_db).run_once()
    drafted = live.draft_timeline(opened.incident_id, "carol")
    kinds = [e.kind for e in drafted.timeline if e.origin == "draft"]
    assert "alert" in kinds and "release" in kinds
    suspects = [e for e in drafted.timeline if e.suspect]
    assert suspects and "1.4.2" in suspects[0].text
    alert_texts = " ".join(e.text for e in drafted.timeline if e.kind == "alert")
    assert "0.4" in alert_texts or "40" in alert_texts  # the values are in the entries
    again = live.draft_timeline(opened.incident_id, "carol")
    assert len(again.timeline) == len(drafted.timeline)  # a second draft adds nothing new


def test_the_detector_replay_runs_against_the_sentinel(  # type: ignore[no-untyped-def]
    pm_url: str, sentinel_url: str, clock: FakeClock
) -> None:
    from datetime import date

    from postmortems.schemas import ActionIn
    from postmortems.service import CloseRefused
    from tests.postmortems.conftest import COMPLETE, incident_in

    settings = PostmortemSettings(database_url=pm_url, sentinel_database_url=sentinel_url)
    service = Postmortems(settings=settings, db=Database(pm_url), clock=clock)  # real replay
    iid = service.open(incident_in()).incident.id
    service.transition(iid, TransitionIn(status="resolved"), "lead")
    service.save_postmortem(iid, COMPLETE, "lead")
    unknown = service.add_action(
        iid,
        ActionIn(
            title="Watch it",
            kind="detective",
            owner="bob",
            due_date=date(2026, 2, 1),
            signal="no.such",
        ),
        "l",
    )
    assert "no.such" in unknown.replay["error"]
    with pytest.raises(CloseRefused):
        service.close(iid, "lead")
    known = service.add_action(
        iid,
        ActionIn(
            title="Page on failed payments",
            kind="detective",
            owner="bob",
            due_date=date(2026, 2, 1),
            signal="payments.failed",
        ),
        "lead",
    )
    assert known.replay is not None and "error" not in known.replay
    assert known.replay["would_have_fired"] is False  # no history recorded: said so
    assert known.replay["note"]
    assert service.close(iid, "lead").status == "closed"
    service.db.dispose()


def test_rollbacks_recorded_by_the_gate_open_bad_release_incidents(  # type: ignore[no-untyped-def]
    live: Postmortems, gate_url: str, clock: FakeClock
) -> None:
    from postmortems.watcher import ReleaseWatcher
    from tests.postmortems.conftest import incident_in

    t = clock.now()
    gate = GateDatabase(gate_url)
    with gate.session() as s:
        for n, (status, rolled) in enumerate(
            [
                (ReleaseStatus.rolled_back, t - timedelta(minutes=20)),
                (ReleaseStatus.promoted, None),
                (ReleaseStatus.rolled_back, t - timedelta(minutes=5)),
            ]
        ):
            s.add(
                Release(
                    service="translator" if n < 2 else "payments",
                    version=f"1.{n}",
                    previous_version=None,
                    author="alice",
                    status=status,
                    started_at=t - timedelta(minutes=30 - n),
                    rolled_back_at=rolled,
                    finished_at=rolled,
                    heartbeat_at=t,
                )
            )
    # The gate reached postmortems for the first one: it is not taken again.
    live.open(
        incident_in(
            source="release_gate", source_ref="release:1", release_id="1", service="translator"
        )
    )
    watcher = ReleaseWatcher(live, gate)
    [result] = watcher.run_once()
    assert result.release_id == 3 and result.created
    incident = live.detail(result.incident_id)
    assert incident.incident_class == "bad_release" and incident.service == "payments"
    assert incident.release_id == "3" and incident.rolled_back_at == t - timedelta(minutes=5)
    assert incident.started_at == t - timedelta(minutes=28)
    assert watcher.run_once() == []
    assert ReleaseWatcher(live, gate).run_once() == []  # the cursor and the refs persist
    gate.dispose()
