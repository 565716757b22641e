"""The maintenance jobs of seed 000 §2, as plain functions of (services, now)
so the scheduler, the CLI and the tests call the same code."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from common.logs import get_logger
from translator.files.models import File
from translator.jobs import queue
from translator.payments.service import RenewalReport, renew_due_subscriptions

if TYPE_CHECKING:
    from translator.services import Services

log = get_logger(__name__)

TEMP_FILE_TTL = timedelta(hours=24)


def check_and_fix_stuck_jobs(
    services: Services, now: datetime, stuck_after: timedelta | None = None
) -> queue.RecoveryReport:
    stuck_after = stuck_after or timedelta(minutes=services.settings.stuck_after_minutes)
    with services.db.session() as s:
        report = queue.recover_stuck(s, now, stuck_after, services.settings.max_retries)
    log.info(
        "maintenance.stuck_jobs",
        fixed=report.total,
        requeued=report.jobs_requeued,
        failed=report.jobs_failed,
        files=report.files_fixed,
    )
    return report


@dataclass
class CleanupReport:
    deleted: int = 0
    errors: int = 0


def cleanup_expired_temp_files(services: Services, now: datetime) -> CleanupReport:
    """Temporary uploads no user claimed within 24 hours: file on disk and row go."""
    report = CleanupReport()
    with services.db.session() as s:
        expired = s.scalars(
            select(File).where(
                File.is_temporary.is_(True),
                File.user_id.is_(None),
                File.created_at < now - TEMP_FILE_TTL,
            )
        ).all()
        for file in expired:
            try:
                services.storage.delete(file.file_path)
                services.storage.delete(file.translated_path)
            except OSError as exc:
                report.errors += 1
                log.error("cleanup.delete_failed", file_id=file.id, error=str(exc))
                continue
            s.delete(file)
            report.deleted += 1
    log.info("maintenance.temp_files", deleted=report.deleted, errors=report.errors)
    return report


def process_recurring_subscriptions(services: Services, now: datetime) -> RenewalReport:
    return renew_due_subscriptions(
        services.db.sessions, services.gateway, now, observe=services.observe_payment
    )
