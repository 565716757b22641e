"""PostgreSQL restarted under load, on a cluster of the test's own: the
translator, the sentinel, postmortems and the release gate all say
``degraded`` (503) while it is down, reconnect by themselves when it is back,
and nothing acknowledged is lost: every accepted upload is translated, every
acknowledged push is stored, the alert that fired before is not paged again
and the one that started during the outage is paged once."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.chaos.pg_cluster import Cluster, own_cluster
from tests.chaos.stack import (
    Lease,
    Pusher,
    clean_environment,
    pages_for,
    start_sentinel,
    wait_for,
)
from tests.conftest import BACKEND, migrate_all
from tests.daemons import Daemon, free_port

BIN = Path(sys.executable).parent
LEASE_SECONDS = 3.0

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres_journey,
    pytest.mark.skipif(BACKEND != "postgres", reason="runs in the PostgreSQL pass"),
]

GATE_CONFIG = """
services:
  translator:
    deployer:
      type: hooks
      deploy_canary: "true"
      promote: "true"
      rollback: "true"
      canary: {name: preprod, metrics_url: "http://127.0.0.1:9/metrics"}
      production: [{name: prod-1, metrics_url: "http://127.0.0.1:9/metrics"}]
"""


@pytest.fixture
def cluster() -> Cluster:
    own = own_cluster()
    yield own
    own.destroy()


def _serve(name: str, command: list[str], env: dict[str, str], workdir: Path) -> Daemon:
    port = free_port()
    log_path = workdir / f"{name}.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            env={**clean_environment(), **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return Daemon(name, f"http://127.0.0.1:{port}", process, log_path)


def _health(daemon: Daemon) -> int | None:
    try:
        return httpx.get(daemon.url + "/api/health", timeout=5, trust_env=False).status_code
    except httpx.HTTPError:
        return None


def test_everything_reconnects_after_a_postgres_restart_and_loses_nothing(
    cluster: Cluster, tmp_path: Path
) -> None:
    url = cluster.url()
    migrate_all(url)
    translator = _serve(
        "translator",
        [str(BIN / "translator"), "serve"],
        {
            "TRANSLATOR_DATABASE_URL": url,
            "TRANSLATOR_STORAGE_DIR": str(tmp_path / "files"),
            "TRANSLATOR_BACKUP_DIR": str(tmp_path / "backups"),
            "TRANSLATOR_WORKERS": "2",
        },
        tmp_path,
    )
    (tmp_path / "gate.yaml").write_text(GATE_CONFIG)
    gate = _serve(
        "gate",
        [str(BIN / "release-gate"), "serve"],
        {
            "GATE_DATABASE_URL": url,
            "GATE_CONFIG": str(tmp_path / "gate.yaml"),
            "GATE_STATE_DIR": str(tmp_path / "gate"),
        },
        tmp_path,
    )
    postmortems = _serve(
        "postmortems",
        [str(BIN / "postmortem"), "serve", "--interval", "1"],
        {
            "POSTMORTEM_DATABASE_URL": url,
            "POSTMORTEM_SENTINEL_DATABASE_URL": url,
            "POSTMORTEM_GATE_DATABASE_URL": url,
        },
        tmp_path,
    )
    try:
        sentinel = start_sentinel("solo", url, tmp_path, lease_seconds=LEASE_SECONDS)
    except AssertionError:
        for d in (translator, gate, postmortems):
            d.stop()
        raise
    outbox = tmp_path / "outbox.jsonl"
    daemons = [translator, gate, postmortems, sentinel]
    lease = Lease(url)
    pusher = Pusher([sentinel.url])
    try:
        for d in daemons:
            d.poll(lambda d=d: _health(d) == 200 or None, 90, f"{d.name} healthy")
        made = subprocess.run(
            [str(BIN / "translator"), "create-user", "load@example.com"],
            env={**clean_environment(), "TRANSLATOR_DATABASE_URL": url},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert made.returncode == 0, made.stderr
        token = made.stdout.strip().rsplit('"api_token": "', 1)[1].rstrip('"}')
        uploads = Uploads(translator.url, token)

        pusher.set("1", 5.0)
        pusher.start()
        wait_for(lambda: pages_for(outbox, "1"), 30, "shard 1's page")
        uploads.send(10)  # some still queued or in flight when the database goes

        cluster.stop()
        down = time.monotonic()
        pusher.set("2", 7.0)  # starts during the outage: refused until the database is back
        uploads.send(3)  # refused (503), never half-accepted
        statuses = {
            d.name: d.poll(lambda d=d: _health(d) if _health(d) == 503 else None, 30, "503")
            for d in daemons
        }
        sentinel_status = statuses[sentinel.name]
        # Down for longer than the sentinel's lease, on purpose: it comes back to a
        # lapsed lease, so it must start a new term (and reload what it had fired).
        time.sleep(max(0.0, down + LEASE_SECONDS + 2 - time.monotonic()))
        cluster.start()
        outage = time.monotonic() - down

        for d in daemons:
            d.poll(lambda d=d: _health(d) == 200 or None, 60, f"{d.name} healthy again")
        recovered = time.monotonic() - down
        wait_for(lambda: pages_for(outbox, "2"), 60, "shard 2's page after the restart")
        uploads.send(5)
        wait_for(lambda: uploads.all_ready(), 120, "every accepted upload translated")

        # A few cycles after the restart: shard 1 must not have been paged again.
        def evaluated_after_restart() -> bool:
            (count,) = lease.query(
                "SELECT count(*) FROM samples WHERE series = 'n=\"1\"' "
                "AND t > clock_timestamp() - make_interval(secs => 3)"
            )[0]
            return count >= 2

        wait_for(evaluated_after_restart, 30, "the sentinel evaluating again")
        pusher.stop()
        missing = [
            (shard, at)
            for shard, at in pusher.acknowledged
            if not lease.query(
                "SELECT 1 FROM pushed_samples WHERE series = :s AND t = :t",
                s=f'n="{shard}"',
                t=at,
            )
        ]
        print(
            f"\npostgres restart: outage {outage:.1f} s, all healthy {recovered:.1f} s after the "
            f"stop; health during the outage {statuses} sentinel={sentinel_status}; uploads "
            f"accepted {len(uploads.accepted)}, refused {uploads.refused}, translated "
            f"{uploads.ready_count()}; pushes acknowledged {len(pusher.acknowledged)}, refused "
            f"{pusher.refused}, missing {len(missing)}; pages shard1="
            f"{len(pages_for(outbox, '1'))} shard2={len(pages_for(outbox, '2'))}"
        )
        assert set(statuses.values()) == {503}  # every service, the sentinel too
        assert uploads.refused == 3 and uploads.ready_count() == len(uploads.accepted) == 15
        assert missing == []
        (term,) = lease.query("SELECT token FROM leases")[0]
        assert term == 2  # the lease lapsed during the outage: a new term after it
        assert len(pages_for(outbox, "1")) == 1
        assert len(pages_for(outbox, "2")) == 1
    finally:
        pusher.stop()
        for d in daemons:
            d.stop()
        lease.close()


class Uploads:
    """Uploads small documents, remembering which were accepted (201)."""

    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.headers = {"Authorization": f"Bearer {token}"}
        self.accepted: list[int] = []
        self.refused = 0

    def send(self, count: int) -> None:
        with httpx.Client(timeout=10, trust_env=False) as client:
            for i in range(count):
                text = f"Hello world number {len(self.accepted) + i}.\n\nThe document is ready.\n"
                try:
                    answer = client.post(
                        self.base + "/api/files",
                        headers=self.headers,
                        files={"file": (f"doc{i}.txt", text.encode())},
                        data={"target_lang": "ru"},
                    )
                except httpx.HTTPError:
                    self.refused += 1
                    continue
                if answer.status_code == 201:
                    self.accepted.append(answer.json()["file"]["id"])
                else:
                    self.refused += 1

    def _statuses(self) -> list[str]:
        with httpx.Client(timeout=10, trust_env=False) as client:
            return [
                client.get(f"{self.base}/api/files/{i}", headers=self.headers).json()["status"]
                for i in self.accepted
            ]

    def ready_count(self) -> int:
        return sum(status == "ready" for status in self._statuses())

    def all_ready(self) -> bool:
        return self.ready_count() == len(self.accepted)
