"""The database-backed priority queue (``translation_queue``).

Lower priority numbers are served first: 10 for a manual retry, 50 for new
work, ``100 + retry_count * 10`` for automatic retries (seed 000 §2.4).

Claiming is one UPDATE over a sub-select of the best queued row. PostgreSQL
adds ``FOR UPDATE SKIP LOCKED`` so competing workers take different rows
without waiting; SQLite serialises writers (every transaction is BEGIN
IMMEDIATE, see ``common.db``) and the ``status = 'queued'`` guard makes the
update a no-op for a row someone else took. Every claim gets a fresh token,
and results are only recorded under the token that is still current, so a
worker whose job was taken back (stuck, or its process stopped heartbeating)
cannot finish it a second time.

The hot path (claim-and-load, complete) is hand-written SQL in
``translator.jobs.hotpath``; this module keeps the policy: enqueueing,
failures and retries, heartbeats and taking jobs back."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from common.logs import get_logger
from translator.files.models import File, FileStatus
from translator.jobs.hotpath import Claim, Work, hot_path_for, new_token
from translator.jobs.models import JobStatus, QueueStatus, TranslationJob, TranslationQueue

log = get_logger(__name__)

PRIORITY_MANUAL_RETRY = 10
PRIORITY_NORMAL = 50
MAX_RETRIES = 3


def retry_priority(retry_count: int) -> int:
    return 100 + retry_count * 10


def enqueue(session: Session, job_id: int, now: datetime, priority: int = PRIORITY_NORMAL) -> None:
    """Put a job in the queue, or back into it."""
    row = session.scalar(select(TranslationQueue).where(TranslationQueue.job_id == job_id))
    if row is None:
        session.add(TranslationQueue(job_id=job_id, priority=priority, enqueued_at=now, attempts=0))
    else:
        row.status = QueueStatus.queued
        row.priority = priority
        row.enqueued_at = now
        row.claim_token = None
        row.worker_id = None
        row.claimed_at = None
        row.heartbeat_at = None


def claim(session: Session, worker_id: str, now: datetime) -> Claim | None:
    """Atomically take the best queued job, or return None if there is none.

    Marks the job and its file as processing in the session's transaction;
    the caller commits. Workers use ``QueueConnection.claim`` instead, which
    runs the same SQL on their own connection."""
    claimed = claim_with_work(session, worker_id, now)
    return None if claimed is None else claimed[0]


def claim_with_work(session: Session, worker_id: str, now: datetime) -> tuple[Claim, Work] | None:
    connection = session.connection()
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        claimed = hot_path_for(connection.dialect.name).claim(cursor, worker_id, new_token(), now)
    finally:
        cursor.close()
    if claimed is not None:
        log_claimed(claimed[0])
    return claimed


def log_claimed(claim: Claim) -> None:
    log.info("job.claimed", job_id=claim.job_id, worker=claim.worker_id, attempt=claim.attempt)


def _hold(session: Session, claim: Claim) -> TranslationQueue | None:
    """The queue row, locked, if this claim still owns it."""
    return session.scalar(
        select(TranslationQueue)
        .where(
            TranslationQueue.job_id == claim.job_id,
            TranslationQueue.claim_token == claim.token,
            TranslationQueue.status == QueueStatus.processing,
        )
        .with_for_update()
    )


def still_owned(session: Session, claim: Claim) -> bool:
    return _hold(session, claim) is not None


def heartbeat(session: Session, tokens: Collection[str], now: datetime) -> int:
    """Mark these claims alive; returns how many are still held (others were taken back)."""
    if not tokens:
        return 0
    result = session.execute(
        update(TranslationQueue)
        .where(
            TranslationQueue.claim_token.in_(list(tokens)),
            TranslationQueue.status == QueueStatus.processing,
        )
        .values(heartbeat_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


class FailureOutcome(StrEnum):
    retried = "retried"
    failed = "failed"
    lost = "lost"


def record_failure(
    session: Session, claim: Claim, error: str, now: datetime, max_retries: int = MAX_RETRIES
) -> FailureOutcome:
    """Seed 000 §2.4: retry while ``retry_count < max_retries``, else fail the job and file."""
    row = _hold(session, claim)
    if row is None:
        log.warning("job.claim_lost", job_id=claim.job_id, worker=claim.worker_id)
        return FailureOutcome.lost
    job = session.get(TranslationJob, claim.job_id)
    assert job is not None
    if job.retry_count < max_retries:
        job.retry_count += 1
        job.status = JobStatus.pending
        job.error_message = f"Retry {job.retry_count}: {error}"
        job.file.status = FileStatus.pending
        enqueue(session, job.id, now, priority=retry_priority(job.retry_count))
        log.warning("job.retry", job_id=job.id, retry=job.retry_count, error=error)
        return FailureOutcome.retried
    row.status = QueueStatus.failed
    job.status = JobStatus.failed
    job.finished_at = now
    job.error_message = f"Failed after {job.retry_count} retries: {error}"
    job.file.status = FileStatus.error
    job.file.error_message = f"Translation failed: {error}"
    log.error("job.failed", job_id=job.id, retries=job.retry_count, error=error)
    return FailureOutcome.failed


@dataclass
class RecoveryReport:
    files_fixed: int = 0
    jobs_requeued: int = 0
    jobs_failed: int = 0

    @property
    def total(self) -> int:
        return self.files_fixed + self.jobs_requeued + self.jobs_failed


def recover_stuck(
    session: Session,
    now: datetime,
    stuck_after: timedelta = timedelta(minutes=10),
    max_retries: int = MAX_RETRIES,
) -> RecoveryReport:
    """Seed 000 §2.2: files left in processing by a failed job go to error; jobs
    processing for longer than ``stuck_after`` go back to the queue while
    ``retry_count < max_retries`` and fail otherwise."""
    report = RecoveryReport()
    orphaned = session.scalars(
        select(File)
        .join(TranslationJob, TranslationJob.file_id == File.id)
        .where(File.status == FileStatus.processing, TranslationJob.status == JobStatus.failed)
    ).all()
    for file in orphaned:
        file.status = FileStatus.error
        file.error_message = file.error_message or "Translation failed"
        report.files_fixed += 1
        log.warning("file.orphan_fixed", file_id=file.id)

    stuck = session.execute(
        select(TranslationJob, TranslationQueue)
        .join(TranslationQueue, TranslationQueue.job_id == TranslationJob.id)
        .where(
            TranslationJob.status == JobStatus.processing,
            TranslationQueue.status == QueueStatus.processing,
            TranslationJob.started_at < now - stuck_after,
        )
        .with_for_update(skip_locked=True)
    ).all()
    for job, row in stuck:
        _take_back(session, job, row, now, max_retries, report, "stuck")
    return report


def recover_abandoned(
    session: Session,
    now: datetime,
    silent_for: timedelta,
    max_retries: int = MAX_RETRIES,
) -> RecoveryReport:
    """Jobs whose worker stopped heartbeating ``silent_for`` ago (its process
    died, or is frozen) go back to the queue, or fail after ``max_retries``,
    as stuck jobs do. Rows another process is taking back are skipped."""
    report = RecoveryReport()
    silent = session.execute(
        select(TranslationJob, TranslationQueue)
        .join(TranslationQueue, TranslationQueue.job_id == TranslationJob.id)
        .where(
            TranslationQueue.status == QueueStatus.processing,
            TranslationQueue.heartbeat_at < now - silent_for,
        )
        .with_for_update(skip_locked=True)
    ).all()
    for job, row in silent:
        _take_back(session, job, row, now, max_retries, report, "abandoned")
    return report


_TAKE_BACK_MESSAGES = {
    # why: (requeued message, failed message)
    "stuck": ("Stuck in processing; requeued (attempt {n})", "Job stuck after {n} retries"),
    "abandoned": (
        "Worker stopped heartbeating; requeued (attempt {n})",
        "Job abandoned by its worker after {n} retries",
    ),
}


def _take_back(
    session: Session,
    job: TranslationJob,
    row: TranslationQueue,
    now: datetime,
    max_retries: int,
    report: RecoveryReport,
    why: str,
) -> None:
    """Requeue a job whose claim is void (a new token on the next claim refuses the
    old worker's result), or fail it once its retries are spent."""
    requeued, failed = _TAKE_BACK_MESSAGES[why]
    if job.retry_count < max_retries:
        job.retry_count += 1
        job.status = JobStatus.pending
        job.error_message = requeued.format(n=job.retry_count)
        job.file.status = FileStatus.pending
        enqueue(session, job.id, now, priority=row.priority)
        report.jobs_requeued += 1
        log.warning(
            f"job.{why}_requeued", job_id=job.id, retry=job.retry_count, worker=row.worker_id
        )
    else:
        row.status = QueueStatus.failed
        job.status = JobStatus.failed
        job.finished_at = now
        job.error_message = failed.format(n=job.retry_count)
        job.file.status = FileStatus.error
        job.file.error_message = "Translation failed after multiple attempts"
        report.jobs_failed += 1
        log.error(f"job.{why}_failed", job_id=job.id, retries=job.retry_count)
