"""Release history and the change-failure rate (contract 4)."""

from __future__ import annotations

from datetime import timedelta

from common.clock import FakeClock
from release_gate.db import Database
from release_gate.history import change_failure_rate, releases_between
from release_gate.service import DeployRequest
from tests.release_gate.gate_helpers import forced_judge, make_rig


def test_history_lists_releases_and_counts_rollbacks_as_change_failures(
    gate_db: Database, clock: FakeClock
) -> None:
    start = clock.now()
    promote = make_rig(gate_db, clock, judge_fn=forced_judge("promote"))
    rollback = make_rig(gate_db, clock, judge_fn=forced_judge("rollback"))

    assert promote.gate.deploy(DeployRequest("translator", "1.1", "alice")).exit_code == 0
    assert rollback.gate.deploy(DeployRequest("translator", "1.2", "alice")).exit_code == 1
    assert promote.gate.deploy(DeployRequest("translator", "1.3", "bob")).exit_code == 2
    clock.advance(hours=1)
    assert promote.gate.deploy(DeployRequest("billing", "9", "bob")).exit_code == 0
    end = clock.now() + timedelta(seconds=1)

    everything = releases_between(gate_db, start, end)
    assert [(r.service, r.version, r.status) for r in everything] == [
        ("translator", "1.1", "promoted"),
        ("translator", "1.2", "rolled_back"),
        ("translator", "1.3", "refused"),
        ("billing", "9", "promoted"),
    ]
    rolled = everything[1]
    assert rolled.previous_version == "1.0.0"
    assert rolled.rolled_back_at is not None and rolled.decision == "rollback"

    translator = change_failure_rate(gate_db, start, end, "translator")
    assert (translator.releases, translator.failed, translator.rate) == (2, 1, 0.5)
    overall = change_failure_rate(gate_db, start, end)
    assert (overall.releases, overall.failed) == (3, 1)
    # A window is half-open on the start time.
    early = releases_between(gate_db, start, start + timedelta(minutes=30), "billing")
    assert early == []
    assert change_failure_rate(gate_db, end, end + timedelta(days=1)).rate is None
