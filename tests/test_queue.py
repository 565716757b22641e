"""The database-backed queue: exactly-once under competition, the retry
policy, stuck-job recovery and hung workers, with an injected clock."""

from __future__ import annotations

import multiprocessing as mp
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from common.clock import FakeClock
from tests.helpers import make_services
from translator.files.models import File, FileStatus
from translator.jobs import queue
from translator.jobs.models import JobStatus, QueueStatus, TranslationJob, TranslationQueue
from translator.jobs.service import create_job
from translator.ops.maintenance import check_and_fix_stuck_jobs


def _add_jobs(services, count: int, tmp_path: Path) -> list[int]:
    source = tmp_path / "shared.txt"
    source.write_text("Hello world")
    ids = []
    with services.db.session() as s:
        for i in range(count):
            f = File(
                original_name=f"f{i}.txt",
                file_format="txt",
                size_bytes=11,
                file_path=str(source),
                status=FileStatus.pending,
                source_lang="en",
                target_lang="ru",
                created_at=services.clock.now(),
            )
            s.add(f)
            s.flush()
            ids.append(create_job(s, f, ["Hello world"], "offline", services.clock.now()).id)
    return ids


def _job(services, job_id):
    with services.db.session() as s:
        job = s.get(TranslationJob, job_id)
        row = s.scalar(select(TranslationQueue).where(TranslationQueue.job_id == job_id))
        return job, job.file, row


def _compete(database_url: str, tmp: str, threads: int, results) -> None:  # type: ignore[no-untyped-def]
    """One OS process with ``threads`` workers; reports the job ids it processed."""
    services = make_services(database_url, Path(tmp), FakeClock())
    done: list[int] = []
    lock = threading.Lock()

    def work(worker_id: str) -> None:
        while True:
            with services.db.session() as s:
                claim = queue.claim(s, worker_id, services.clock.now())
            if claim is None:
                return
            assert services.processor.process(claim) == "completed"
            with lock:
                done.append(claim.job_id)

    pool = [
        threading.Thread(target=work, args=(f"p{mp.current_process().pid}w{i}",))
        for i in range(threads)
    ]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    results.put(done)
    services.close()


def test_four_workers_in_two_processes_do_each_job_exactly_once(database_url, tmp_path, clock):
    services = make_services(database_url, tmp_path, clock)
    job_ids = _add_jobs(services, 500, tmp_path)
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_compete, args=(database_url, str(tmp_path), 2, results))
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    processed = [results.get(timeout=240) for _ in procs]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    everything = processed[0] + processed[1]
    assert sorted(everything) == sorted(job_ids)  # none lost, none twice
    assert processed[0] and processed[1]  # both processes took part
    with services.db.session() as s:
        rows = s.scalars(select(TranslationQueue)).all()
        assert {r.status for r in rows} == {QueueStatus.done}
        assert {r.attempts for r in rows} == {1}
        statuses = s.scalars(select(TranslationJob.status)).all()
        assert set(statuses) == {JobStatus.completed}
    services.close()


def test_priority_order(database_url, tmp_path, clock):
    services = make_services(database_url, tmp_path, clock)
    normal, retry, urgent = _add_jobs(services, 3, tmp_path)
    with services.db.session() as s:
        queue.enqueue(s, retry, clock.now(), priority=queue.retry_priority(1))
        queue.enqueue(s, urgent, clock.now(), priority=queue.PRIORITY_MANUAL_RETRY)
    order = []
    with services.db.session() as s:
        while (c := queue.claim(s, "w", clock.now())) is not None:
            order.append(c.job_id)
    assert order == [urgent, normal, retry]
    services.close()


def test_retry_policy_then_failure_with_message(database_url, tmp_path, clock):
    services = make_services(
        database_url,
        tmp_path,
        clock,
        faults='{"llm_failures": [{"provider": "offline", "rate": 1}]}',
    )
    (job_id,) = _add_jobs(services, 1, tmp_path)
    for attempt in (1, 2, 3):
        assert services.processor.run_once("w1")
        job, file, row = _job(services, job_id)
        assert job.status == JobStatus.pending and job.retry_count == attempt
        assert row.status == QueueStatus.queued and row.priority == 100 + attempt * 10
        assert job.error_message == f"Retry {attempt}: LLMResponseError: injected failure (offline)"
        assert file.status == FileStatus.pending
    assert services.processor.run_once("w1")
    job, file, row = _job(services, job_id)
    assert job.status == JobStatus.failed and row.status == QueueStatus.failed
    assert file.status == FileStatus.error
    assert file.error_message == "Translation failed: LLMResponseError: injected failure (offline)"
    # Every attempt went through the provider's retries and was counted once.
    assert services.metrics.llm_calls.labels("offline", "error")._value.get() == 4
    assert not services.processor.run_once("w1")  # nothing left to do
    services.close()


def test_stuck_job_is_requeued_and_the_late_worker_cannot_finish_it(database_url, tmp_path, clock):
    services = make_services(database_url, tmp_path, clock)
    (job_id,) = _add_jobs(services, 1, tmp_path)
    with services.db.session() as s:
        stale = queue.claim(s, "hung-worker", clock.now())
    clock.advance(minutes=9)
    assert check_and_fix_stuck_jobs(services, clock.now()).total == 0  # not stuck yet
    clock.advance(minutes=2)
    report = check_and_fix_stuck_jobs(services, clock.now())
    assert report.jobs_requeued == 1
    job, file, row = _job(services, job_id)
    assert job.status == JobStatus.pending and job.retry_count == 1
    assert row.status == QueueStatus.queued

    # The hung worker wakes up: its result is refused, the job is not done twice.
    assert services.processor.process(stale) == "lost"
    assert services.processor.run_once("healthy-worker")
    job, file, _ = _job(services, job_id)
    assert job.status == JobStatus.completed and file.status == FileStatus.ready
    services.close()


def test_stuck_job_fails_after_three_recoveries(database_url, tmp_path, clock):
    services = make_services(database_url, tmp_path, clock)
    (job_id,) = _add_jobs(services, 1, tmp_path)
    for _ in range(4):
        with services.db.session() as s:
            assert queue.claim(s, "hung", clock.now()) is not None
        clock.advance(minutes=11)
        check_and_fix_stuck_jobs(services, clock.now())
    job, file, row = _job(services, job_id)
    assert job.status == JobStatus.failed and job.error_message == "Job stuck after 3 retries"
    assert file.status == FileStatus.error
    assert file.error_message == "Translation failed after multiple attempts"
    assert row.status == QueueStatus.failed
    services.close()


def test_file_left_processing_by_failed_job_goes_to_error(database_url, tmp_path, clock):
    services = make_services(database_url, tmp_path, clock)
    (job_id,) = _add_jobs(services, 1, tmp_path)
    with services.db.session() as s:
        job = s.get(TranslationJob, job_id)
        job.status = JobStatus.failed
        job.file.status = FileStatus.processing
    assert check_and_fix_stuck_jobs(services, clock.now()).files_fixed == 1
    _, file, _ = _job(services, job_id)
    assert file.status == FileStatus.error
    services.close()


def test_hung_worker_fault_holds_the_job_until_recovered(database_url, tmp_path, clock):
    services = make_services(
        database_url, tmp_path, clock, faults='{"worker_hang": {"rate": 1, "seconds": 3600}}'
    )
    (job_id,) = _add_jobs(services, 1, tmp_path)
    outcome: list[str] = []
    worker = threading.Thread(
        target=lambda: outcome.append(
            "worked" if services.processor.run_once("hanging") else "idle"
        )
    )
    worker.start()
    while _job(services, job_id)[0].status != JobStatus.processing:
        worker.join(0.01)
    clock.advance(minutes=11)
    assert check_and_fix_stuck_jobs(services, clock.now()).jobs_requeued == 1
    services.processor.stop.set()  # wake the hung worker instead of waiting an hour
    worker.join(10)
    assert outcome == ["worked"]
    job, _, row = _job(services, job_id)
    assert job.status == JobStatus.pending and row.status == QueueStatus.queued
    services.close()


def test_partial_translation_is_kept_for_the_retry(database_url, tmp_path, clock):
    services = make_services(database_url, tmp_path, clock)
    source = tmp_path / "two.txt"
    source.write_text("Hello\n\nworld")
    with services.db.session() as s:
        f = File(
            original_name="two.txt",
            file_format="txt",
            size_bytes=12,
            file_path=str(source),
            source_lang="en",
            target_lang="ru",
            created_at=clock.now(),
        )
        s.add(f)
        s.flush()
        job_id = create_job(s, f, ["Hello", "world"], "offline", clock.now()).id

    calls: list[str] = []
    real = services.providers.get("offline")

    class FlakyOnSecond:
        def translate(self, text, src, dst):
            calls.append(text)
            if text == "world" and calls.count("world") == 1:
                raise RuntimeError("provider hiccup")
            return real.translate(text, src, dst)

    services.processor.providers = type("P", (), {"get": lambda self, name: FlakyOnSecond()})()
    services.processor.run_once("w")
    assert _job(services, job_id)[0].blocks_done == 1
    services.processor.run_once("w")
    assert calls == ["Hello", "world", "world"]  # "Hello" was not translated twice
    job, file, _ = _job(services, job_id)
    assert job.status == JobStatus.completed
    assert Path(file.translated_path).read_text() == (
        "[offline en→ru] Привет\n\n[offline en→ru] мир"
    )
    services.close()


@pytest.mark.parametrize("delta", [timedelta(minutes=10, seconds=1)])
def test_reset_stuck_threshold_is_configurable(database_url, tmp_path, clock, delta):
    services = make_services(database_url, tmp_path, clock)
    _add_jobs(services, 1, tmp_path)
    with services.db.session() as s:
        queue.claim(s, "w", clock.now())
    clock.advance(delta)
    assert check_and_fix_stuck_jobs(services, clock.now(), timedelta(hours=1)).total == 0
    assert check_and_fix_stuck_jobs(services, clock.now()).jobs_requeued == 1
    services.close()
