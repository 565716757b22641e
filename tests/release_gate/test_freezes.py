"""Freezes: explicit ones with a reason and an expiry, and the incident
freeze (an open incident of the service in postmortems, or a critical alert
firing in the sentinel). Peers that are configured but down refuse with exit 4."""

from __future__ import annotations

from datetime import timedelta

import pytest

from common.clock import FakeClock
from release_gate.db import Database
from release_gate.freezes import FreezeError, active_freezes, create_freeze, lift_freeze
from release_gate.service import DeployRequest
from tests.release_gate.gate_helpers import forced_judge, make_rig


def _freeze(db: Database, clock: FakeClock, service: str | None, minutes: float = 60) -> int:
    with db.session() as session:
        return create_freeze(
            session,
            service=service,
            reason="payment provider migration",
            created_by="ops-lead",
            expires_at=clock.now() + timedelta(minutes=minutes),
            now=clock.now(),
        ).id


def test_an_explicit_freeze_refuses_until_it_expires(gate_db: Database, clock: FakeClock) -> None:
    rig = make_rig(gate_db, clock, judge_fn=forced_judge("promote"))
    freeze_id = _freeze(gate_db, clock, "translator", minutes=60)

    refused = rig.gate.deploy(DeployRequest("translator", "1.1.0", "carol"))  # even a senior
    assert refused.exit_code == 2
    assert f"freeze {freeze_id} of translator by ops-lead" in refused.summary
    assert "payment provider migration" in refused.summary
    assert rig.deployer.steps() == []
    # Other services are not frozen.
    assert rig.gate.deploy(DeployRequest("billing", "2.0", "bob")).exit_code == 0

    clock.advance(minutes=61)
    assert rig.gate.deploy(DeployRequest("translator", "1.1.0", "carol")).exit_code == 0


def test_a_freeze_of_all_services_and_lifting_it(gate_db: Database, clock: FakeClock) -> None:
    rig = make_rig(gate_db, clock, judge_fn=forced_judge("promote"))
    freeze_id = _freeze(gate_db, clock, None)
    refused = rig.gate.deploy(DeployRequest("billing", "2.0", "bob"))
    assert refused.exit_code == 2
    assert "of all services" in refused.summary

    with gate_db.session() as session:
        lifted = lift_freeze(session, freeze_id, "ops-lead", clock.now())
    assert lifted.lifted_by == "ops-lead"
    with gate_db.sessions() as session:
        assert active_freezes(session, "billing", clock.now()) == []
    assert rig.gate.deploy(DeployRequest("billing", "2.0", "bob")).exit_code == 0


def test_a_freeze_needs_a_reason_and_a_future_expiry(gate_db: Database, clock: FakeClock) -> None:
    with gate_db.session() as session, pytest.raises(FreezeError, match="needs a reason"):
        create_freeze(
            session,
            service=None,
            reason=" ",
            created_by="x",
            expires_at=clock.now() + timedelta(hours=1),
            now=clock.now(),
        )
    with gate_db.session() as session, pytest.raises(FreezeError, match="in the future"):
        create_freeze(
            session,
            service=None,
            reason="r",
            created_by="x",
            expires_at=clock.now(),
            now=clock.now(),
        )


def test_an_open_incident_of_the_service_freezes_it(gate_db: Database, clock: FakeClock) -> None:
    rig = make_rig(gate_db, clock, judge_fn=forced_judge("promote"))
    rig.peers.incidents.append(
        {
            "id": 12,
            "title": "jobs stuck",
            "severity": "P1",
            "status": "open",
            "service": "translator",
            "incident_class": "other",
        }
    )
    rig.peers.incidents.append(
        {
            "id": 13,
            "title": "old",
            "severity": "P2",
            "status": "resolved",
            "service": "translator",
            "incident_class": "other",
        }
    )
    refused = rig.gate.deploy(DeployRequest("translator", "1.1.0", "alice"))
    assert refused.exit_code == 2
    assert "incident 12 open (P1, open): jobs stuck" in refused.summary
    assert "incident 13" not in refused.summary
    assert refused.admission["guards"]["incidents"][0]["id"] == 12

    # The incident is mitigated: still open for the freeze.
    rig.peers.incidents[0]["status"] = "mitigated"
    assert rig.gate.deploy(DeployRequest("translator", "1.1.0", "alice")).exit_code == 2
    rig.peers.incidents[0]["status"] = "resolved"
    assert rig.gate.deploy(DeployRequest("translator", "1.1.0", "alice")).exit_code == 0


def test_a_critical_alert_firing_freezes_releases(gate_db: Database, clock: FakeClock) -> None:
    rig = make_rig(gate_db, clock, judge_fn=forced_judge("promote"))
    rig.peers.alerts = [
        {
            "id": 1,
            "signal": "queue.lag",
            "labels": {"service": "translator"},
            "severity": "P3",
            "state": "firing",
        },
        {
            "id": 2,
            "signal": "http.500_rate",
            "labels": {"service": "billing"},
            "severity": "P0",
            "state": "firing",
        },
        {
            "id": 3,
            "signal": "payments.failed",
            "labels": {"service": "translator"},
            "severity": "P1",
            "state": "pending",
        },
    ]
    # None of these is a critical alert of translator that fires.
    assert rig.gate.deploy(DeployRequest("translator", "1.1.0", "alice")).exit_code == 0

    rig.peers.alerts[2]["state"] = "firing"
    clock.advance(minutes=10)
    refused = rig.gate.deploy(DeployRequest("translator", "1.2.0", "alice"))
    assert refused.exit_code == 2
    assert "critical alert 3 firing (P1): payments.failed" in refused.summary

    # With a reason, the author may release through it (a fix for that very alert).
    fix = rig.gate.deploy(
        DeployRequest("translator", "1.2.0", "alice", override_reason="the fix for alert 3")
    )
    assert fix.exit_code == 0
    assert fix.steps[0].detail["overridden"] == ["alert"]


def test_configured_but_unreachable_peers_refuse_with_exit_4(
    gate_db: Database, clock: FakeClock
) -> None:
    rig = make_rig(gate_db, clock, judge_fn=forced_judge("promote"))
    rig.peers.down.add("postmortems.test")
    refused = rig.gate.deploy(DeployRequest("translator", "1.1.0", "alice"))
    assert refused.exit_code == 4
    assert refused.status == "refused"
    assert "cannot check for incidents: postmortems at http://postmortems.test" in refused.summary
    assert rig.deployer.steps() == []

    through = rig.gate.deploy(
        DeployRequest("translator", "1.1.0", "alice", override_reason="postmortems is down")
    )
    assert through.exit_code == 0
    assert through.steps[0].detail["overridden"] == ["guard_unreachable"]
