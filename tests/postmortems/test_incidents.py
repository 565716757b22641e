"""Incidents: opening and attaching, transitions, phases and SLA on an injected
clock, and the close rule (complete postmortem, class-specific actions, the
detector rule with its replay)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from common.clock import FakeClock
from postmortems.models import Lesson
from postmortems.schemas import ActionIn, ActionPatch, IncidentPatch, TimelineIn, TransitionIn
from postmortems.service import CloseRefused, Conflict, FormInvalid, Invalid, Postmortems
from tests.postmortems.conftest import COMPLETE, FakeReplayer, detective, incident_in, resolve


def _problems(pm: Postmortems, incident_id: int) -> list[str]:
    with pytest.raises(CloseRefused) as refused:
        pm.close(incident_id, "lead")
    return [p.field for p in refused.value.errors]


def test_open_by_hand_records_who_when_and_the_defaults(pm: Postmortems, clock: FakeClock) -> None:
    result = pm.open(incident_in(on_call="bob", lead="carol"), actor="carol")
    incident = result.incident
    assert result.created
    assert incident.status == "open"
    assert incident.detected_at == clock.now()
    assert incident.started_at == clock.now()  # nothing earlier known
    assert (incident.on_call, incident.lead) == ("bob", "carol")
    assert incident.timeline[0].text.startswith("Incident opened")


def test_other_class_needs_a_reason() -> None:
    with pytest.raises(ValueError, match="class_reason"):
        incident_in(incident_class="other")
    assert incident_in(incident_class="other", class_reason="a cosmic ray").class_reason


def test_a_second_report_for_the_same_service_attaches(pm: Postmortems, clock: FakeClock) -> None:
    first = pm.open(incident_in(severity="P2", incident_class="unclassified")).incident
    clock.advance(minutes=5)
    second = pm.open(
        incident_in(
            severity="P1",
            source="release_gate",
            source_ref="release:42",
            release_id="42",
            rolled_back_at=clock.now(),
            started_at=first.started_at - timedelta(minutes=3),
        )
    )
    assert not second.created
    merged = second.incident
    assert merged.id == first.id
    assert merged.severity == "P1"  # the worse severity wins
    assert merged.incident_class == "bad_release"  # classified by the report
    assert merged.release_id == "42"
    assert merged.started_at == first.started_at - timedelta(minutes=3)
    assert any(t.kind == "rollback" for t in merged.timeline)
    assert len(pm.list(service="translator")) == 1


def test_other_services_and_closed_incidents_do_not_attach(pm: Postmortems) -> None:
    a = pm.open(incident_in(service="translator")).incident
    b = pm.open(incident_in(service="payments"))
    assert b.created and b.incident.id != a.id
    resolve(pm, a.id)  # resolved is no longer open: a new report opens a new incident
    c = pm.open(incident_in(service="translator"))
    assert c.created
    d = pm.open(incident_in(service="payments", attach=False))
    assert d.created


def test_started_defaults_to_the_first_anomalous_sample(pm_settings, clock, replayer) -> None:  # type: ignore[no-untyped-def]
    t0 = clock.now()
    alerts = {
        7: SimpleNamespace(
            id=7,
            signal="http.500_rate",
            severity="P1",
            summary="500s",
            started_at=t0 - timedelta(minutes=12),
            firing_at=t0 - timedelta(minutes=9),
        ),
        8: SimpleNamespace(
            id=8,
            signal="payments.failed",
            severity="P1",
            summary="payments",
            started_at=t0 - timedelta(minutes=7),
            firing_at=t0 - timedelta(minutes=6),
        ),
    }
    from postmortems.db import Database

    pm = Postmortems(
        settings=pm_settings,
        db=Database(pm_settings.database_url),
        clock=clock,
        replayer=replayer,
        alert_reader=lambda ids: [alerts[i] for i in ids if i in alerts],
    )
    incident = pm.open(incident_in(alert_ids=[7, 8])).incident
    assert incident.started_at == t0 - timedelta(minutes=12)
    assert incident.detected_at == t0 - timedelta(minutes=9)  # the first page
    assert incident.passive_seconds == 3 * 60
    assert sorted(incident.alert_ids) == [7, 8]
    with pytest.raises(Invalid, match="unknown sentinel alerts"):
        pm.open(incident_in(alert_ids=[99]))
    pm.db.dispose()


def test_phases_and_sla_breaches_move_with_the_clock(pm: Postmortems, clock: FakeClock) -> None:
    # Monday 2026-01-05 12:00 UTC = 15:00 in Moscow: inside working hours.
    opened = pm.open(incident_in(severity="P0", started_at=clock.now() - timedelta(minutes=10)))
    incident = opened.incident
    assert incident.passive_seconds == 600
    assert incident.sla.response_due == clock.now() + timedelta(minutes=15)
    assert not incident.sla.response_breached
    clock.advance(minutes=20)
    late = pm.detail(incident.id)
    assert late.sla.response_breached and not late.sla.resolution_breached
    pm.transition(incident.id, TransitionIn(acknowledge=True), "bob")
    clock.advance(hours=2)
    done = pm.transition(incident.id, TransitionIn(status="resolved"), "bob")
    assert done.sla.resolution_breached  # 2 h 20 min > 2 h
    assert done.active_seconds == (2 * 60 + 20) * 60
    assert done.acknowledged_at == clock.now() - timedelta(hours=2)
    assert done.postmortem_due == clock.now() + timedelta(days=3)


def test_p2_postmortem_is_due_in_five_business_days(pm: Postmortems, clock: FakeClock) -> None:
    incident = pm.open(incident_in(severity="P2", incident_class="latent_bug")).incident
    done = pm.transition(incident.id, TransitionIn(status="resolved"), "bob")
    assert done.postmortem_due is not None
    assert done.postmortem_due.date() == date(2026, 1, 12)  # Monday + 5 working days


def test_status_moves_and_the_timeline_records_them(pm: Postmortems, clock: FakeClock) -> None:
    incident = pm.open(incident_in()).incident
    clock.advance(minutes=3)
    pm.transition(incident.id, TransitionIn(acknowledge=True), "bob")
    clock.advance(minutes=3)
    mitigated = pm.transition(
        incident.id, TransitionIn(status="mitigated", note="rolled back"), "bob"
    )
    assert mitigated.status == "mitigated" and mitigated.mitigated_at == clock.now()
    reopened = pm.transition(incident.id, TransitionIn(status="open"), "bob")
    assert reopened.status == "open" and reopened.mitigated_at is None
    with pytest.raises(Conflict):
        pm.transition(incident.id, TransitionIn(status="closed"), "bob")
    kinds = [t.kind for t in pm.detail(incident.id).timeline]
    assert kinds.count("status") == 3 and "ack" in kinds
    entry = pm.add_timeline_entry(
        incident.id,
        TimelineIn(at=clock.now() - timedelta(minutes=30), text="Release 42 out"),
        "carol",
    )
    assert pm.detail(incident.id).timeline[0].id == entry.id  # ordered by time


def test_an_incomplete_form_is_refused_and_nothing_is_stored(pm: Postmortems) -> None:
    incident = pm.open(incident_in()).incident
    with pytest.raises(FormInvalid) as refused:
        pm.save_postmortem(
            incident.id,
            COMPLETE.model_copy(update={"root_cause": "TBD", "release_id": None}),
            "lead",
        )
    assert [e.field for e in refused.value.errors] == ["root_cause", "release_id"]
    assert pm.detail(incident.id).postmortem is None


def test_the_form_takes_the_release_the_gate_reported(pm: Postmortems, clock: FakeClock) -> None:
    incident = pm.open(incident_in(release_id="42", rolled_back_at=clock.now())).incident
    form = COMPLETE.model_copy(update={"release_id": None, "rolled_back_at": None})
    saved = pm.save_postmortem(incident.id, form, "lead")
    assert saved.postmortem is not None and saved.postmortem.complete
    assert saved.postmortem.release_id == "42"


def test_a_draft_is_stored_but_not_complete(pm: Postmortems) -> None:
    incident = pm.open(incident_in()).incident
    draft = pm.save_postmortem(
        incident.id, COMPLETE.model_copy(update={"conclusions": "tbd"}), "lead", draft=True
    )
    assert draft.postmortem is not None and not draft.postmortem.complete
    assert draft.postmortem.root_cause == COMPLETE.root_cause
    assert "conclusions" in [p.field for p in draft.close_problems]


def test_close_is_refused_until_everything_is_there(
    pm: Postmortems, replayer: FakeReplayer
) -> None:
    incident = pm.open(incident_in()).incident
    assert _problems(pm, incident.id) == [
        "status",
        "postmortem",
        "root_cause",
        "resolution",
        "business_impact",
        "conclusions",
        "release_id",
        "rolled_back_at",
        "action_items",
        "detective_action",
    ]
    resolve(pm, incident.id)
    pm.save_postmortem(incident.id, COMPLETE, "lead")
    assert _problems(pm, incident.id) == ["action_items", "detective_action"]
    pm.add_action(
        incident.id,
        ActionIn(
            title="Fix the formatter", kind="corrective", owner="alice", due_date=date(2026, 1, 9)
        ),
        "lead",
    )
    assert _problems(pm, incident.id) == ["detective_action"]
    action = pm.add_action(incident.id, detective(), "lead")
    assert action.replay is not None and action.replay["would_have_fired"]
    assert action.replay["lead_seconds"] == 240.0
    assert replayer.calls[0][0] == "payments.failed"
    closed = pm.close(incident.id, "lead")
    assert closed.status == "closed" and closed.closed_at is not None
    assert closed.close_problems == []


def test_the_replay_covers_the_incident_window(
    pm: Postmortems, replayer: FakeReplayer, clock: FakeClock
) -> None:
    started = clock.now() - timedelta(minutes=20)
    incident = pm.open(incident_in(started_at=started)).incident
    clock.advance(minutes=30)
    resolve(pm, incident.id)
    pm.add_action(incident.id, detective(series="method=wallet"), "lead")
    signal, series, start, end, detected = replayer.calls[-1]
    assert series == "method=wallet"
    assert start == started - timedelta(hours=pm.settings.replay_lookback_hours)
    assert end == clock.now() and detected == incident.detected_at


def test_a_replay_that_fails_blocks_the_detector_rule(
    pm: Postmortems, replayer: FakeReplayer
) -> None:
    replayer.fail_for.add("no.such.signal")
    incident = pm.open(incident_in()).incident
    resolve(pm, incident.id)
    pm.save_postmortem(incident.id, COMPLETE, "lead")
    action = pm.add_action(incident.id, detective(signal="no.such.signal"), "lead")
    assert "not in the catalogue" in action.replay["error"]
    with pytest.raises(CloseRefused) as refused:
        pm.close(incident.id, "lead")
    [problem] = refused.value.errors
    assert problem.field == "detective_action" and "no.such.signal" in problem.message
    pm.update_action(action.id, ActionPatch(signal="payments.failed"), "lead")
    assert pm.close(incident.id, "lead").status == "closed"


def test_detector_rule_applies_to_p0_p1_and_release_classes_only(pm: Postmortems) -> None:
    minor = pm.open(
        incident_in(severity="P3", incident_class="external_cause", service="s1")
    ).incident
    resolve(pm, minor.id)
    pm.save_postmortem(minor.id, COMPLETE, "lead")
    pm.add_action(
        minor.id,
        ActionIn(
            title="Ask the provider for an SLA",
            kind="preventive",
            owner="bob",
            due_date=date(2026, 2, 1),
        ),
        "lead",
    )
    assert pm.close(minor.id, "lead").status == "closed"

    for severity, cls in (("P3", "broken_functionality"), ("P0", "external_cause")):
        other = pm.open(incident_in(severity=severity, incident_class=cls, service=cls)).incident
        resolve(pm, other.id)
        pm.save_postmortem(other.id, COMPLETE, "lead")
        pm.add_action(
            other.id,
            ActionIn(
                title="Ask the provider", kind="preventive", owner="bob", due_date=date(2026, 2, 1)
            ),
            "lead",
        )
        assert _problems(pm, other.id) == ["detective_action"]
        # A detective action without a signal does not count.
        pm.add_action(
            other.id,
            ActionIn(
                title="Some monitor", kind="detective", owner="bob", due_date=date(2026, 2, 1)
            ),
            "lead",
        )
        assert _problems(pm, other.id) == ["detective_action"]


def test_latent_bug_needs_a_sibling_scan(pm: Postmortems) -> None:
    incident = pm.open(incident_in(severity="P2", incident_class="latent_bug")).incident
    resolve(pm, incident.id)
    pm.save_postmortem(incident.id, COMPLETE, "lead")
    pm.add_action(
        incident.id,
        ActionIn(
            title="Make the id column 64-bit",
            kind="corrective",
            owner="bob",
            due_date=date(2026, 2, 1),
        ),
        "lead",
    )
    refused = _problems(pm, incident.id)
    assert refused == ["action_items"]
    pm.add_action(
        incident.id,
        ActionIn(
            title="Find every other 32-bit auto increment",
            kind="preventive",
            category="sibling_scan",
            owner="bob",
            due_date=date(2026, 2, 1),
        ),
        "lead",
    )
    assert pm.close(incident.id, "lead").status == "closed"


def test_failed_manual_intervention_needs_a_runbook_or_automation(pm: Postmortems) -> None:
    incident = pm.open(incident_in(severity="P2", incident_class="failed_manual_intervention"))
    iid = incident.incident.id
    resolve(pm, iid)
    pm.save_postmortem(iid, COMPLETE, "lead")
    pm.add_action(
        iid,
        ActionIn(
            title="Talk to the team", kind="preventive", owner="bob", due_date=date(2026, 2, 1)
        ),
        "lead",
    )
    with pytest.raises(CloseRefused) as refused:
        pm.close(iid, "lead")
    assert "runbook" in refused.value.errors[0].message
    pm.add_action(
        iid,
        ActionIn(
            title="Run ALTERs through the migration tool",
            kind="preventive",
            category="automation",
            owner="bob",
            due_date=date(2026, 2, 1),
        ),
        "lead",
    )
    assert pm.close(iid, "lead").status == "closed"


def test_unclassified_incidents_cannot_close(pm: Postmortems) -> None:
    incident = pm.open(incident_in(severity="P3", incident_class="unclassified")).incident
    resolve(pm, incident.id)
    pm.save_postmortem(incident.id, COMPLETE, "lead")
    pm.add_action(
        incident.id,
        ActionIn(title="Add an index", kind="corrective", owner="bob", due_date=date(2026, 2, 1)),
        "lead",
    )
    assert _problems(pm, incident.id) == ["incident_class"]
    pm.update(incident.id, IncidentPatch(incident_class="bad_release_load"), "lead")
    assert pm.close(incident.id, "lead").status == "closed"


def test_closing_registers_the_lessons_and_freezes_the_incident(pm: Postmortems) -> None:
    incident = pm.open(incident_in()).incident
    resolve(pm, incident.id)
    pm.save_postmortem(incident.id, COMPLETE, "lead")
    pm.add_action(incident.id, detective(), "lead")
    pm.close(incident.id, "lead")
    with pm.db.session() as s:
        lessons = list(s.scalars(select(Lesson)))
    assert [(lesson.kind, lesson.incident_id) for lesson in lessons] == [("do", incident.id)]
    with pytest.raises(Conflict):
        pm.save_postmortem(incident.id, COMPLETE, "lead")
    with pytest.raises(Conflict):
        pm.transition(incident.id, TransitionIn(status="open"), "lead")
    assert pm.close(incident.id, "lead").status == "closed"  # closing twice is harmless


def test_actions_validate_kind_and_signal(pm: Postmortems) -> None:
    with pytest.raises(ValueError, match="signal"):
        ActionIn(
            title="x monitor",
            kind="preventive",
            owner="bob",
            due_date=date(2026, 2, 1),
            signal="payments.failed",
        )
    incident = pm.open(incident_in()).incident
    action = pm.add_action(
        incident.id,
        ActionIn(title="Fix it", kind="corrective", owner="bob", due_date=date(2026, 2, 1)),
        "lead",
    )
    done = pm.update_action(action.id, ActionPatch(status="done"), "bob")
    assert done.status == "done" and done.done_at is not None
    with pytest.raises(Invalid):
        pm.update_action(action.id, ActionPatch(signal="payments.failed"), "bob")


def test_timestamps_are_utc_aware(pm: Postmortems) -> None:
    with pytest.raises(ValueError, match="timezone"):
        incident_in(started_at=datetime(2026, 1, 5, 12, 0))
    incident = pm.open(
        incident_in(started_at=datetime(2026, 1, 5, 14, 0, tzinfo=UTC) - timedelta(hours=3))
    ).incident
    assert incident.started_at.tzinfo is not None


def test_close_takes_the_release_the_gate_reported(pm: Postmortems, clock: FakeClock) -> None:
    incident = pm.open(incident_in(release_id="9", rolled_back_at=clock.now())).incident
    fields = [p.field for p in pm.detail(incident.id).close_problems]
    assert "release_id" not in fields and "rolled_back_at" not in fields
    assert "root_cause" in fields


def test_the_on_call_person_comes_from_the_sentinel_schedule(pm: Postmortems) -> None:
    from sentinel.alerting.config import load_alerting_config, schedule
    from sentinel.alerting.schedules import who_is_on_call

    incident = pm.open(incident_in()).incident
    config = load_alerting_config()
    expected = who_is_on_call(schedule(config, next(iter(config.schedules))), incident.detected_at)
    assert expected is not None
    assert incident.on_call == expected.person
    named = pm.open(incident_in(service="other", on_call="bob")).incident
    assert named.on_call == "bob"  # what a person says wins


def test_working_day_targets_skip_the_weekend(pm: Postmortems, clock: FakeClock) -> None:
    # Friday 2026-01-09 17:00 in Moscow: one business hour left in the week.
    clock.set(datetime(2026, 1, 9, 14, 0, tzinfo=UTC))
    incident = pm.open(incident_in(severity="P3", incident_class="external_cause")).incident
    assert incident.sla.response_due is not None
    assert incident.sla.response_due.date() == date(2026, 1, 12)  # Monday, not Saturday
    clock.set(datetime(2026, 1, 11, 20, 0, tzinfo=UTC))  # Sunday night: the week-end is free
    assert not pm.detail(incident.id).sla.response_breached
    clock.set(datetime(2026, 1, 13, 14, 0, tzinfo=UTC))  # Tuesday afternoon
    late = pm.detail(incident.id)
    assert late.sla.response_breached and not late.sla.resolution_breached
    assert pm.list(service="translator")[0].sla.response_breached


def test_simultaneous_reports_of_one_service_open_one_incident(pm: Postmortems) -> None:
    import threading

    barrier = threading.Barrier(4)
    results = []

    def report(n: int) -> None:
        barrier.wait()
        results.append(pm.open(incident_in(source_ref=f"release:{n}")))

    threads = [threading.Thread(target=report, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.created for r in results) == [False, False, False, True]
    assert len({r.incident.id for r in results}) == 1
