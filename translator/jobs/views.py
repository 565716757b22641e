from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from common.bounds import DbId
from common.http_errors import errors
from translator.deps import ServicesDep, UserDep
from translator.jobs.models import TranslationJob
from translator.jobs.service import get_job, has_jobs, list_jobs

router = APIRouter(prefix="/api/jobs", tags=["jobs"])


class JobOut(BaseModel):
    id: int
    file_id: int
    file_name: str
    status: str
    provider: str
    source_lang: str
    target_lang: str
    retry_count: int
    error_message: str | None
    blocks_total: int
    blocks_done: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, job: TranslationJob) -> JobOut:
        return cls(
            id=job.id,
            file_id=job.file_id,
            file_name=job.file.original_name,
            status=job.status.value,
            provider=job.provider,
            source_lang=job.source_lang,
            target_lang=job.target_lang,
            retry_count=job.retry_count,
            error_message=job.error_message,
            blocks_total=job.blocks_total,
            blocks_done=job.blocks_done,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
        )


@router.get("", response_model=list[JobOut])
def my_jobs(
    user: UserDep, services: ServicesDep, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[JobOut]:
    """The caller's jobs, newest first. An empty answer to a user who has jobs
    is the "empty order list" bug class, so every answer is counted, and an empty
    one is checked against the jobs table by a query of its own (a bug in the
    list's query would not hide from it)."""
    if services.faults.empty_job_list(user.email):
        jobs: list[JobOut] = []
    else:
        with services.db.session() as s:
            jobs = [JobOut.of(j) for j in list_jobs(s, user.id, limit)]
    services.metrics.job_list_responses.labels("empty" if not jobs else "non_empty").inc()
    if not jobs:
        with services.db.session() as s:
            if has_jobs(s, user.id):
                services.metrics.job_list_empty_with_jobs.labels(str(user.id)).inc()
    return jobs


@router.get("/{job_id}", response_model=JobOut, responses=errors(404))
def one_job(job_id: DbId, user: UserDep, services: ServicesDep) -> JobOut:
    with services.db.session() as s:
        return JobOut.of(get_job(s, job_id, user.id))
