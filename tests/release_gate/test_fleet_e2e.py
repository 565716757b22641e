"""End to end on the local fleet behind real nginx, through the gate's own
orchestration (lock, canary, sampling of the nodes' /metrics, judge, promote or
roll back, announcements, incident): a good build is promoted; a build that
answers 500 to 30% of ``GET /api/jobs`` is rolled back, and no client request
sent through nginx during that canary received a 500."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from common.clock import SystemClock
from release_gate.announce import Announcer
from release_gate.db import Database
from release_gate.deployers.local_fleet import LocalFleet
from release_gate.guards import Guards
from release_gate.incidents import IncidentReporter
from release_gate.service import DeployRequest, ReleaseGate
from tests.conftest import fresh_database
from tests.release_gate.fleet_helpers import build_info, fleet_section, require_nginx
from tests.release_gate.gate_helpers import POSTMORTEMS, SENTINEL, FakePeers, gate_config

SERVICE = "translator"
BAD_JOBS = {"seed": 5, "http_errors": [{"route": "/api/jobs", "rate": 0.3, "status": 500}]}

# Tuned for test traffic (tens of requests a second for seconds): a promote
# rules out a canary 5xx rate of 8% or more, well under the bad build's 30%; a slow
# first interval of a freshly started node is not what these tests are about,
# hence the lenient latency factor.
CONFIG = """
lock_minutes: 0
sampling_interval_seconds: 1
canary_deadline_seconds: 45
judge:
  min_duration_s: 5
  min_canary_requests: 60
  min_control_requests: 60
  min_error_rate: 0.08
  latency_factor: 4
services:
  translator:
    deployer: {type: local_fleet}
"""


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFleet]:
    require_nginx()
    root = tmp_path_factory.mktemp("e2e")
    with fresh_database(root, "e2e") as url:
        section = fleet_section(
            url,
            canary_share=0.4,  # more canary traffic: quicker decisions
            versions={"1.0.0": {}, "1.1.0": {}, "1.2.0": {"faults": BAD_JOBS}},
        )
        with LocalFleet.from_config(section, root / "state") as running:
            running.start("1.0.0")
            yield running


@pytest.fixture(scope="module")
def token(fleet: LocalFleet) -> str:
    from translator.accounts.service import create_user
    from translator.db import Database as TranslatorDatabase

    db = TranslatorDatabase(fleet.database_url)
    try:
        with db.session() as s:
            _, api_token = create_user(s, "ci-traffic@example.com", SystemClock().now())
    finally:
        db.dispose()
    return api_token


@dataclass
class Users:
    """Client traffic through nginx from a thread, every status counted."""

    url: str
    token: str
    statuses: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=30) as client:
            while not self._stop.is_set():
                try:
                    self.statuses[client.get("/api/jobs").status_code] += 1
                except httpx.HTTPError as exc:
                    self.failures[type(exc).__name__] += 1
                self._stop.wait(0.02)  # ~40 requests a second: gentle on two shared cores

    def __enter__(self) -> Users:
        self._thread = threading.Thread(target=self._run, name="users")
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def _gate(db: Database, fleet: LocalFleet, peers: FakePeers) -> ReleaseGate:
    clock = SystemClock()
    transport = peers.transport()
    return ReleaseGate(
        db,
        gate_config(CONFIG),
        clock=clock,
        deployer_for=lambda _service: fleet,
        guards=Guards(sentinel_url=SENTINEL, postmortems_url=POSTMORTEMS, transport=transport),
        announcer=Announcer(clock, sentinel_url=SENTINEL, transport=transport),
        incidents=IncidentReporter(postmortems_url=POSTMORTEMS, transport=transport),
        wait=time.sleep,  # real nodes, real traffic: the canary needs real seconds
    )


def test_a_good_build_is_promoted_on_the_fleet(gate_db: Database, fleet: LocalFleet, token: str):
    previous = fleet.current_version(SERVICE)
    peers = FakePeers()
    with Users(fleet.proxy_url, token) as users:
        receipt = _gate(gate_db, fleet, peers).deploy(DeployRequest(SERVICE, "1.1.0", "alice"))

    assert receipt.exit_code == 0, receipt.summary
    assert receipt.decision == "promote" and receipt.previous_version == previous
    assert fleet.current_version(SERVICE) == "1.1.0"
    assert {build_info(n)["version"] for n in [fleet.canary, *fleet.production]} == {"1.1.0"}
    evidence = receipt.verdict["evidence"]["error_rate"]
    assert evidence["canary_requests"] >= 60 and evidence["canary_errors"] == 0
    assert evidence["control_requests"] > evidence["canary_requests"]
    assert users.statuses[200] > 0 and set(users.statuses) == {200}, users.statuses
    assert not users.failures
    assert [a["state"] for a in peers.announcements][-1] == "promoted"
    assert peers.reported == []


def test_a_build_failing_one_route_is_rolled_back_and_users_saw_no_500(
    gate_db: Database, fleet: LocalFleet, token: str
):
    previous = fleet.current_version(SERVICE)
    peers = FakePeers()
    with Users(fleet.proxy_url, token) as users:
        receipt = _gate(gate_db, fleet, peers).deploy(DeployRequest(SERVICE, "1.2.0", "bob"))

    assert receipt.exit_code == 1, receipt.summary
    assert receipt.status == "rolled_back"
    # The canary really served the bad build's 500s, and the judge counted them...
    evidence = receipt.verdict["evidence"]["error_rate"]
    assert evidence["canary_errors"] > 0 and evidence["control_errors"] == 0
    # ...while every user request through nginx was answered by production instead.
    assert users.statuses[200] > 0
    assert users.statuses[500] == 0 and set(users.statuses) == {200}, users.statuses
    assert not users.failures
    # Production never left the previous version; the canary is back on it.
    assert fleet.current_version(SERVICE) == previous
    assert {build_info(n)["version"] for n in [fleet.canary, *fleet.production]} == {previous}
    (incident,) = peers.reported
    assert incident["incident_class"] == "bad_release"
    assert incident["source_ref"] == f"release:{receipt.release_id}"
    assert [a["state"] for a in peers.announcements][-1] == "rolled_back"
