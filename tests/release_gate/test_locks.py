"""Release locks (seed 003 §1.4): one release of a service at a time, under
concurrent callers; after it, five minutes for its author and the seniors
only; overrides need a reason, are audited and announced."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import select

from common.clock import FakeClock
from release_gate.db import Database
from release_gate.models import Override, Release, ReleaseStatus
from release_gate.service import DeployRequest
from tests.release_gate.gate_helpers import forced_judge, make_rig


def test_ten_concurrent_callers_one_proceeds_the_rest_are_told_who_holds_it(
    gate_db_url: str, clock: FakeClock
) -> None:
    callers = 10
    barrier = threading.Barrier(callers)
    results: dict[str, tuple[int, bool]] = {}
    errors: list[BaseException] = []
    databases = [Database(gate_db_url) for _ in range(callers)]

    def caller(i: int) -> None:
        try:
            rig = make_rig(databases[i], clock, peers_configured=False)
            barrier.wait()
            results[f"dev-{i}"] = rig.gate.admit(
                DeployRequest("translator", f"2.0.{i}", f"dev-{i}")
            )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for db in databases:
        db.dispose()
    assert not errors, errors

    admitted = [author for author, (_, ok) in results.items() if ok]
    assert len(admitted) == 1, results
    (holder,) = admitted
    db = Database(gate_db_url)
    try:
        with db.sessions() as session:
            rows = list(session.execute(select(Release)).scalars())
    finally:
        db.dispose()
    assert len(rows) == callers  # every attempt is recorded
    refused = [r for r in rows if r.status == ReleaseStatus.refused]
    assert len(refused) == callers - 1
    for row in refused:
        assert row.exit_code == 2
        (reason,) = row.refusal["reasons"]
        assert f"being released by {holder}" in reason
        assert "at the latest" in reason and "UTC" in reason
        assert row.refusal["blockers"][0]["lock"]["holder"] == holder


def test_after_a_release_only_its_author_and_seniors_may_release_for_five_minutes(
    gate_db: Database, clock: FakeClock
) -> None:
    rig = make_rig(gate_db, clock, judge_fn=forced_judge("promote"))
    first = rig.gate.deploy(DeployRequest("translator", "1.1.0", "alice"))
    assert first.exit_code == 0
    finished = first.finished_at
    assert finished is not None

    bob = rig.gate.deploy(DeployRequest("translator", "1.1.1", "bob"))
    assert bob.exit_code == 2
    assert bob.status == "refused"
    until = (finished + timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M:%S UTC")
    assert f"locked by alice until {until}" in bob.summary
    assert "REFUSED, nothing deployed" in bob.summary
    assert rig.deployer.steps() == ["deploy_canary", "promote"]  # bob deployed nothing

    # The author may ship a fix at once...
    fix = rig.gate.deploy(DeployRequest("translator", "1.1.2", "alice"))
    assert fix.exit_code == 0
    assert fix.admission["exemption"] == "author"
    # ... and so may a senior engineer, in an emergency.
    senior = rig.gate.deploy(DeployRequest("translator", "1.1.3", "carol"))
    assert senior.exit_code == 0
    assert senior.admission["exemption"] == "senior"

    # Another service is not locked.
    other = rig.gate.deploy(DeployRequest("billing", "7.0", "bob"))
    assert other.exit_code == 0

    # Five minutes after carol's release, bob may release translator.
    clock.advance(minutes=5, seconds=1)
    later = rig.gate.deploy(DeployRequest("translator", "1.2.0", "bob"))
    assert later.exit_code == 0, later.summary
    assert later.admission["exemption"] is None


def test_the_lock_counts_from_the_end_of_the_release(gate_db: Database, clock: FakeClock) -> None:
    rig = make_rig(gate_db, clock, judge_fn=forced_judge("rollback"))
    first = rig.gate.deploy(DeployRequest("translator", "1.1.0", "alice"))
    assert first.exit_code == 1  # a rollback also locks: time to look at it
    clock.advance(minutes=4, seconds=59)
    assert rig.gate.deploy(DeployRequest("translator", "1.1.1", "bob")).exit_code == 2
    clock.advance(seconds=2)
    assert rig.gate.deploy(DeployRequest("translator", "1.1.1", "bob")).exit_code != 2


def test_an_override_needs_a_reason_is_audited_and_announced(
    gate_db: Database, clock: FakeClock
) -> None:
    rig = make_rig(gate_db, clock, judge_fn=forced_judge("promote"))
    rig.gate.deploy(DeployRequest("translator", "1.1.0", "alice"))

    receipt = rig.gate.deploy(
        DeployRequest("translator", "1.1.1", "bob", override_reason="hotfix for the payment outage")
    )
    assert receipt.exit_code == 0
    assert receipt.override_reason == "hotfix for the payment outage"
    with gate_db.sessions() as session:
        (audit,) = session.execute(select(Override)).scalars()
    assert audit.release_id == receipt.release_id
    assert audit.author == "bob"
    assert audit.reason == "hotfix for the payment outage"
    assert [o["kind"] for o in audit.overridden] == ["lock"]
    assert "locked by alice" in audit.overridden[0]["message"]
    overrides = [a for a in rig.peers.announcements if a["state"] == "override"]
    assert len(overrides) == 1
    assert overrides[0]["severity"] == "warning"
    assert "hotfix for the payment outage" in overrides[0]["text"]
    assert "Override: hotfix" in receipt.summary


def test_an_override_with_nothing_in_the_way_audits_nothing(
    gate_db: Database, clock: FakeClock
) -> None:
    rig = make_rig(gate_db, clock, judge_fn=forced_judge("promote"))
    receipt = rig.gate.deploy(DeployRequest("translator", "1.1.0", "alice", override_reason="x"))
    assert receipt.exit_code == 0
    with gate_db.sessions() as session:
        assert list(session.execute(select(Override)).scalars()) == []
    assert "override" not in [a["state"] for a in rig.peers.announcements]


def test_a_release_in_flight_cannot_be_overridden(gate_db: Database, clock: FakeClock) -> None:
    rig = make_rig(gate_db, clock)
    release_id, admitted = rig.gate.admit(DeployRequest("translator", "1.1.0", "alice"))
    assert admitted
    refused = rig.gate.deploy(
        DeployRequest("translator", "1.1.1", "carol", override_reason="I am senior")
    )
    assert refused.exit_code == 2
    assert f"being released by alice (release {release_id}" in refused.summary
    assert rig.deployer.steps() == []


def test_empty_override_reason_is_rejected(gate_db: Database, clock: FakeClock) -> None:
    import pytest

    from release_gate.service import GateError

    rig = make_rig(gate_db, clock)
    with pytest.raises(GateError, match="an override needs a reason"):
        rig.gate.admit(DeployRequest("translator", "1.1.0", "alice", override_reason="  "))
    with pytest.raises(GateError, match="unknown service 'payments'"):
        rig.gate.admit(DeployRequest("payments", "1.1.0", "alice"))
