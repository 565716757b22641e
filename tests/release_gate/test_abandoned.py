"""Finding and putting right releases whose gate died, in-process: a dead
process on this host, a silent gate on another host, a kill while promoting,
and a rollback that fails during recovery."""

from __future__ import annotations

import socket

import pytest

from common.clock import FakeClock
from release_gate.db import Database
from release_gate.models import Release, ReleaseStatus
from release_gate.recovery import abandoned_releases, recover_abandoned
from release_gate.service import DeployRequest, GateError
from tests.release_gate.gate_helpers import forced_judge, make_rig

DEAD_HERE = f"{socket.gethostname()}:999999999"  # no such process


def _set_status(db: Database, release_id: int, status: ReleaseStatus) -> None:
    with db.session() as session:
        release = session.get(Release, release_id)
        assert release is not None
        release.status = status
        release.previous_version = "1.0.0"


def test_a_dead_gate_on_this_host_is_found_and_its_canary_rolled_back(
    gate_db: Database, clock: FakeClock
) -> None:
    dead = make_rig(gate_db, clock, owner=DEAD_HERE)
    release_id, admitted = dead.gate.admit(DeployRequest("translator", "2.0", "alice"))
    assert admitted
    _set_status(gate_db, release_id, ReleaseStatus.canary)

    live = make_rig(gate_db, clock, judge_fn=forced_judge("promote"))
    assert [r.id for r in abandoned_releases(live.gate)] == [release_id]
    (receipt,) = recover_abandoned(live.gate)
    assert receipt.status == "aborted" and receipt.exit_code == 4
    assert live.deployer.calls[-1] == ("rollback_canary", "translator", "1.0.0")
    assert [a["state"] for a in live.peers.announcements] == ["aborted"]
    assert abandoned_releases(live.gate) == []
    # The dead release's author keeps the cooldown; others wait.
    assert live.gate.deploy(DeployRequest("translator", "2.1", "bob")).exit_code == 2
    assert live.gate.deploy(DeployRequest("translator", "2.1", "alice")).exit_code == 0


def test_a_live_gate_is_left_alone_and_a_silent_remote_one_is_taken_over(
    gate_db: Database, clock: FakeClock
) -> None:
    remote = make_rig(gate_db, clock, owner="other-host:4242")
    release_id, _ = remote.gate.admit(DeployRequest("translator", "2.0", "alice"))
    _set_status(gate_db, release_id, ReleaseStatus.canary)
    here = make_rig(gate_db, clock)
    # The other host's gate wrote a minute ago: alive as far as we can tell.
    clock.advance(minutes=1)
    assert abandoned_releases(here.gate) == []
    clock.advance(seconds=here.gate.stale_after_seconds)
    assert [r.id for r in abandoned_releases(here.gate)] == [release_id]


def test_a_gate_killed_while_promoting_finishes_the_promotion(
    gate_db: Database, clock: FakeClock
) -> None:
    dead = make_rig(gate_db, clock, owner=DEAD_HERE)
    release_id, _ = dead.gate.admit(DeployRequest("translator", "2.0", "alice"))
    _set_status(gate_db, release_id, ReleaseStatus.promoting)

    live = make_rig(gate_db, clock)
    (receipt,) = recover_abandoned(live.gate)
    assert receipt.status == "promoted" and receipt.exit_code == 0
    assert live.deployer.production_version == "2.0"
    assert ("rollback_canary", "translator", "1.0.0") not in live.deployer.calls


def test_a_failing_recovery_blocks_the_next_deploy_with_exit_4(
    gate_db: Database, clock: FakeClock
) -> None:
    dead = make_rig(gate_db, clock, owner=DEAD_HERE)
    release_id, _ = dead.gate.admit(DeployRequest("translator", "2.0", "alice"))
    _set_status(gate_db, release_id, ReleaseStatus.canary)

    live = make_rig(gate_db, clock)
    live.deployer.fail_on.add("rollback_canary")
    with pytest.raises(GateError, match="(?s)could not be put right.*disk full"):
        live.gate.admit(DeployRequest("translator", "2.1", "alice"))
    assert live.deployer.steps() == ["rollback_canary"]  # tried, and nothing new deployed
    with gate_db.sessions() as session:
        release = session.get(Release, release_id)
        assert release is not None
        assert release.status == ReleaseStatus.canary  # still in flight: recover again later
        assert "recovery_failed" in [s.step for s in release.steps]
    # Once the rollback works again, the next call puts it right and goes ahead.
    live.deployer.fail_on.clear()
    receipt = live.gate.deploy(DeployRequest("translator", "2.1", "alice"))
    assert receipt.status != "refused"
    assert live.deployer.steps()[:3] == ["rollback_canary", "rollback_canary", "deploy_canary"]
