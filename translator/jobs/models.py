from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from common.db import UTCDateTime
from translator.db import Base
from translator.files.models import File


class JobStatus(enum.StrEnum):
    pending = "pending"
    processing = "processing"
    completed = "completed"
    failed = "failed"


class TranslationJob(Base):
    __tablename__ = "translation_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("files.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True, index=True
    )
    status: Mapped[JobStatus] = mapped_column(
        Enum(JobStatus, native_enum=False, length=16), default=JobStatus.pending, index=True
    )
    provider: Mapped[str] = mapped_column(String(64))
    source_lang: Mapped[str] = mapped_column(String(8))
    target_lang: Mapped[str] = mapped_column(String(8))
    retry_count: Mapped[int] = mapped_column(Integer, default=0)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    blocks_total: Mapped[int] = mapped_column(Integer, default=0)
    blocks_done: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    file: Mapped[File] = relationship()
    blocks: Mapped[list[TranslationBlock]] = relationship(
        order_by="TranslationBlock.position", cascade="all, delete-orphan"
    )


class TranslationBlock(Base):
    __tablename__ = "translation_blocks"
    __table_args__ = (UniqueConstraint("job_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("translation_jobs.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    source_text: Mapped[str] = mapped_column(Text)
    translated_text: Mapped[str | None] = mapped_column(Text, nullable=True)


class QueueStatus(enum.StrEnum):
    queued = "queued"
    processing = "processing"
    done = "done"
    failed = "failed"


class TranslationQueue(Base):
    """One row per job: where it stands in the queue and who holds it.

    ``claim_token`` changes on every claim, so a worker that lost its claim
    (a hung worker whose job was recovered, or one that stopped heartbeating)
    cannot record a result."""

    __tablename__ = "translation_queue"
    __table_args__ = (Index("ix_translation_queue_pick", "status", "priority", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(
        ForeignKey("translation_jobs.id", ondelete="CASCADE"), unique=True
    )
    priority: Mapped[int] = mapped_column(Integer, default=50)
    status: Mapped[QueueStatus] = mapped_column(
        Enum(QueueStatus, native_enum=False, length=16), default=QueueStatus.queued
    )
    enqueued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Refreshed by the claiming process while it lives; a silent claim is taken back.
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    worker_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    claim_token: Mapped[str | None] = mapped_column(String(32), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
