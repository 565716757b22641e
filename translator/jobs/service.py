"""Creating, listing and re-running translation jobs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from common.logs import get_logger
from translator.errors import Conflict, InvalidInput, NotFound
from translator.files.formats import FORMATS
from translator.files.models import File, FileStatus
from translator.files.storage import FileStorage
from translator.jobs import queue
from translator.jobs.models import JobStatus, TranslationBlock, TranslationJob

log = get_logger(__name__)

LANG_CODES = {"auto", "en", "ru", "de", "fr", "es", "it", "zh", "ja", "ko", "pt", "uk", "kk"}


def validate_lang(code: str, field: str) -> str:
    code = (code or "").strip().lower()
    if code not in LANG_CODES or (field == "target_lang" and code == "auto"):
        raise InvalidInput(
            f"{field} {code!r} is not supported; use one of "
            f"{', '.join(sorted(LANG_CODES - {'auto'}))}"
        )
    return code


def create_job(
    session: Session,
    file: File,
    blocks: list[str],
    provider: str,
    now: datetime,
    priority: int = queue.PRIORITY_NORMAL,
) -> TranslationJob:
    job = TranslationJob(
        file_id=file.id,
        user_id=file.user_id,
        status=JobStatus.pending,
        provider=provider,
        source_lang=file.source_lang,
        target_lang=file.target_lang,
        blocks_total=len(blocks),
        created_at=now,
        blocks=[TranslationBlock(position=i, source_text=text) for i, text in enumerate(blocks)],
    )
    session.add(job)
    session.flush()
    file.status = FileStatus.pending
    file.llm_provider = provider
    queue.enqueue(session, job.id, now, priority=priority)
    log.info(
        "job.created",
        job_id=job.id,
        file_id=file.id,
        blocks=len(blocks),
        provider=provider,
        priority=priority,
    )
    return job


def list_jobs(session: Session, user_id: int, limit: int = 50) -> list[TranslationJob]:
    return list(
        session.scalars(
            select(TranslationJob)
            .options(selectinload(TranslationJob.file))
            .where(TranslationJob.user_id == user_id)
            .order_by(TranslationJob.id.desc())
            .limit(limit)
        )
    )


def has_jobs(session: Session, user_id: int) -> bool:
    """Whether the user has any job at all: a check on the list, by a query of its own."""
    found = session.scalar(select(TranslationJob.id).where(TranslationJob.user_id == user_id))
    return found is not None


def get_job(session: Session, job_id: int, user_id: int | None = None) -> TranslationJob:
    job = session.get(TranslationJob, job_id)
    if job is None or (user_id is not None and job.user_id != user_id):
        raise NotFound(f"job {job_id} not found")
    return job


def retry_file(
    session: Session, storage: FileStorage, file_id: int, now: datetime, provider: str | None
) -> TranslationJob:
    """Seed 000 §8.2: reset the file and queue a new job ahead of normal work."""
    file = session.get(File, file_id)
    if file is None:
        raise NotFound(f"file {file_id} not found")
    active = session.scalar(
        select(TranslationJob.id).where(
            TranslationJob.file_id == file_id,
            TranslationJob.status.in_([JobStatus.pending, JobStatus.processing]),
        )
    )
    if active is not None:
        raise Conflict(f"file {file_id} already has job {active} pending or processing")
    blocks = FORMATS[file.file_format].extract(storage.read(file.file_path))
    file.error_message = None
    return create_job(
        session,
        file,
        blocks,
        provider or file.llm_provider or "offline",
        now,
        priority=queue.PRIORITY_MANUAL_RETRY,
    )
