"""``GET /api/health`` of ``release-gate serve`` tells the truth: 503
``degraded`` with the reason when its database does not answer, or when a
release is left in flight by a gate that stopped beating."""

from __future__ import annotations

from fastapi.testclient import TestClient

from common.clock import FakeClock
from release_gate.api import create_app
from release_gate.db import Database
from release_gate.models import ReleaseStatus
from release_gate.recovery import recover_abandoned
from release_gate.service import DeployRequest
from tests.release_gate.gate_helpers import make_rig
from tests.release_gate.test_abandoned import _set_status, silence
from tests.sources.conftest import closed_port


def test_healthy_while_releases_in_flight_have_a_live_owner(gate_db: Database, clock: FakeClock):
    rig = make_rig(gate_db, clock)
    rig.gate.admit(DeployRequest("translator", "2.0", "alice"))  # stamped now: alive
    answer = TestClient(create_app(rig.gate)).get("/api/health")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "healthy" and body["reason"] is None
    assert body["checks"]["database"] == {"status": "ok"}
    assert body["checks"]["releases"]["in_flight"] == 1


def test_a_release_left_by_a_dead_gate_degrades_until_it_is_recovered(
    gate_db: Database, clock: FakeClock
):
    dead = make_rig(gate_db, clock, owner="ci-runner-7:4242")
    release_id, _ = dead.gate.admit(DeployRequest("translator", "2.0", "alice"))
    _set_status(gate_db, release_id, ReleaseStatus.canary)
    silence(gate_db, release_id, 120)
    live = make_rig(gate_db, clock)
    client = TestClient(create_app(live.gate))

    answer = client.get("/api/health")
    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "degraded"
    assert body["reason"].startswith(
        f"release {release_id} (translator 2.0) is left canary: its gate ci-runner-7:4242 "
        "has not beaten for 12"
    )
    assert body["reason"].endswith("run `release-gate recover`")
    (stale,) = body["checks"]["releases"]["stale"]
    assert stale["release_id"] == release_id and stale["silent_seconds"] >= 120

    recover_abandoned(live.gate)
    assert client.get("/api/health").json()["status"] == "healthy"


def test_a_database_that_does_not_answer_degrades(clock: FakeClock):
    db = Database(f"postgresql://vigil@127.0.0.1:{closed_port()}/gate")
    rig = make_rig(db, clock)
    answer = TestClient(create_app(rig.gate)).get("/api/health")
    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "degraded"
    assert body["reason"] == "the gate's database does not answer (OperationalError)"
    assert body["checks"]["database"] == {"status": "error", "error": "OperationalError"}
    db.dispose()
