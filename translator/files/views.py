from __future__ import annotations

from datetime import datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, UploadFile
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel

from common.logs import get_logger
from translator.deps import OptionalUserDep, ServicesDep, UserDep
from translator.errors import Conflict, InvalidUpload, NotFound
from translator.files.formats import FORMATS
from translator.files.models import File, FileStatus
from translator.files.service import MB, check_upload, store_file
from translator.jobs.service import create_job, retry_file, validate_lang

log = get_logger(__name__)
router = APIRouter(prefix="/api/files", tags=["files"])

# Reading stops here even for plans without a per-file limit.
HARD_UPLOAD_LIMIT = 100 * MB


class FileOut(BaseModel):
    id: int
    original_name: str
    file_format: str
    size_bytes: int
    status: str
    error_message: str | None
    source_lang: str
    target_lang: str
    llm_provider: str | None
    is_temporary: bool
    created_at: datetime
    translated_at: datetime | None

    @classmethod
    def of(cls, file: File) -> FileOut:
        return cls.model_validate(file, from_attributes=True)


class UploadOut(BaseModel):
    file: FileOut
    job_id: int


def _owned_file(services: ServicesDep, file_id: int, user_id: int) -> File:
    with services.db.session() as s:
        file = s.get(File, file_id)
        if file is None or file.user_id != user_id:
            raise NotFound(f"file {file_id} not found")
        return file


@router.post("", response_model=UploadOut, status_code=201)
async def upload(
    services: ServicesDep,
    user: OptionalUserDep,
    file: UploadFile,
    target_lang: Annotated[str, Form()] = "ru",
    source_lang: Annotated[str, Form()] = "auto",
    provider: Annotated[str | None, Form()] = None,
) -> UploadOut:
    """Upload a .txt, .md or .docx file and queue its translation. Without a
    token the upload is temporary (free-plan limits, removed after 24 hours)."""
    data = await file.read(HARD_UPLOAD_LIMIT + 1)
    if len(data) > HARD_UPLOAD_LIMIT:
        raise InvalidUpload(f"uploads are limited to {HARD_UPLOAD_LIMIT // MB} MB")
    target = validate_lang(target_lang, "target_lang")
    source = validate_lang(source_lang, "source_lang")
    provider_name = provider or services.providers.default
    services.providers.get(provider_name)  # unknown provider: clear error before storing
    user_id = user.id if user else None
    stored_path = None
    try:
        with services.db.session() as s:
            checked = check_upload(
                s, user_id, file.filename or "", data, services.settings.max_blocks_per_job
            )
            now = services.clock.now()
            row = store_file(s, services.storage, checked, user_id, now, source, target)
            stored_path = row.file_path
            job = create_job(s, row, checked.blocks, provider_name, now)
            out = UploadOut(file=FileOut.of(row), job_id=job.id)
    except BaseException:
        services.storage.delete(stored_path)  # nothing left behind
        raise
    return out


@router.get("/{file_id}", response_model=FileOut)
def get_file(file_id: int, user: UserDep, services: ServicesDep) -> FileOut:
    return FileOut.of(_owned_file(services, file_id, user.id))


@router.get("/{file_id}/download")
def download(file_id: int, user: UserDep, services: ServicesDep) -> Response:
    file = _owned_file(services, file_id, user.id)
    if file.status != FileStatus.ready or not file.translated_path:
        raise Conflict(f"file {file_id} is {file.status.value}, not ready for download")
    try:
        chunks = services.storage.iter_chunks(file.translated_path)  # streamed, chunk by chunk
    except FileNotFoundError:
        log.error("file.translation_missing", file_id=file_id, path=file.translated_path)
        raise NotFound(f"the translation of file {file_id} is missing from storage") from None
    stem, _, ext = file.original_name.rpartition(".")
    name = f"{stem}.{file.target_lang}.{ext}"
    return StreamingResponse(
        chunks,
        media_type=FORMATS[file.file_format].media_type,
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name, safe='')}"},
    )


@router.post("/{file_id}/retry", status_code=202)
def retry(file_id: int, user: UserDep, services: ServicesDep) -> dict:
    _owned_file(services, file_id, user.id)
    with services.db.session() as s:
        job = retry_file(s, services.storage, file_id, services.clock.now(), None)
        return {"job_id": job.id, "status": "queued"}
