"""The demo's releases: a small fleet of translator nodes behind nginx (one
preprod node taking a quarter of the traffic, one production node), and two
releases through the gate while users browse it: a good build that is
promoted, then a build failing 30% of `GET /api/plans` that is rolled back
before its 500s reach anyone (nginx retries them on production). ``--short``
releases the bad one only."""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from common.clock import SystemClock
from demo.narrator import Narrator
from release_gate.announce import Announcer
from release_gate.config import parse_config
from release_gate.db import Database
from release_gate.deployers.local_fleet import LocalFleet
from release_gate.guards import Guards
from release_gate.incidents import IncidentReporter
from release_gate.receipts import Receipt
from release_gate.service import DeployRequest, ReleaseGate

# Tuned for demo traffic: decide within a minute, never on too little.
GATE_YAML = """
lock_minutes: 5
sampling_interval_seconds: 2
canary_deadline_seconds: 120
judge: {min_duration_s: 10, min_canary_requests: 100, min_control_requests: 200,
        min_error_rate: 0.05}
services:
  translator:
    deployer: {type: local_fleet}
"""

BAD_ROUTE = "/api/plans"
FLEET = {
    "production_nodes": 1,
    "canary_share": 0.25,
    "env": {"TRANSLATOR_WORKERS": "1"},
    "versions": {
        "1.0.0": {},
        "1.1.0": {},
        "1.2.0": {"faults": {"http_errors": [{"route": BAD_ROUTE, "rate": 0.3}]}},
    },
}
RELEASES = ("1.1.0", "1.2.0")  # a good build, then a bad one
BAD_RELEASE_ONLY = ("1.2.0",)  # --short


def release(
    fleet: LocalFleet,
    version: str,
    token: str,
    gate_database_url: str,
    sentinel_url: str | None,
    postmortems_url: str | None,
    stop: threading.Event | None = None,
) -> Receipt:
    """One release on a running fleet through the gate's own orchestration, by the
    pipeline account whose platform token is ``token`` (its author). Setting
    ``stop`` interrupts it at its next wait: the gate puts the canary back and records
    the release as aborted."""
    clock = SystemClock()
    db = Database(gate_database_url)
    db.migrate()
    try:
        gate = ReleaseGate(
            db,
            parse_config(GATE_YAML, "demo gate configuration"),
            clock=clock,
            deployer_for=lambda _service: fleet,
            guards=Guards(
                sentinel_url=sentinel_url,
                postmortems_url=postmortems_url,
                sentinel_token=token,
                postmortems_token=token,
            ),
            announcer=Announcer(clock, sentinel_url=sentinel_url, token=token),
            incidents=IncidentReporter(postmortems_url=postmortems_url, token=token),
            wait=_interruptible_wait(stop or threading.Event()),
        )
        return gate.deploy(DeployRequest("translator", version, author_of(token)))
    finally:
        db.dispose()


def _interruptible_wait(stop: threading.Event) -> Callable[[float], None]:
    def wait(seconds: float) -> None:
        if stop.wait(seconds):
            raise KeyboardInterrupt  # the gate's own handling of an interrupted release

    return wait


def author_of(token: str) -> str:
    """The account a platform token belongs to: who releases."""
    from common.identity import open_store

    store = open_store()
    try:
        caller = store.authenticate(token)
    finally:
        store.dispose()
    if caller is None:
        raise ValueError("the release pipeline's token is not a live platform token")
    return caller.name


@dataclass
class FleetNews:
    """What the releases thread shares with the story: what users saw through nginx
    (statuses; 0: no answer), and when the releases are over (or could not start)."""

    users: Counter[int] = field(default_factory=Counter)
    done: threading.Event = field(default_factory=threading.Event)

    def users_saw(self) -> str:
        seen = self.users.copy()  # the browsing thread keeps counting
        errors = sum(n for status, n in seen.items() if status >= 500 or status == 0)
        return f"{sum(seen.values())} requests through nginx, {errors} errors"


@contextlib.contextmanager
def browsing(url: str, seen: Counter[int]) -> Iterator[None]:
    """Users reading the plans page through nginx, counting the statuses they see."""
    stop = threading.Event()

    def run() -> None:
        with httpx.Client(base_url=url, timeout=10) as client:
            while not stop.is_set():
                try:
                    seen[client.get(BAD_ROUTE).status_code] += 1
                except httpx.HTTPError:
                    seen[0] += 1
                stop.wait(0.01)

    thread = threading.Thread(target=run, name="demo-fleet-users", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)


def run_releases(
    state_dir: Path,
    versions: tuple[str, ...],
    gate_database_url: str,
    sentinel_url: str | None,
    postmortems_url: str | None,
    stop: threading.Event,
    token: str,
    news: FleetNews,
    narrator: Narrator,
) -> None:
    """Start the fleet, release ``versions`` in turn, keep the fleet until ``stop``.
    What the gate does is told by the story from the gate's records."""
    try:
        fleet = LocalFleet.from_config(FLEET, state_dir)
        fleet.start("1.0.0")
    except Exception as exc:  # noqa: BLE001 - the rest of the demo goes on without releases
        narrator.say("RELEASES", f"skipped: the local fleet could not start: {exc}")
        news.done.set()
        return
    with fleet:
        narrator.say(
            "FLEET",
            f"up on 1.0.0: a preprod node (a quarter of the traffic) and a production node "
            f"behind nginx at {fleet.proxy_url}; users browse {BAD_ROUTE}",
        )
        with browsing(fleet.proxy_url, news.users):
            try:
                for version in versions:
                    if stop.is_set():
                        break
                    release(
                        fleet,
                        version,
                        token,
                        gate_database_url,
                        sentinel_url,
                        postmortems_url,
                        stop,
                    )
            except KeyboardInterrupt:
                narrator.say("RELEASE", "aborted: the demo stopped (the gate put the canary back)")
            except Exception as exc:  # noqa: BLE001 - told, and the story goes on
                narrator.say("RELEASE", f"the gate failed: {exc}")
            finally:
                news.done.set()
            stop.wait()
