"""Accepting an upload: every check runs before anything is written, and a
failure after the file reached the disk removes it again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from common.logs import get_logger
from translator.accounts.service import plan_for_user
from translator.errors import FileTooLarge, InvalidUpload, UploadQuotaExceeded
from translator.files.formats import FORMATS, detect_format
from translator.files.models import File, FileStatus
from translator.files.storage import FileStorage

log = get_logger(__name__)

MB = 1024 * 1024
MAX_NAME_LENGTH = 255


@dataclass(frozen=True)
class CheckedUpload:
    name: str
    file_format: str
    data: bytes
    blocks: list[str]


def check_upload(
    session: Session, user_id: int | None, filename: str, data: bytes, max_blocks: int
) -> CheckedUpload:
    name = Path((filename or "").replace("\\", "/")).name.strip()
    if not name:
        raise InvalidUpload("the upload has no file name")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidUpload(f"file name longer than {MAX_NAME_LENGTH} characters")
    file_format = detect_format(name)
    if not data:
        raise InvalidUpload(f"{name} is empty")

    plan = plan_for_user(session, user_id)
    if plan.max_file_size_mb is not None and len(data) > plan.max_file_size_mb * MB:
        raise FileTooLarge(
            f"{name} is {len(data) / MB:.1f} MB; the {plan.name} plan allows "
            f"{plan.max_file_size_mb} MB per file"
        )
    if plan.max_total_upload_size_mb is not None and user_id is not None:
        used = session.scalar(
            select(func.coalesce(func.sum(File.size_bytes), 0)).where(File.user_id == user_id)
        )
        if used + len(data) > plan.max_total_upload_size_mb * MB:
            raise UploadQuotaExceeded(
                f"uploading {name} would use {(used + len(data)) / MB:.1f} MB; the "
                f"{plan.name} plan allows {plan.max_total_upload_size_mb} MB in total"
            )

    blocks = FORMATS[file_format].extract(data)
    if not blocks:
        raise InvalidUpload(f"{name} contains no text to translate")
    if len(blocks) > max_blocks:
        raise InvalidUpload(f"{name} has {len(blocks)} paragraphs; the limit is {max_blocks}")
    return CheckedUpload(name=name, file_format=file_format, data=data, blocks=blocks)


def store_file(
    session: Session,
    storage: FileStorage,
    upload: CheckedUpload,
    user_id: int | None,
    now: datetime,
    source_lang: str,
    target_lang: str,
) -> File:
    """Write the bytes and add the row. The caller's transaction decides; if it
    rolls back, the caller must call ``storage.delete(file.file_path)``."""
    path = storage.new_path(now, upload.file_format)
    storage.write(path, upload.data)
    file = File(
        user_id=user_id,
        original_name=upload.name,
        file_format=upload.file_format,
        size_bytes=len(upload.data),
        file_path=str(path),
        status=FileStatus.pending,
        is_temporary=user_id is None,
        source_lang=source_lang,
        target_lang=target_lang,
        created_at=now,
    )
    session.add(file)
    session.flush()
    log.info(
        "file.stored",
        file_id=file.id,
        user_id=user_id,
        format=upload.file_format,
        size=len(upload.data),
    )
    return file
