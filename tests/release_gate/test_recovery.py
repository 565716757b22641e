"""A gate killed with SIGKILL mid-canary loses nothing: once its heartbeat is
stale, ``release-gate recover`` (or the next deploy of the service) rolls the
canary back and records the release as aborted, even when the killed gate is
left as a zombie that ``kill(pid, 0)`` still finds. Real gate processes, real
hook commands."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from common.db_clock import database_now
from release_gate.db import Database
from release_gate.models import Release, ReleaseStatus
from tests.identity import ADMIN

GATE = str(Path(sys.executable).parent / "release-gate")
METRICS = (
    "# TYPE translator_http_requests counter\n"
    'translator_http_requests_total{method="GET",route="/api/jobs",status="200"} 5\n'
)


class _Metrics(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        body = METRICS.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def metrics_url() -> Iterator[str]:
    """Nodes without traffic: the judge keeps watching until the deadline."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Metrics)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    server.shutdown()
    server.server_close()


def _config(tmp_path: Path, metrics_url: str, deadline: float, name: str) -> Path:
    log = tmp_path / "hooks.log"
    path = tmp_path / name
    path.write_text(
        f"""
sampling_interval_seconds: 0.2
canary_deadline_seconds: {deadline}
judge: {{min_duration_s: 0}}
services:
  translator:
    deployer:
      type: hooks
      current_version: "echo 1.0.0"
      deploy_canary: "echo deploy {{version}} {{node}} >> {log}"
      promote: "echo promote {{version}} {{node}} >> {log}"
      rollback: "echo rollback {{version}} {{node}} >> {log}"
      canary: {{name: preprod, metrics_url: "{metrics_url}"}}
      production: [{{name: prod-1, metrics_url: "{metrics_url}"}}]
""",
        encoding="utf-8",
    )
    return path


def _env(gate_db_url: str, config: Path, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATE_")}
    env.update(
        GATE_DATABASE_URL=gate_db_url,
        GATE_CONFIG=str(config),
        GATE_STATE_DIR=str(tmp_path / "state"),
        GATE_LOG_LEVEL="WARNING",
        GATE_HEARTBEAT_SECONDS="0.2",
        GATE_STALE_AFTER_SECONDS=str(STALE),
    )
    return env


STALE = 1.5  # seconds without a heartbeat before a gate counts as dead


def _wait_until_abandoned(gate_db_url: str, release_id: int) -> float:
    """Poll until the killed gate's heartbeat is stale by the database's clock;
    the seconds that took from the kill's last stamp."""
    db = Database(gate_db_url)
    try:
        deadline = time.monotonic() + 60
        while True:
            with db.sessions() as session:
                now = database_now(session)
                release = session.get(Release, release_id)
                assert release is not None and release.owner_heartbeat_at is not None
                age = (now - release.owner_heartbeat_at).total_seconds()
            if age > STALE:
                return age
            assert time.monotonic() < deadline, "the heartbeat never went stale"
            time.sleep(0.1)
    finally:
        db.dispose()


def _kill_mid_canary(
    gate_db_url: str,
    env: dict[str, str],
    sig: signal.Signals = signal.SIGKILL,
    reap: bool = True,
) -> tuple[int, subprocess.Popen[bytes]]:
    """Start a deploy, wait until its canary is being judged, signal it (and,
    unless ``reap`` is False, collect its exit status, so it is no zombie)."""
    proc = subprocess.Popen(
        [GATE, "deploy", "--service", "translator", "--version", "2.0.0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    db = Database(gate_db_url)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            with db.sessions() as session:
                release = session.query(Release).order_by(Release.id.desc()).first()
                if (
                    release is not None
                    and release.status == ReleaseStatus.canary
                    and (release.samples and len(release.samples["canary"]) >= 2)
                ):
                    release_id = release.id
                    break
            assert time.monotonic() < deadline, "the gate never reached the canary"
            time.sleep(0.05)
    finally:
        db.dispose()
    proc.send_signal(sig)
    if reap:
        proc.wait(30)
    return release_id, proc


def _release(gate_db_url: str, release_id: int) -> Release:
    db = Database(gate_db_url)
    try:
        with db.sessions() as session:
            release = session.get(Release, release_id)
            assert release is not None
            return release
    finally:
        db.dispose()


def test_recover_rolls_back_the_canary_of_a_killed_gate(
    gate_db_url: str, tmp_path: Path, metrics_url: str
) -> None:
    env = _env(gate_db_url, _config(tmp_path, metrics_url, 600, "gate.yaml"), tmp_path)
    release_id, _ = _kill_mid_canary(gate_db_url, env)
    log = tmp_path / "hooks.log"
    assert log.read_text().splitlines() == ["deploy 2.0.0 preprod"]
    assert _release(gate_db_url, release_id).status == ReleaseStatus.canary  # left mid-flight

    _wait_until_abandoned(gate_db_url, release_id)
    done = subprocess.run([GATE, "recover"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    receipt = json.loads(done.stdout.splitlines()[0])
    assert receipt["release_id"] == release_id
    assert receipt["status"] == "aborted"
    assert "ABORTED" in done.stderr
    # The rollback hook ran: the canary is back on the version production runs.
    assert log.read_text().splitlines() == ["deploy 2.0.0 preprod", "rollback 1.0.0 preprod"]
    release = _release(gate_db_url, release_id)
    assert release.status == ReleaseStatus.aborted
    assert release.rolled_back_at is not None
    assert "recovery" in [s.step for s in release.steps]

    # Nothing left to recover; a second call does nothing.
    again = subprocess.run([GATE, "recover"], env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0
    assert "no abandoned releases" in again.stderr
    assert len(log.read_text().splitlines()) == 2


def test_the_next_deploy_finds_the_killed_release_and_rolls_it_back_first(
    gate_db_url: str, tmp_path: Path, metrics_url: str
) -> None:
    env = _env(gate_db_url, _config(tmp_path, metrics_url, 600, "gate.yaml"), tmp_path)
    killed, _ = _kill_mid_canary(gate_db_url, env)
    _wait_until_abandoned(gate_db_url, killed)

    quick = _env(gate_db_url, _config(tmp_path, metrics_url, 0.5, "quick.yaml"), tmp_path)
    done = subprocess.run(
        [GATE, "deploy", "--service", "translator", "--version", "2.0.1"],
        env=quick,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # No traffic at all: inconclusive, the old version left in place.
    assert done.returncode == 3, done.stderr
    receipt = json.loads(done.stdout)
    assert receipt["release_id"] != killed
    assert receipt["status"] == "inconclusive"
    assert (tmp_path / "hooks.log").read_text().splitlines() == [
        "deploy 2.0.0 preprod",
        "rollback 1.0.0 preprod",  # the killed release, put right first
        "deploy 2.0.1 preprod",
        "rollback 1.0.0 preprod",
    ]
    assert _release(gate_db_url, killed).status == ReleaseStatus.aborted


def test_a_cancelled_ci_job_sigterm_rolls_the_canary_back_itself(
    gate_db_url: str, tmp_path: Path, metrics_url: str
) -> None:
    env = _env(gate_db_url, _config(tmp_path, metrics_url, 600, "gate.yaml"), tmp_path)
    release_id, proc = _kill_mid_canary(gate_db_url, env, signal.SIGTERM)
    assert proc.returncode == 4
    assert proc.stdout is not None and proc.stderr is not None
    receipt = json.loads(proc.stdout.read())
    assert receipt["release_id"] == release_id and receipt["status"] == "aborted"
    assert "ABORTED" in proc.stderr.read().decode()
    assert (tmp_path / "hooks.log").read_text().splitlines() == [
        "deploy 2.0.0 preprod",
        "rollback 1.0.0 preprod",
    ]


def _state(pid: int) -> str:
    """The process state letter from /proc (``Z``: a zombie)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rpartition(")")[2].split()[0]


@pytest.mark.slow
def test_a_gate_killed_and_left_as_a_zombie_is_recovered_by_the_next_deploy(
    gate_db_url: str, tmp_path: Path, metrics_url: str
) -> None:
    """SIGKILL mid-canary and nobody reaps the gate: a zombie, which ``kill(pid, 0)``
    still finds. The next deploy must not wait 15 minutes for it: once the zombie's
    heartbeat is stale it rolls the canary back and goes ahead."""
    env = _env(gate_db_url, _config(tmp_path, metrics_url, 600, "gate.yaml"), tmp_path)
    killed, proc = _kill_mid_canary(gate_db_url, env, reap=False)
    try:
        deadline = time.monotonic() + 30
        while _state(proc.pid) != "Z":
            assert time.monotonic() < deadline, "the killed gate never became a zombie"
            time.sleep(0.05)
        os.kill(proc.pid, 0)  # the old liveness check: "alive"
        assert _release(gate_db_url, killed).owner == f"{socket.gethostname()}:{proc.pid}"
        _wait_until_abandoned(gate_db_url, killed)

        quick = _env(gate_db_url, _config(tmp_path, metrics_url, 0.5, "quick.yaml"), tmp_path)
        done = subprocess.run(
            [GATE, "deploy", "--service", "translator", "--version", "2.0.1", "--author", ADMIN],
            env=quick,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert _state(proc.pid) == "Z"  # still a zombie all along
    finally:
        proc.wait(10)
    assert done.returncode == 3, done.stderr  # went ahead (inconclusive: no traffic)
    release = _release(gate_db_url, killed)
    assert release.status == ReleaseStatus.aborted and release.rolled_back_at is not None
    assert (tmp_path / "hooks.log").read_text().splitlines() == [
        "deploy 2.0.0 preprod",
        "rollback 1.0.0 preprod",  # the zombie's canary, put back first
        "deploy 2.0.1 preprod",
        "rollback 1.0.0 preprod",
    ]
