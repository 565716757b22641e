"""Chaos: a real ``translator serve`` is SIGKILLed in the middle of a job; the
restarted process takes the job back once the dead one's heartbeat is silent
for the timeout, and finishes it, within a minute, with the defaults
(heartbeat every 5 s, timeout 30 s) and no stuck-job scan."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from tests.daemons import free_port
from tests.helpers import add_user, make_services
from translator.jobs.models import JobStatus, TranslationJob, TranslationQueue

pytestmark = [pytest.mark.slow, pytest.mark.postgres_journey]


class Translator:
    """``translator serve`` in a process of its own."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.log = log
        self.process = subprocess.Popen(
            [sys.executable, "-m", "translator.cli", "serve", "--port", str(port)],
            env={**os.environ, **env},
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )
        _poll(self._healthy, 60, f"{log.name} to serve")

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"{self.log.name} exited:\n{self.log.read_text()[-3000:]}")
        try:
            return httpx.get(f"{self.base}/api/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def _poll(condition, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f}s for {what}")
        time.sleep(0.1)
    return result


def test_a_job_of_a_killed_translator_is_finished_by_its_restart(
    database_url, tmp_path, clock
):
    services = make_services(database_url, tmp_path, clock)  # the test's view of the database
    _, headers = add_user(services, "chaos@example.com")
    env = {
        "TRANSLATOR_DATABASE_URL": database_url,
        "TRANSLATOR_STORAGE_DIR": str(tmp_path / "files"),
        "TRANSLATOR_WORKERS": "1",
        "TRANSLATOR_WORKER_POLL_SECONDS": "0.1",
        "TRANSLATOR_SCHEDULER_ENABLED": "false",  # recovery by heartbeat, not the 10-min scan
    }

    def job() -> tuple[TranslationJob, TranslationQueue]:
        with services.db.session() as s:
            return s.execute(
                select(TranslationJob, TranslationQueue).join(
                    TranslationQueue, TranslationQueue.job_id == TranslationJob.id
                )
            ).one()

    # Ten minutes per block: the first process is mid-job whenever it is killed.
    first = Translator({**env, "TRANSLATOR_OFFLINE_DELAY_MS": "600000"}, tmp_path / "first.log")
    restarted = None
    try:
        upload = httpx.post(
            f"{first.base}/api/files",
            headers=headers,
            files={"file": ("note.txt", b"Hello world")},
            data={"target_lang": "ru", "source_lang": "en"},
            timeout=10,
        )
        assert upload.status_code == 201, upload.text
        file_id = upload.json()["file"]["id"]
        _poll(lambda: job()[0].status == JobStatus.processing, 30, "the first process's claim")
        dead_worker = job()[1].worker_id
        first.kill()
        killed_at = time.monotonic()

        restarted = Translator(env, tmp_path / "restarted.log")
        _poll(lambda: job()[0].status == JobStatus.completed, 60, "the job to be finished")
        recovered_in = time.monotonic() - killed_at
        assert recovered_in < 60, f"finished {recovered_in:.0f}s after the kill"

        finished, row = job()
        assert finished.retry_count == 1 and row.attempts == 2  # taken back once, done once
        assert row.worker_id != dead_worker
        assert "event=job.abandoned_requeued" in (tmp_path / "restarted.log").read_text()
        download = httpx.get(
            f"{restarted.base}/api/files/{file_id}/download", headers=headers, timeout=10
        )
        assert download.text == "[offline en→ru] Привет мир"
    finally:
        first.stop()
        if restarted is not None:
            restarted.stop()
        services.close()
