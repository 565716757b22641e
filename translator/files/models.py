from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Enum, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from common.db import UTCDateTime
from translator.db import Base


class FileStatus(enum.StrEnum):
    uploaded = "uploaded"
    pending = "pending"
    processing = "processing"
    ready = "ready"
    error = "error"


class File(Base):
    __tablename__ = "files"

    id: Mapped[int] = mapped_column(primary_key=True)
    # NULL for anonymous temporary uploads (cleaned up after 24 h, seed 000 §2.3).
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True, index=True
    )
    original_name: Mapped[str] = mapped_column(String(255))
    file_format: Mapped[str] = mapped_column(String(8))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    file_path: Mapped[str] = mapped_column(String(1024))
    translated_path: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    status: Mapped[FileStatus] = mapped_column(
        Enum(FileStatus, native_enum=False, length=16), default=FileStatus.uploaded, index=True
    )
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    is_temporary: Mapped[bool] = mapped_column(Boolean, default=False)
    source_lang: Mapped[str] = mapped_column(String(8), default="auto")
    target_lang: Mapped[str] = mapped_column(String(8), default="ru")
    llm_provider: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    translated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class StoredFile(Base):
    """A document kept in the database (``TRANSLATOR_FILE_STORAGE=database``): its
    bytes are ``chunks`` rows of ``file_chunks``, numbered from 0."""

    __tablename__ = "stored_files"

    key: Mapped[str] = mapped_column(String(1024), primary_key=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    chunks: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class FileChunk(Base):
    __tablename__ = "file_chunks"

    key: Mapped[str] = mapped_column(
        ForeignKey("stored_files.key", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
