from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from common.db import UTCDateTime
from translator.db import Base


class ScheduledRun(Base):
    """One row per scheduled job per time slot: the process that inserts it runs
    the job, every other process sharing the database skips that slot."""

    __tablename__ = "scheduled_runs"

    job_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    slot: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(255), nullable=True)
