"""The summary report (by class, severity, service; phases median and p90; time to
acknowledge; SLA breaches; change-failure rate from the gate's releases), the
do's and don'ts registry, and the Markdown export."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from common.clock import FakeClock
from postmortems import lessons, markdown, reports
from postmortems.reports import percentile
from postmortems.schemas import ActionIn, TransitionIn
from postmortems.service import Postmortems
from release_gate.db import Database as GateDatabase
from release_gate.models import Release, ReleaseStatus
from tests.postmortems.conftest import COMPLETE, detective, incident_in


def test_percentiles_interpolate_like_numpy() -> None:
    assert percentile([], 0.5) is None
    assert percentile([5.0], 0.9) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([float(v) for v in range(1, 11)], 0.9) == pytest.approx(9.1)


def _incident(
    pm: Postmortems,
    clock: FakeClock,
    *,
    passive_min: int,
    active_min: int,
    ack_min: int | None,
    **kw: object,
) -> int:
    """An incident whose phases take the given minutes, detected now."""
    start = clock.now()
    iid = pm.open(incident_in(started_at=start - timedelta(minutes=passive_min), **kw)).incident.id
    if ack_min is not None:
        pm.transition(
            iid, TransitionIn(acknowledge=True, at=start + timedelta(minutes=ack_min)), "bob"
        )
    pm.transition(
        iid, TransitionIn(status="resolved", at=start + timedelta(minutes=active_min)), "bob"
    )
    return iid


def test_the_report_counts_and_measures(pm: Postmortems, clock: FakeClock) -> None:
    begin = clock.now() - timedelta(days=1)
    a = _incident(
        pm,
        clock,
        passive_min=2,
        active_min=10,
        ack_min=1,
        severity="P0",
        incident_class="bad_release",
        service="translator",
    )
    clock.advance(days=1)
    _incident(
        pm,
        clock,
        passive_min=4,
        active_min=200,
        ack_min=40,
        severity="P1",
        incident_class="external_cause",
        service="payments",
    )
    clock.advance(days=1)
    _incident(
        pm,
        clock,
        passive_min=30,
        active_min=60,
        ack_min=None,
        severity="P3",
        incident_class="latent_bug",
        service="translator",
    )
    clock.advance(days=6)
    pm.save_postmortem(a, COMPLETE, "lead")
    pm.add_action(
        a,
        ActionIn(
            title="Fix the formatter", kind="corrective", owner="bob", due_date=date(2026, 1, 7)
        ),
        "lead",
    )
    report = reports.build(pm, begin, clock.now())
    assert report.incidents == 3
    assert report.by_severity == {"P0": 1, "P1": 1, "P3": 1}
    assert report.by_service == {"translator": 2, "payments": 1}
    assert report.by_class == {"bad_release": 1, "external_cause": 1, "latent_bug": 1}
    assert report.passive_phase.median_seconds == 4 * 60
    assert report.passive_phase.p90_seconds == pytest.approx((4 + 0.8 * 26) * 60)
    assert report.active_phase.median_seconds == 60 * 60
    assert report.time_to_acknowledge.count == 2
    assert report.time_to_acknowledge.median_seconds == pytest.approx(20.5 * 60)
    # P1: acknowledged after 40 min (> 30) and resolved after 200 min (> 4 h? no).
    assert report.sla_breaches.response == 1 and report.sla_breaches.resolution == 0
    assert report.postmortems_complete == 1
    assert report.postmortems_overdue and a not in report.postmortems_overdue
    assert report.actions_open == 1 and len(report.actions_overdue) == 1
    assert [row.incidents for row in report.periods] == [3]  # one week
    assert report.change_failure is None and "GATE_DATABASE_URL" in report.change_failure_note
    only = reports.build(pm, begin, clock.now(), service="payments")
    assert only.incidents == 1 and only.by_service == {"payments": 1}
    text = reports.render_text(report)
    assert "passive phase: median 4 min" in text


def test_change_failure_rate_comes_from_the_gate(  # type: ignore[no-untyped-def]
    pm: Postmortems, clock: FakeClock, postgres_database, database_url: str, tmp_path: Path
) -> None:
    url = database_url if postgres_database else f"sqlite:///{tmp_path / 'gate.db'}"
    gate = GateDatabase(url)
    gate.migrate()
    t = clock.now()
    with gate.session() as s:
        for n, status in enumerate(
            [
                ReleaseStatus.promoted,
                ReleaseStatus.rolled_back,
                ReleaseStatus.promoted,
                ReleaseStatus.promoted,
            ]
        ):
            s.add(
                Release(
                    service="translator",
                    version=f"1.{n}",
                    previous_version=None,
                    author="alice",
                    status=status,
                    started_at=t - timedelta(hours=n + 1),
                    canary_started_at=t - timedelta(hours=n + 1),
                    heartbeat_at=t,
                )
            )
    gate.dispose()
    pm.settings.gate_database_url = url
    _incident(pm, clock, passive_min=1, active_min=5, ack_min=1, release_id="1")
    report = reports.build(pm, t - timedelta(days=1), t + timedelta(days=1))
    assert report.change_failure is not None
    assert (report.change_failure.releases, report.change_failure.failed) == (4, 1)
    assert report.change_failure.rate == 0.25
    assert report.change_failure.incidents_with_release == 1


def test_lessons_are_searchable_and_linked(pm: Postmortems) -> None:
    iid = pm.open(incident_in()).incident.id
    pm.transition(iid, TransitionIn(status="resolved"), "bob")
    lessons_in = [
        {"kind": "do", "text": "Canary every release on the preprod node."},
        {"kind": "dont", "text": "Never run third-party scripts on database hosts."},
    ]
    form = type(COMPLETE).model_validate({**COMPLETE.model_dump(), "lessons": lessons_in})
    pm.save_postmortem(iid, form, "lead")
    pm.add_action(iid, detective(), "lead")
    assert lessons.search(pm.db, "canary") == []  # only closed incidents teach
    pm.close(iid, "lead")
    [found] = lessons.search(pm.db, "DATABASE hosts")
    assert found.kind == "dont" and found.incident_id == iid
    assert found.incident_title == "Wallet payments failing"
    assert [item.kind for item in lessons.search(pm.db, kind="do")] == ["do"]
    assert lessons.search(pm.db, "canary", service="other") == []


def test_markdown_export_holds_the_whole_postmortem(pm: Postmortems, clock: FakeClock) -> None:
    iid = _incident(pm, clock, passive_min=3, active_min=12, ack_min=2)
    pm.save_postmortem(iid, COMPLETE, "lead")
    pm.add_action(iid, detective(), "lead")
    text = markdown.render(pm.detail(iid))
    assert text.startswith(f"# Incident #{iid}: Wallet payments failing")
    for part in (
        COMPLETE.root_cause,
        COMPLETE.resolution,
        COMPLETE.business_impact,
        COMPLETE.conclusions,
        "Passive phase:** 3 min",
        "active phase:** 12 min",
        "payments.failed`: would have fired, 4 min 00 s before detection",
        "Watch every payment method's failures separately.",
    ):
        assert part in text, part
