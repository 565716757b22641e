"""Worker heartbeats: a claim whose process stopped heartbeating goes back to
the queue, a heartbeating one stays, the old worker's late result is refused,
and a worker's own connection survives the server dropping it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import select, text

from tests.helpers import make_services
from tests.test_queue import _add_jobs, _job
from translator.files.models import FileStatus
from translator.jobs import queue
from translator.jobs.heartbeat import Heartbeat, HeldClaims
from translator.jobs.hotpath import QueueConnection
from translator.jobs.models import JobStatus, QueueStatus, TranslationQueue
from translator.settings import TranslatorSettings


def _heartbeat(services, held: HeldClaims | None = None) -> Heartbeat:
    """Another process's heartbeat (or this one's, given what it holds): 5 s, 30 s."""
    return Heartbeat(services.db, services.clock, held or HeldClaims(), interval=5, timeout=30)


def _claim(services, worker: str) -> queue.Claim:
    with services.db.session() as s:
        claim = queue.claim(s, worker, services.clock.now())
    assert claim is not None
    return claim


def test_a_silent_claim_goes_back_and_the_late_worker_cannot_finish_it(
    database_url, tmp_path, clock
):
    services = make_services(database_url, tmp_path, clock)
    (job_id,) = _add_jobs(services, 1, tmp_path)
    stale = _claim(services, "killed-worker")  # its process never heartbeats again
    job, _, row = _job(services, job_id)
    assert job.started_at == row.claimed_at == row.heartbeat_at == clock.now()
    survivor = _heartbeat(services)

    clock.advance(seconds=29)
    assert survivor.beat().total == 0  # silent, but not for long enough
    assert _job(services, job_id)[0].status == JobStatus.processing

    clock.advance(seconds=2)
    assert survivor.beat().jobs_requeued == 1
    job, file, row = _job(services, job_id)
    assert job.status == JobStatus.pending and job.retry_count == 1
    assert job.error_message == "Worker stopped heartbeating; requeued (attempt 1)"
    assert file.status == FileStatus.pending
    assert row.status == QueueStatus.queued and row.claim_token is None
    assert row.priority == queue.PRIORITY_NORMAL  # its place in the queue is kept

    # The old worker was only slow: it comes back and finishes its translation.
    assert services.processor.process(stale) == "lost"
    assert _job(services, job_id)[0].status == JobStatus.pending
    assert services.processor.run_once("healthy-worker")
    job, file, row = _job(services, job_id)
    assert job.status == JobStatus.completed and file.status == FileStatus.ready
    assert row.status == QueueStatus.done and row.attempts == 2
    assert row.worker_id == "healthy-worker"
    assert services.metrics.jobs_finished.labels("lost")._value.get() == 1
    assert services.metrics.jobs_finished.labels("completed")._value.get() == 1
    services.close()


def test_a_heartbeating_claim_is_kept(database_url, tmp_path, clock):
    services = make_services(database_url, tmp_path, clock)
    (job_id,) = _add_jobs(services, 1, tmp_path)
    claim = _claim(services, "busy-worker")
    held = HeldClaims()
    held.add(claim)
    own, other = _heartbeat(services, held), _heartbeat(services)

    for _ in range(4):  # two minutes of a long job, beating every 25 s
        clock.advance(seconds=25)
        own.beat()
        clock.advance(seconds=5)
        assert other.beat().total == 0
    assert services.processor.process(claim) == "completed"
    assert _job(services, job_id)[0].status == JobStatus.completed
    services.close()


def test_a_job_that_keeps_killing_its_worker_fails_after_its_retries(
    database_url, tmp_path, clock
):
    services = make_services(database_url, tmp_path, clock)
    (job_id,) = _add_jobs(services, 1, tmp_path)
    survivor = _heartbeat(services)
    for _ in range(queue.MAX_RETRIES + 1):
        _claim(services, "doomed")
        clock.advance(seconds=31)
        survivor.beat()
    job, file, row = _job(services, job_id)
    assert job.status == JobStatus.failed
    assert job.error_message == "Job abandoned by its worker after 3 retries"
    assert file.status == FileStatus.error
    assert file.error_message == "Translation failed after multiple attempts"
    assert row.status == QueueStatus.failed
    services.close()


def test_the_pool_heartbeats_while_a_worker_hangs_in_a_job(database_url, tmp_path, clock):
    """A hung thread in a live process keeps its job: that is the stuck-job scan's case."""
    services = make_services(
        database_url,
        tmp_path,
        clock,
        workers=1,
        worker_poll_seconds=0.01,
        heartbeat_seconds=0.02,
        faults='{"worker_hang": {"rate": 1, "seconds": 3600}}',
    )
    (job_id,) = _add_jobs(services, 1, tmp_path)
    services.workers.start()
    try:
        _wait(lambda: _job(services, job_id)[0].status == JobStatus.processing)
        clock.advance(seconds=31)
        beaten_at = clock.now()
        _wait(lambda: _job(services, job_id)[2].heartbeat_at == beaten_at)
        assert _heartbeat(services).beat().total == 0
        assert _job(services, job_id)[0].status == JobStatus.processing
    finally:
        services.close()


def _wait(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def test_heartbeat_timeout_must_outlast_a_late_beat():
    with pytest.raises(ValidationError, match="at least twice heartbeat_seconds"):
        TranslatorSettings(heartbeat_seconds=10, heartbeat_timeout_seconds=15)


def _drop(connection: QueueConnection, services) -> None:
    """The server (or the network) drops the worker's connection."""
    pooled = connection._connection()
    if services.db.engine.dialect.name == "sqlite":
        pooled.driver_connection.close()
        return
    pid = pooled.driver_connection.info.backend_pid
    with services.db.engine.connect() as admin:
        admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


def test_a_worker_claims_again_on_a_new_connection_after_its_own_dropped(
    database_url, tmp_path: Path, clock
):
    services = make_services(database_url, tmp_path, clock)
    first, second = _add_jobs(services, 2, tmp_path)
    with QueueConnection(services.db.engine) as connection:
        assert services.processor.run_once("w", connection)
        _drop(connection, services)
        assert services.processor.run_once("w", connection)  # no error, no job lost
    for job_id in (first, second):
        assert _job(services, job_id)[0].status == JobStatus.completed
    with services.db.session() as s:
        assert s.scalars(select(TranslationQueue.attempts)).all() == [1, 1]
    services.close()
