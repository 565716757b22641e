"""Incidents that match their cause, as an incident lead sees them: the watcher
reads the sentinel's alerts and the gate's releases from their own tables, an
alert joins an open incident only when it belongs to it (and both timelines say
why), a rising severity re-titles what the platform titled, and acknowledging
the page acknowledges the incident. Time comes from an injected clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from common.clock import FakeClock
from postmortems import reports
from postmortems.api import create_app
from postmortems.db import Database
from postmortems.schemas import IncidentDetail, IncidentPatch
from postmortems.service import Postmortems
from postmortems.settings import PostmortemSettings
from postmortems.titles import TITLE_LIMIT
from postmortems.watcher import AckWatcher, AlertWatcher, ReleaseWatcher
from release_gate.db import Database as GateDatabase
from release_gate.models import Release, ReleaseStatus
from sentinel.alerting.actions import act
from sentinel.alerting.models import AlertGroup, GroupState
from sentinel.db import Database as SentinelDatabase
from sentinel.history import series_key
from sentinel.models import Alert, AlertState
from tests.postmortems.conftest import FakeReplayer


@pytest.fixture
def gate_db(gate_url: str) -> Iterator[GateDatabase]:
    db = GateDatabase(gate_url)
    yield db
    db.dispose()


@pytest.fixture
def live(  # type: ignore[no-untyped-def]
    pm_url: str, sentinel_url: str, gate_db: GateDatabase, clock: FakeClock, replayer: FakeReplayer
) -> Iterator[Postmortems]:
    settings = PostmortemSettings(
        database_url=pm_url,
        sentinel_database_url=sentinel_url,
        gate_database_url=gate_db.engine.url.render_as_string(hide_password=False),
    )
    service = Postmortems(settings=settings, db=Database(pm_url), clock=clock, replayer=replayer)
    yield service
    service.db.dispose()


def add_release(
    gate: GateDatabase, *, canary_at: datetime, rolled_back_at: datetime, route: str
) -> int:
    """A release the judge rolled back for canary-only 500s on ``route``."""
    verdict = {
        "decision": "rollback",
        "reason": f"canary-only 500s on {route}",
        "evidence": {"signatures": {"findings": [{"route": route, "status": "500"}]}},
    }
    with gate.session() as s:
        release = Release(
            service="translator",
            version="1.4.2",
            previous_version="1.4.1",
            author="alice",
            status=ReleaseStatus.rolled_back,
            decision="rollback",
            verdict=verdict,
            started_at=canary_at - timedelta(minutes=1),
            canary_started_at=canary_at,
            rolled_back_at=rolled_back_at,
            finished_at=rolled_back_at,
            heartbeat_at=rolled_back_at,
        )
        s.add(release)
        s.flush()
        return release.id


def add_group(db: SentinelDatabase, opened: datetime, severity: str = "P0") -> int:
    with db.session() as s:
        group = AlertGroup(
            key=f"page-{opened.timestamp()}",
            route="oncall",
            policy="default",
            labels={"service": "translator"},
            severity=severity,
            state=GroupState.open,
            opened_at=opened,
            updated_at=opened,
        )
        s.add(group)
        s.flush()
        return group.id


def add_alert(
    db: SentinelDatabase,
    *,
    signal: str,
    severity: str,
    started: datetime,
    fired: datetime,
    route: str | None = None,
    group_id: int | None = None,
) -> int:
    labels = {"service": "translator"}
    if route:
        labels["route"] = route
    with db.session() as s:
        alert = Alert(
            fingerprint=f"{signal}-{route}-{started.timestamp()}",
            signal=signal,
            series=series_key({k: v for k, v in labels.items() if k != "service"}),
            labels=labels,
            severity=severity,
            source="sentinel",
            state=AlertState.firing,
            summary=f"[{severity}] {signal} FIRING: 0.21, expected ≤ 0.05 since 12:00 UTC. "
            "Runbook: find the request ids of the failing route and the last release.",
            value=0.21,
            evidence={},
            started_at=started,
            firing_at=fired,
            updated_at=fired,
            group_id=group_id,
        )
        s.add(alert)
        s.flush()
        return alert.id


def texts(incident: IncidentDetail, kind: str) -> list[str]:
    return [t.text for t in incident.timeline if t.kind == kind]


def test_an_unrelated_p0_after_a_rollback_opens_its_own_incident(  # type: ignore[no-untyped-def]
    live: Postmortems, sentinel_db, gate_db, clock: FakeClock
) -> None:
    """The demo: a release rolled back (its incident still open), then an hour
    later a business fault fires the overall error ratio at P0."""
    t = clock.now()
    add_release(
        gate_db,
        canary_at=t - timedelta(minutes=66),
        rolled_back_at=t - timedelta(minutes=60),
        route="GET /api/jobs",
    )
    [rollback] = ReleaseWatcher(live, gate_db).run_once()
    before = live.detail(rollback.incident_id)
    assert (before.severity, before.incident_class) == ("P2", "bad_release")

    add_alert(
        sentinel_db,
        signal="http.error_ratio",
        severity="P0",
        started=t - timedelta(minutes=2),
        fired=t - timedelta(minutes=1),
    )
    [fault] = AlertWatcher(live, sentinel_db).run_once()

    assert fault.created and fault.incident_id != rollback.incident_id
    old = live.detail(rollback.incident_id)
    assert old.title == before.title == "Bad release: translator 1.4.2 by alice rolled back"
    assert old.severity == "P2" and old.alert_ids == []
    new = live.detail(fault.incident_id)
    assert new.title == "P0: http.error_ratio on translator"
    assert new.severity == "P0" and new.incident_class == "unclassified"
    # Both timelines say why the alert did not join the bad release.
    [why_not] = texts(new, "link")
    assert f"did not join open incident #{old.id}" in why_not
    assert "59 min after release 1.4.2 was rolled back" in why_not
    [told] = texts(old, "link")
    assert f"opened incident #{new.id} instead" in told and "http.error_ratio (P0)" in told
    assert len(live.list(service="translator", open_only=True)) == 2


def test_an_alert_on_the_release_route_during_its_canary_joins_it(  # type: ignore[no-untyped-def]
    live: Postmortems, sentinel_db, gate_db, clock: FakeClock
) -> None:
    t = clock.now()
    canary_at, rolled_back = t - timedelta(minutes=8), t - timedelta(minutes=2)
    release_id = add_release(
        gate_db, canary_at=canary_at, rolled_back_at=rolled_back, route="GET /api/jobs"
    )
    [rollback] = ReleaseWatcher(live, gate_db).run_once()
    on_route = add_alert(
        sentinel_db,
        signal="http.error_ratio_by_route",
        severity="P1",
        route="/api/jobs",
        started=canary_at + timedelta(minutes=1),
        fired=rolled_back - timedelta(minutes=1),
    )
    elsewhere = add_alert(
        sentinel_db,
        signal="http.error_ratio_by_route",
        severity="P1",
        route="/api/files",
        started=canary_at + timedelta(minutes=1),
        fired=rolled_back - timedelta(seconds=30),
    )
    results = {r.alert_id: r for r in AlertWatcher(live, sentinel_db).run_once()}

    assert results[on_route].incident_id == rollback.incident_id
    assert not results[on_route].created
    incident = live.detail(rollback.incident_id)
    assert incident.alert_ids == [on_route] and incident.release_id == str(release_id)
    [joined] = texts(incident, "link")[:1]
    assert f"Alert #{on_route} http.error_ratio_by_route{{route=/api/jobs}} (P1) joined" in joined
    assert "during release 1.4.2's canary on route /api/jobs, which the release broke" in joined
    # P2 → P1: the platform's title is made again from what the incident holds.
    assert incident.severity == "P1"
    assert incident.title == "P1: bad release 1.4.2 and http.error_ratio_by_route on translator"
    assert len(incident.title) < TITLE_LIMIT and incident.title_author is None
    assert any("Severity P2 → P1; title now" in x for x in texts(incident, "status"))

    assert results[elsewhere].created  # a route the release never broke
    other = live.detail(results[elsewhere].incident_id)
    assert "route /api/files is not one release 1.4.2 broke (/api/jobs)" in texts(other, "link")[0]


def test_a_raised_severity_retitles_unless_a_person_wrote_the_title(  # type: ignore[no-untyped-def]
    live: Postmortems, sentinel_db, clock: FakeClock
) -> None:
    t = clock.now()
    watcher = AlertWatcher(live, sentinel_db)
    add_alert(
        sentinel_db,
        signal="http.error_ratio",
        severity="P1",
        route="/api/jobs",
        started=t - timedelta(minutes=3),
        fired=t - timedelta(minutes=2),
    )
    [first] = watcher.run_once()
    assert live.detail(first.incident_id).title == (
        "P1: http.error_ratio{route=/api/jobs} on translator"
    )
    clock.advance(minutes=2)
    add_alert(
        sentinel_db,
        signal="http.error_ratio",
        severity="P0",
        started=clock.now() - timedelta(minutes=1),
        fired=clock.now(),
    )
    [second] = watcher.run_once()
    assert second.incident_id == first.incident_id and not second.created
    raised = live.detail(first.incident_id)
    assert raised.severity == "P0"
    assert raised.title == (
        "P0: http.error_ratio and http.error_ratio{route=/api/jobs} on translator"
    )
    assert "same signal http.error_ratio on another series" in texts(raised, "link")[0]

    # A person names another incident; a P0 joining it later keeps their words.
    add_alert(
        sentinel_db,
        signal="payments.failed",
        severity="P1",
        started=clock.now() - timedelta(minutes=1),
        fired=clock.now(),
    )
    [wallet] = watcher.run_once()
    assert wallet.created  # another cause
    live.update(wallet.incident_id, IncidentPatch(title="Wallet payments declined"), "carol")
    clock.advance(minutes=1)
    add_alert(
        sentinel_db,
        signal="payments.failed",
        severity="P0",
        started=clock.now() - timedelta(minutes=1),
        fired=clock.now(),
    )
    [again] = watcher.run_once()
    assert again.incident_id == wallet.incident_id
    kept = live.detail(wallet.incident_id)
    assert (kept.severity, kept.title, kept.title_author) == (
        "P0",
        "Wallet payments declined",
        "carol",
    )
    assert any("title kept (written by carol)" in x for x in texts(kept, "status"))

    # A person raising the severity of a platform-titled incident re-titles it too.
    add_alert(
        sentinel_db,
        signal="jobs.empty",
        severity="P1",
        started=clock.now() - timedelta(minutes=1),
        fired=clock.now(),
    )
    [jobs] = watcher.run_once()
    live.update(jobs.incident_id, IncidentPatch(severity="P0"), "carol")
    assert live.detail(jobs.incident_id).title == "P0: jobs.empty on translator"


def test_acknowledging_the_page_acknowledges_the_incident(  # type: ignore[no-untyped-def]
    live: Postmortems, sentinel_db, clock: FakeClock
) -> None:
    t = clock.now()
    group = add_group(sentinel_db, t - timedelta(minutes=1))
    paged = add_alert(
        sentinel_db,
        signal="http.error_ratio",
        severity="P0",
        started=t - timedelta(minutes=2),
        fired=t - timedelta(minutes=1),
        group_id=group,
    )
    [opened] = AlertWatcher(live, sentinel_db).run_once()
    acks = AckWatcher(live, sentinel_db)
    assert acks.run_once() == []  # nobody has acknowledged yet
    assert live.detail(opened.incident_id).acknowledged_at is None

    clock.advance(minutes=4)
    with sentinel_db.session() as s:
        act(s, "acknowledge", group, by="alice", via="sms", now=clock.now())
    [ack] = acks.run_once()
    assert (ack.incident_id, ack.group_id) == (opened.incident_id, group)
    assert ack.acknowledged_by == "alice"
    incident = live.detail(opened.incident_id)
    assert incident.acknowledged_at == clock.now() and incident.acknowledged_by == "alice"
    [entry] = texts(incident, "ack")
    assert entry == f"Acknowledged by alice via sms (the page: sentinel alert group {group})"
    assert acks.run_once() == []  # once
    assert incident.alerts[0].group_id == group and incident.alert_ids == [paged]

    # Time to acknowledge in the report: fired 1 min before t, acknowledged at t + 4 min.
    report = reports.build(live, t - timedelta(hours=1), t + timedelta(hours=1))
    assert report.time_to_acknowledge.count == 1
    assert report.time_to_acknowledge.median_seconds == 5 * 60
    with TestClient(create_app(live)) as client:
        page = client.get(f"/incidents/{opened.incident_id}")
    assert "by alice" in page.text.split('id="acknowledged"')[1].split("</dd>")[0]


def test_a_page_acknowledged_before_the_incident_or_grouped_late_still_counts(  # type: ignore[no-untyped-def]
    live: Postmortems, sentinel_db, clock: FakeClock
) -> None:
    t = clock.now()
    early = add_group(sentinel_db, t - timedelta(minutes=3))
    add_alert(
        sentinel_db,
        signal="payments.failed",
        severity="P1",
        started=t - timedelta(minutes=4),
        fired=t - timedelta(minutes=3),
        group_id=early,
    )
    with sentinel_db.session() as s:  # acknowledged before postmortems saw the alert
        act(s, "acknowledge", early, by="bob", via="slack", now=t - timedelta(minutes=2))
    # An alert linked before the sentinel put it in a group.
    late_alert = add_alert(
        sentinel_db,
        signal="queue.lag",
        severity="P1",
        started=t - timedelta(minutes=2),
        fired=t - timedelta(minutes=1),
    )
    results = AlertWatcher(live, sentinel_db).run_once()
    by_alert = {r.alert_id: r.incident_id for r in results}
    clock.advance(minutes=2)
    late = add_group(sentinel_db, clock.now())
    with sentinel_db.session() as s:
        s.get(Alert, late_alert).group_id = late  # type: ignore[union-attr]
        act(s, "acknowledge", late, by="carol", via="phone", now=clock.now())

    acked = {a.incident_id: a for a in AckWatcher(live, sentinel_db).run_once()}
    first = live.detail(by_alert[min(by_alert)])
    assert first.acknowledged_at == t - timedelta(minutes=2) and first.acknowledged_by == "bob"
    second = live.detail(by_alert[late_alert])
    assert second.acknowledged_by == "carol" and second.acknowledged_at == clock.now()
    assert set(acked) == {first.id, second.id}
    assert "via phone" in texts(second, "ack")[0]


def test_an_alert_of_the_same_page_joins_even_when_grouped_after_linking(  # type: ignore[no-untyped-def]
    live: Postmortems, sentinel_db, clock: FakeClock
) -> None:
    t = clock.now()
    watcher = AlertWatcher(live, sentinel_db)
    first = add_alert(
        sentinel_db,
        signal="jobs.empty",
        severity="P1",
        started=t - timedelta(minutes=2),
        fired=t - timedelta(minutes=1),
    )
    [opened] = watcher.run_once()  # linked before the sentinel grouped it
    page = add_group(sentinel_db, t, severity="P1")
    with sentinel_db.session() as s:
        s.get(Alert, first).group_id = page  # type: ignore[union-attr]
    clock.advance(minutes=1)
    second = add_alert(
        sentinel_db,
        signal="queue.lag",
        severity="P0",
        started=clock.now() - timedelta(minutes=1),
        fired=clock.now(),
        group_id=page,
    )
    results = {r.alert_id: r for r in watcher.run_once()}
    assert results[second].incident_id == opened.incident_id and not results[second].created
    incident = live.detail(opened.incident_id)
    assert f"same page (alert group {page})" in texts(incident, "link")[0]
    assert incident.title == "P0: queue.lag and jobs.empty on translator"
