"""APScheduler with a run-once guarantee across processes.

Triggers are wall-clock aligned (cron), so every translator process sharing a
database fires at the same instant. Before running, a process inserts a
``scheduled_runs`` row keyed by (job, slot); the primary key lets exactly one
process win the slot and the others skip it."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.exc import IntegrityError

from common.logs import get_logger
from translator.ops import maintenance
from translator.ops.models import ScheduledRun

if TYPE_CHECKING:
    from translator.services import Services

log = get_logger(__name__)


@dataclass(frozen=True)
class ScheduledJob:
    name: str
    period: timedelta  # how far apart slots are; used to name the slot being run
    cron: dict[str, Any]
    run: Callable[[Services, datetime], object]


JOBS = [
    ScheduledJob(
        "check_stuck_jobs",
        timedelta(minutes=5),
        {"minute": "*/5"},
        maintenance.check_and_fix_stuck_jobs,
    ),
    ScheduledJob(
        "cleanup_expired_temp_files",
        timedelta(hours=6),
        {"hour": "*/6", "minute": 0},
        maintenance.cleanup_expired_temp_files,
    ),
    ScheduledJob(
        "process_recurring_subscriptions",
        timedelta(days=1),
        {"hour": 3, "minute": 0},
        maintenance.process_recurring_subscriptions,
    ),
]


def slot_of(now: datetime, period: timedelta) -> datetime:
    """The slot a firing belongs to: ``now`` rounded to the nearest period
    boundary, so two processes firing a few ms apart agree on it."""
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    periods = round((now - epoch) / period)
    return epoch + periods * period


def run_if_first(services: Services, job: ScheduledJob, now: datetime | None = None) -> bool:
    """Run ``job`` for the current slot unless another process already has. True if run."""
    now = now or services.clock.now()
    slot = slot_of(now, job.period)
    holder = f"{socket.gethostname()}:{os.getpid()}"
    try:
        with services.db.session() as s:
            s.add(ScheduledRun(job_name=job.name, slot=slot, holder=holder, started_at=now))
    except IntegrityError:
        log.info("scheduler.slot_taken", job=job.name, slot=slot.isoformat())
        return False
    outcome = "ok"
    try:
        result = job.run(services, now)
        outcome = f"ok {result}"[:255]
    except Exception as exc:
        outcome = f"error {type(exc).__name__}: {exc}"[:255]
        log.exception("scheduler.job_failed", job=job.name, slot=slot.isoformat())
    with services.db.session() as s:
        run = s.get(ScheduledRun, (job.name, slot))
        if run is not None:
            run.finished_at = services.clock.now()
            run.outcome = outcome
    return True


def start_scheduler(services: Services) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone=UTC)
    for job in JOBS:
        scheduler.add_job(
            run_if_first,
            CronTrigger(timezone=UTC, **job.cron),
            args=[services, job],
            id=job.name,
            replace_existing=True,
            misfire_grace_time=60,
            coalesce=True,
        )
    scheduler.start()
    log.info("scheduler.started", jobs=",".join(j.name for j in JOBS))
    return scheduler
