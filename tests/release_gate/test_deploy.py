"""The release from lock to verdict: promote, roll back, inconclusive and
infrastructure failure, each with its exit code, receipt and announcements."""

from __future__ import annotations

from common.clock import FakeClock
from release_gate.db import Database
from release_gate.models import ReleaseStatus
from release_gate.service import DeployRequest
from tests.release_gate.gate_helpers import NodeTraffic, forced_judge, make_rig


def test_a_good_build_is_promoted_by_the_judge(gate_db: Database, clock: FakeClock) -> None:
    rig = make_rig(gate_db, clock)
    receipt = rig.gate.deploy(DeployRequest("translator", "1.1.0", "alice"))

    assert receipt.exit_code == 0, receipt.summary
    assert receipt.status == "promoted"
    assert receipt.decision == "promote"
    assert receipt.previous_version == "1.0.0"
    assert rig.deployer.steps() == ["deploy_canary", "promote"]
    assert rig.deployer.production_version == "1.1.0"
    # The judge saw real counts: the canary's and both production nodes'.
    error_rate = receipt.verdict["evidence"]["error_rate"]
    assert error_rate["canary_requests"] > 300
    assert error_rate["control_requests"] > error_rate["canary_requests"]
    assert error_rate["ruled_out_ratio"] is not None
    steps = [s.step for s in receipt.steps]
    assert steps[:3] == ["locked", "previous_version", "canary_deployed"]
    assert steps[-3:] == ["decided", "promoting", "promoted"]
    assert "PROMOTED" in receipt.summary
    assert receipt.finished_at is not None and receipt.canary_started_at is not None


def test_a_build_failing_one_route_is_rolled_back_with_an_incident(
    gate_db: Database, clock: FakeClock
) -> None:
    rig = make_rig(gate_db, clock)
    rig.deployer.new_version_traffic = NodeTraffic(rps=20.0, error_share=0.3)
    receipt = rig.gate.deploy(DeployRequest("translator", "1.1.0", "alice"))

    assert receipt.exit_code == 1, receipt.summary
    assert receipt.status == "rolled_back"
    assert rig.deployer.steps() == ["deploy_canary", "rollback_canary"]
    assert rig.deployer.calls[-1] == ("rollback_canary", "translator", "1.0.0")
    assert rig.deployer.production_version == "1.0.0"
    # Decided long before the deadline, from the counts.
    assert receipt.verdict["decided_at"] < 60
    assert receipt.rolled_back_at is not None
    # A "bad release" incident went to postmortems, linked to the release.
    (incident,) = rig.peers.reported
    assert incident["incident_class"] == "bad_release"
    assert incident["service"] == "translator"
    assert incident["source_ref"] == f"release:{receipt.release_id}"
    assert receipt.incident["sent"] is True
    assert "ROLLED BACK to 1.0.0" in receipt.summary


def test_every_step_is_announced_under_one_key(gate_db: Database, clock: FakeClock) -> None:
    rig = make_rig(gate_db, clock, judge_fn=forced_judge("rollback"))
    receipt = rig.gate.deploy(DeployRequest("translator", "1.1.0", "alice"))

    states = [a["state"] for a in rig.peers.announcements]
    assert states == ["started", "canary", "rolled_back"]
    assert {a["key"] for a in rig.peers.announcements} == {f"release:{receipt.release_id}"}
    assert rig.peers.announcements[0]["title"] == "translator 1.0.0 → 1.1.0 by alice"
    assert rig.peers.announcements[0]["labels"]["service"] == "translator"
    assert [a["state"] for a in receipt.announcements] == states
    assert all(a["channel"] == "sentinel" for a in receipt.announcements)


def test_without_a_sentinel_announcements_go_to_stderr_and_are_stored(
    gate_db: Database, clock: FakeClock, capsys
) -> None:  # type: ignore[no-untyped-def]
    rig = make_rig(gate_db, clock, judge_fn=forced_judge("promote"), peers_configured=False)
    receipt = rig.gate.deploy(DeployRequest("translator", "1.1.0", "alice"))

    assert receipt.exit_code == 0
    err = capsys.readouterr().err
    assert "[announce started] translator 1.0.0 → 1.1.0 by alice" in err
    assert "[announce promoted]" in err
    assert [a["channel"] for a in receipt.announcements] == ["stderr"] * 3
    # The guards were skipped, and the receipt says so.
    skipped = receipt.admission["guards"]["skipped"]
    assert any("GATE_POSTMORTEMS_URL" in s for s in skipped)
    assert any("GATE_SENTINEL_URL" in s for s in skipped)
    assert receipt.incident is None


def test_no_traffic_is_inconclusive_at_the_deadline_and_never_promoted(
    gate_db: Database, clock: FakeClock
) -> None:
    rig = make_rig(gate_db, clock)
    rig.deployer.new_version_traffic = NodeTraffic(rps=0.0)
    receipt = rig.gate.deploy(DeployRequest("translator", "1.1.0", "alice"))

    assert receipt.exit_code == 3, receipt.summary
    assert receipt.status == "inconclusive"
    assert rig.deployer.steps() == ["deploy_canary", "rollback_canary"]
    assert rig.deployer.production_version == "1.0.0"
    assert receipt.verdict["evidence"]["error_rate"]["canary_requests"] == 0
    assert rig.peers.reported == []  # not a bad release, no incident


def test_unreadable_canary_metrics_end_inconclusive(gate_db: Database, clock: FakeClock) -> None:
    rig = make_rig(gate_db, clock)
    rig.fleet.unreachable.add("canary")
    receipt = rig.gate.deploy(DeployRequest("translator", "1.1.0", "alice"))

    assert receipt.exit_code == 3
    assert "no counters could be read" in receipt.verdict["reason"]
    assert "sample_failed" in [s.step for s in receipt.steps]
    assert rig.deployer.steps() == ["deploy_canary", "rollback_canary"]


def test_a_failing_deploy_hook_is_exit_4_and_the_canary_is_put_back(
    gate_db: Database, clock: FakeClock
) -> None:
    rig = make_rig(gate_db, clock)
    rig.deployer.fail_on.add("deploy_canary")
    receipt = rig.gate.deploy(DeployRequest("translator", "1.1.0", "alice"))

    assert receipt.exit_code == 4
    assert receipt.status == "failed"
    assert "disk full on canary" in receipt.error
    assert rig.deployer.steps() == ["deploy_canary", "rollback_canary"]
    assert rig.deployer.production_version == "1.0.0"
    assert "FAILED" in receipt.summary


def test_a_failing_promotion_is_exit_4(gate_db: Database, clock: FakeClock) -> None:
    rig = make_rig(gate_db, clock, judge_fn=forced_judge("promote"))
    rig.deployer.fail_on.add("promote")
    receipt = rig.gate.deploy(DeployRequest("translator", "1.1.0", "alice"))

    assert receipt.exit_code == 4
    assert receipt.decision == "promote"
    assert "promote hook exited 1" in receipt.error


def test_state_is_persisted_at_every_step(gate_db: Database, clock: FakeClock) -> None:
    """What the database holds while the canary runs is enough to recover it."""
    seen: list[tuple[str, str | None, bool]] = []
    rig = make_rig(gate_db, clock, judge_fn=forced_judge("promote", after_samples=4))
    original = rig.gate.judge_fn

    def watching(data, config, *, final=False):  # type: ignore[no-untyped-def]
        release = rig.gate._load(1)
        seen.append((release.status.value, release.previous_version, release.samples is None))
        return original(data, config, final=final)

    rig.gate.judge_fn = watching
    receipt = rig.gate.deploy(DeployRequest("translator", "1.1.0", "alice"))
    assert receipt.release_id == 1
    assert seen[0] == (ReleaseStatus.canary.value, "1.0.0", True)
    assert all(not no_samples for _, _, no_samples in seen[1:])
    assert len(receipt.samples["canary"]) == len(seen)
