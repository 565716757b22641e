from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel

from common.bounds import DbId
from common.http_errors import errors
from common.logs import get_logger
from translator.accounts.service import plan_for_user
from translator.deps import OptionalUserDep, ServicesDep, UserDep
from translator.errors import Conflict, NotFound
from translator.files.formats import FORMATS
from translator.files.models import File, FileStatus
from translator.files.multipart import ReadUpload, read_multipart
from translator.files.service import MB, check_upload, store_file
from translator.jobs.service import LANG_CODES, create_job, retry_file, validate_lang

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


# The body is read by ``read_multipart`` (limit enforced while streaming), so the
# form is declared here for the OpenAPI schema rather than through parameters.
_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "target_lang": {
                            "type": "string",
                            "default": "ru",
                            "enum": sorted(LANG_CODES - {"auto"}),
                        },
                        "source_lang": {
                            "type": "string",
                            "default": "auto",
                            "enum": sorted(LANG_CODES),
                        },
                        "provider": {"type": "string"},
                    },
                }
            }
        },
    }
}


def _upload_limit(services: ServicesDep, user_id: int | None) -> tuple[int, str]:
    """The most a file may weigh for this caller, and the 413's message past it."""
    with services.db.session() as s:
        plan = plan_for_user(s, user_id)
        plan_name, plan_mb = plan.name, plan.max_file_size_mb
    if plan_mb is not None and plan_mb * MB < HARD_UPLOAD_LIMIT:
        return plan_mb * MB, f"the {plan_name} plan allows {plan_mb} MB per file"
    return HARD_UPLOAD_LIMIT, f"uploads are limited to {HARD_UPLOAD_LIMIT // MB} MB"


@router.post(
    "",
    response_model=UploadOut,
    status_code=201,
    openapi_extra=_UPLOAD_BODY,
    responses=errors(400, 409, 413, 415),
)
async def upload(request: Request, services: ServicesDep, user: OptionalUserDep) -> UploadOut:
    """Upload a .txt, .md or .docx file (multipart ``file``, ``target_lang``,
    ``source_lang``, ``provider``) and queue its translation. Without a token the
    upload is temporary (free-plan limits, removed after 24 hours). A file over
    the plan's limit is refused with 413 as soon as the body passes it."""
    user_id = user.id if user else None
    limit, too_large = await run_in_threadpool(_upload_limit, services, user_id)
    form = await read_multipart(
        request.headers.get("content-type"),
        request.headers.get("content-length"),
        request.stream(),
        "file",
        limit,
        too_large,
    )
    # Parsing a document and writing it take CPU and disk: off the event loop, so
    # one upload never holds up /api/health or anyone else's request.
    return await run_in_threadpool(_accept, services, user_id, form)


def _accept(services: ServicesDep, user_id: int | None, form: ReadUpload) -> UploadOut:
    data = form.data
    target = validate_lang(form.fields.get("target_lang") or "ru", "target_lang")
    source = validate_lang(form.fields.get("source_lang") or "auto", "source_lang")
    provider_name = form.fields.get("provider") or services.providers.default
    services.providers.get(provider_name)  # unknown provider: clear error before storing
    stored_path = None
    try:
        with services.db.session() as s:
            checked = check_upload(
                s, user_id, form.filename or "", data, services.settings.max_blocks_per_job
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


@router.get("/{file_id}", response_model=FileOut, responses=errors(404))
def get_file(file_id: DbId, user: UserDep, services: ServicesDep) -> FileOut:
    return FileOut.of(_owned_file(services, file_id, user.id))


@router.get(
    "/{file_id}/download",
    response_class=Response,
    responses={
        200: {
            "description": "the translated document, as an attachment",
            "content": {f.media_type: {} for f in FORMATS.values()},
        }
    }
    | errors(404, 409),
)
def download(file_id: DbId, user: UserDep, services: ServicesDep) -> Response:
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


@router.post("/{file_id}/retry", status_code=202, responses=errors(404, 409))
def retry(file_id: DbId, user: UserDep, services: ServicesDep) -> dict:
    _owned_file(services, file_id, user.id)
    with services.db.session() as s:
        job = retry_file(s, services.storage, file_id, services.clock.now(), None)
        return {"job_id": job.id, "status": "queued"}
