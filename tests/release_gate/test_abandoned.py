"""Finding and putting right releases whose gate died, in-process: a gate
that stopped beating (wherever it ran), a live gate left alone however old its
last step, a kill while promoting, and a rollback that fails during recovery.
Liveness is the owner's heartbeat on the database's clock, nothing else."""

from __future__ import annotations

import os
import socket
import time

import pytest
from sqlalchemy import update

from common.clock import FakeClock
from common.db_clock import database_now
from release_gate.db import Database
from release_gate.models import Release, ReleaseStatus
from release_gate.recovery import abandoned_releases, recover_abandoned
from release_gate.service import DeployRequest, GateError
from tests.release_gate.gate_helpers import forced_judge, make_rig

DEAD = "ci-runner-7:4242"  # stands in for a gate that died (no heartbeat thread)
# This very process, as a zombie of itself would look to kill(pid, 0): it exists.
ZOMBIE_LIKE = f"{socket.gethostname()}:{os.getpid()}"


def _set_status(db: Database, release_id: int, status: ReleaseStatus) -> None:
    with db.session() as session:
        release = session.get(Release, release_id)
        assert release is not None
        release.status = status
        release.previous_version = "1.0.0"


def silence(db: Database, release_id: int, seconds: float) -> None:
    """What the database holds once the owner has not beaten for ``seconds``."""
    with db.session() as session:
        from datetime import timedelta

        then = database_now(session) - timedelta(seconds=seconds)
        session.execute(
            update(Release).where(Release.id == release_id).values(owner_heartbeat_at=then)
        )


def test_a_gate_that_stopped_beating_is_found_and_its_canary_rolled_back(
    gate_db: Database, clock: FakeClock
) -> None:
    dead = make_rig(gate_db, clock, owner=DEAD)
    release_id, admitted = dead.gate.admit(DeployRequest("translator", "2.0", "alice"))
    assert admitted
    _set_status(gate_db, release_id, ReleaseStatus.canary)

    live = make_rig(gate_db, clock, judge_fn=forced_judge("promote"))
    assert abandoned_releases(live.gate) == []  # stamped at admission: alive for now
    silence(gate_db, release_id, live.gate.stale_after_seconds + 1)
    assert [r.id for r in abandoned_releases(live.gate)] == [release_id]
    (receipt,) = recover_abandoned(live.gate)
    assert receipt.status == "aborted" and receipt.exit_code == 4
    assert live.deployer.calls[-1] == ("rollback_canary", "translator", "1.0.0")
    assert [a["state"] for a in live.peers.announcements] == ["aborted"]
    assert abandoned_releases(live.gate) == []
    # The dead release's author keeps the cooldown; others wait.
    assert live.gate.deploy(DeployRequest("translator", "2.1", "bob")).exit_code == 2
    assert live.gate.deploy(DeployRequest("translator", "2.1", "alice")).exit_code == 0


def test_a_process_that_exists_but_does_not_beat_is_dead(gate_db: Database, clock: FakeClock):
    """The old check, ``kill(pid, 0)``, said a zombie (or a reused pid) was alive
    and refused the next deploy for 15 minutes. The heartbeat does not care."""
    zombie = make_rig(gate_db, clock, owner=ZOMBIE_LIKE)
    release_id, _ = zombie.gate.admit(DeployRequest("translator", "2.0", "alice"))
    _set_status(gate_db, release_id, ReleaseStatus.canary)
    silence(gate_db, release_id, zombie.gate.stale_after_seconds + 1)
    other = make_rig(gate_db, clock, judge_fn=forced_judge("promote"))
    receipt = other.gate.deploy(DeployRequest("translator", "2.1", "alice"))
    assert receipt.status == "promoted"  # the zombie's canary was rolled back first
    assert other.deployer.steps() == ["rollback_canary", "deploy_canary", "promote"]


def test_a_beating_gate_is_left_alone_however_long_ago_it_wrote(
    gate_db: Database, clock: FakeClock
) -> None:
    remote = make_rig(gate_db, clock, owner="other-host:4242", heartbeat_seconds=0.05)
    release_id, _ = remote.gate.admit(DeployRequest("translator", "2.0", "alice"))
    _set_status(gate_db, release_id, ReleaseStatus.canary)
    here = make_rig(gate_db, clock)
    # Its last step is an hour old by anyone's clock, but it beats: alive.
    clock.advance(hours=1)
    silence(gate_db, release_id, here.gate.stale_after_seconds + 1)
    deadline = time.monotonic() + 30
    while abandoned_releases(here.gate):  # its next beat makes it fresh again
        assert time.monotonic() < deadline, "the heartbeat never renewed the stamp"
        time.sleep(0.05)
    # It dies (its heartbeat stops): once the stamp is stale, it is abandoned.
    remote.gate.close()
    silence(gate_db, release_id, here.gate.stale_after_seconds + 1)
    assert [r.id for r in abandoned_releases(here.gate)] == [release_id]


def test_a_gate_killed_while_promoting_finishes_the_promotion(
    gate_db: Database, clock: FakeClock
) -> None:
    dead = make_rig(gate_db, clock, owner=DEAD)
    release_id, _ = dead.gate.admit(DeployRequest("translator", "2.0", "alice"))
    _set_status(gate_db, release_id, ReleaseStatus.promoting)
    silence(gate_db, release_id, 3600)

    live = make_rig(gate_db, clock)
    (receipt,) = recover_abandoned(live.gate)
    assert receipt.status == "promoted" and receipt.exit_code == 0
    assert live.deployer.production_version == "2.0"
    assert ("rollback_canary", "translator", "1.0.0") not in live.deployer.calls


def test_a_failing_recovery_blocks_the_next_deploy_with_exit_4(
    gate_db: Database, clock: FakeClock
) -> None:
    dead = make_rig(gate_db, clock, owner=DEAD)
    release_id, _ = dead.gate.admit(DeployRequest("translator", "2.0", "alice"))
    _set_status(gate_db, release_id, ReleaseStatus.canary)
    silence(gate_db, release_id, 3600)

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
