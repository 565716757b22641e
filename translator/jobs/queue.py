"""The database-backed priority queue (``translation_queue``).

Lower priority numbers are served first: 10 for a manual retry, 50 for new
work, ``100 + retry_count * 10`` for automatic retries (seed 000 §2.4).

Claiming is one UPDATE over a sub-select of the best queued row. PostgreSQL
adds ``FOR UPDATE SKIP LOCKED`` so competing workers take different rows
without waiting; SQLite serialises writers (every transaction is BEGIN
IMMEDIATE, see ``common.db``) and the ``status = 'queued'`` guard makes the
update a no-op for a row someone else took. Every claim gets a fresh token,
and results are only recorded under the token that is still current, so a
worker whose job was recovered as stuck cannot finish it a second time."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from common.logs import get_logger
from translator.files.models import File, FileStatus
from translator.jobs.models import JobStatus, QueueStatus, TranslationJob, TranslationQueue

log = get_logger(__name__)

PRIORITY_MANUAL_RETRY = 10
PRIORITY_NORMAL = 50
MAX_RETRIES = 3


def retry_priority(retry_count: int) -> int:
    return 100 + retry_count * 10


@dataclass(frozen=True)
class Claim:
    job_id: int
    token: str
    worker_id: str
    attempt: int


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


def claim(session: Session, worker_id: str, now: datetime) -> Claim | None:
    """Atomically take the best queued job, or return None if there is none.

    Marks the job and its file as processing in the same transaction; the
    caller commits."""
    token = secrets.token_hex(8)
    best = (
        select(TranslationQueue.id)
        .where(TranslationQueue.status == QueueStatus.queued)
        .order_by(TranslationQueue.priority, TranslationQueue.id)
        .limit(1)
        .with_for_update(skip_locked=True)  # rendered on PostgreSQL only
        .scalar_subquery()
    )
    row = session.execute(
        update(TranslationQueue)
        .where(TranslationQueue.id == best, TranslationQueue.status == QueueStatus.queued)
        .values(
            status=QueueStatus.processing,
            claimed_at=now,
            worker_id=worker_id,
            claim_token=token,
            attempts=TranslationQueue.attempts + 1,
        )
        .returning(TranslationQueue.job_id, TranslationQueue.attempts)
        .execution_options(synchronize_session=False)
    ).first()
    if row is None:
        return None
    job_id, attempt = row
    file_id = _set_job(session, job_id, status=JobStatus.processing, started_at=now)
    _set_file(session, file_id, status=FileStatus.processing)
    log.info("job.claimed", job_id=job_id, worker=worker_id, attempt=attempt)
    return Claim(job_id=job_id, token=token, worker_id=worker_id, attempt=attempt)


# The hot path (claim, complete) uses plain UPDATEs: a job passes through them
# once per attempt, and loading ORM objects there doubled the cost per job.
def _set_job(session: Session, job_id: int, **values: object) -> int:
    """Update a job; returns its file id."""
    return session.execute(
        update(TranslationJob)
        .where(TranslationJob.id == job_id)
        .values(**values)
        .returning(TranslationJob.file_id)
        .execution_options(synchronize_session=False)
    ).scalar_one()


def _set_file(session: Session, file_id: int, **values: object) -> None:
    session.execute(
        update(File)
        .where(File.id == file_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


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


def complete(session: Session, claim: Claim, now: datetime, translated_path: str) -> bool:
    """Record success. False if the claim was lost (the job was recovered meanwhile)."""
    row = _hold(session, claim)
    if row is None:
        log.warning("job.claim_lost", job_id=claim.job_id, worker=claim.worker_id)
        return False
    row.status = QueueStatus.done
    file_id = _set_job(
        session, claim.job_id, status=JobStatus.completed, finished_at=now, error_message=None
    )
    _set_file(
        session,
        file_id,
        status=FileStatus.ready,
        translated_path=translated_path,
        translated_at=now,
        error_message=None,
    )
    log.info("job.completed", job_id=claim.job_id, worker=claim.worker_id, file_id=file_id)
    return True


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
        if job.retry_count < max_retries:
            job.retry_count += 1
            job.status = JobStatus.pending
            job.error_message = f"Stuck in processing; requeued (attempt {job.retry_count})"
            job.file.status = FileStatus.pending
            enqueue(session, job.id, now, priority=row.priority)
            report.jobs_requeued += 1
            log.warning(
                "job.stuck_requeued", job_id=job.id, retry=job.retry_count, worker=row.worker_id
            )
        else:
            row.status = QueueStatus.failed
            job.status = JobStatus.failed
            job.finished_at = now
            job.error_message = f"Job stuck after {job.retry_count} retries"
            job.file.status = FileStatus.error
            job.file.error_message = "Translation failed after multiple attempts"
            report.jobs_failed += 1
            log.error("job.stuck_failed", job_id=job.id, retries=job.retry_count)
    return report
