"""Prometheus metrics for the translator.

Counters and histograms are updated where things happen. Queue and job
gauges are read from the database at scrape time, so they are right however
many worker processes share the database. With ``PROMETHEUS_MULTIPROC_DIR``
set, counters and histograms from every process are merged on scrape."""

from __future__ import annotations

import dataclasses
import os
import platform
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from common.clock import Clock, ensure_utc
from common.logs import get_logger
from translator.db import Database
from translator.files.consistency import FileCheck, check_files
from translator.files.storage import FileStorage
from translator.jobs.models import JobStatus, QueueStatus, TranslationJob, TranslationQueue
from translator.payments.models import PaymentMethod, PaymentStatus

log = get_logger(__name__)

# The *_created series double the output and no dashboard of ours reads them.
disable_created_metrics()

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BREAKER_STATE_VALUES = {"closed": 0, "half_open": 1, "open": 2}
# 2 s is the seeds' response-time target: a bucket edge there makes "p95 over 2 s" exact.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 2.5, 5, 10)
JOB_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class TranslatorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "translator_http_requests",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "translator_http_request_duration_seconds",
            "HTTP request duration.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.job_duration = Histogram(
            "translator_job_processing_seconds",
            "Time a worker spent on one job attempt.",
            ["outcome"],
            buckets=JOB_BUCKETS,
            registry=r,
        )
        self.jobs_finished = Counter(
            "translator_job_attempts",
            "Job attempts by outcome (completed, retried, failed, lost).",
            ["outcome"],
            registry=r,
        )
        self.payments = Counter(
            "translator_payments",
            "Payments by method and outcome.",
            ["method", "outcome"],
            registry=r,
        )
        self.job_list_responses = Counter(
            "translator_job_list_responses",
            "Job-list API responses, empty or not.",
            ["result"],
            registry=r,
        )
        # Series only for users who met the bug, so the cardinality is the damage done.
        self.job_list_empty_with_jobs = Counter(
            "translator_job_list_empty_with_jobs",
            "Empty job lists answered to users who do have jobs, per user id.",
            ["user_id"],
            registry=r,
        )
        self.llm_calls = Counter(
            "translator_llm_calls",
            "LLM provider calls by provider and outcome.",
            ["provider", "outcome"],
            registry=r,
        )
        # Zero series from the start, so rate() and ratios work before the first event.
        for method in PaymentMethod:
            for outcome in PaymentStatus:
                self.payments.labels(method.value, outcome.value)
        for result in ("empty", "non_empty"):
            self.job_list_responses.labels(result)
        self._live: list[Collector] = []

    def add_live_collector(self, collector: Collector) -> None:
        """Collectors computed at scrape time (database, breakers, build info)."""
        self._live.append(collector)
        self.registry.register(collector)

    def render(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged)
            for collector in self._live:
                merged.register(collector)
            return generate_latest(merged)
        return generate_latest(self.registry)


class BuildInfoCollector(Collector):
    def __init__(self, version: str, node: str) -> None:
        self.version, self.node = version, node
        self.started = time.time()

    def collect(self) -> Iterable[Metric]:
        # Lets a scraper tell a restarted node (counters from zero) from a busy one.
        yield GaugeMetricFamily(
            "translator_process_start_time_seconds",
            "When this process started (unix time).",
            value=self.started,
        )
        g = GaugeMetricFamily(
            "translator_build_info",
            "The running version (always 1).",
            labels=["version", "node", "python"],
        )
        g.add_metric([self.version, self.node, platform.python_version()], 1)
        yield g


class BreakerCollector(Collector):
    def __init__(self, states: Callable[[], dict[str, str]]) -> None:
        self.states = states

    def collect(self) -> Iterable[Metric]:
        g = GaugeMetricFamily(
            "translator_llm_breaker_state",
            "Circuit breaker per LLM provider: 0 closed, 1 half-open, 2 open.",
            labels=["provider"],
        )
        for provider, state in sorted(self.states().items()):
            g.add_metric([provider], BREAKER_STATE_VALUES.get(state, 2))
        yield g


class QueueCollector(Collector):
    """Jobs by status and queue lag, read from the database on each scrape."""

    def __init__(self, db: Database, clock: Clock, worker_capacity: int) -> None:
        self.db, self.clock, self.worker_capacity = db, clock, worker_capacity

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily("translator_database_up", "1 if the database answered the scrape.")
        try:
            snapshot = queue_snapshot(self.db, self.clock.now())
        except Exception as exc:
            log.error("metrics.database_unavailable", error=type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        jobs = GaugeMetricFamily(
            "translator_jobs", "Translation jobs by status.", labels=["status"]
        )
        for status in JobStatus:
            jobs.add_metric([status.value], snapshot["jobs"].get(status.value, 0))
        yield jobs
        yield GaugeMetricFamily(
            "translator_queue_depth", "Jobs waiting in the queue.", value=snapshot["queued"]
        )
        yield GaugeMetricFamily(
            "translator_queue_processing",
            "Jobs being processed now.",
            value=snapshot["processing"],
        )
        yield GaugeMetricFamily(
            "translator_queue_oldest_pending_age_seconds",
            "Age of the oldest queued job (queue lag); 0 when the queue is empty.",
            value=snapshot["oldest_age_seconds"],
        )
        yield GaugeMetricFamily(
            "translator_worker_capacity",
            "Worker threads configured in this process.",
            value=self.worker_capacity,
        )


def queue_snapshot(db: Database, now: datetime) -> dict:
    with db.session() as s:
        jobs = dict(
            s.execute(
                select(TranslationJob.status, func.count()).group_by(TranslationJob.status)
            ).all()
        )
        by_queue = dict(
            s.execute(
                select(TranslationQueue.status, func.count()).group_by(TranslationQueue.status)
            ).all()
        )
        oldest = s.scalar(
            select(func.min(TranslationQueue.enqueued_at)).where(
                TranslationQueue.status == QueueStatus.queued
            )
        )
    return {
        "jobs": {str(k): v for k, v in jobs.items()},
        "queued": by_queue.get(QueueStatus.queued, 0),
        "processing": by_queue.get(QueueStatus.processing, 0),
        "oldest_age_seconds": max(0.0, (now - ensure_utc(oldest)).total_seconds())
        if oldest
        else 0.0,
    }


class FileCheckCollector(Collector):
    """Files missing from disk and orphaned files (``translator.files.consistency``).

    Walking the storage (a directory, or a table) may take longer than a scrape may, so a scrape
    answers with the last finished check and, once that is older than
    ``refresh``, starts the next one in the background. Until the first check
    finishes the families are declared without samples."""

    def __init__(
        self, db: Database, storage: FileStorage, clock: Clock, refresh: timedelta
    ) -> None:
        self.db, self.storage, self.clock, self.refresh = db, storage, clock, refresh
        self._last: FileCheck | None = None
        self._running = False
        self._lock = threading.Lock()

    def current(self) -> FileCheck | None:
        """The last finished check; starts the next one when it is due."""
        with self._lock:
            now = self.clock.now()
            due = self._last is None or now - self._last.checked_at >= self.refresh
            if due and not self._running:
                self._running = True
                threading.Thread(
                    target=self._check, args=(now,), name="file-check", daemon=True
                ).start()
            return self._last

    def _check(self, now: datetime) -> None:
        try:
            with self.db.session() as s:
                # File ages are judged on the OS clock, which set their mtimes.
                check = check_files(s, self.storage, datetime.now(UTC))
        except Exception as exc:  # the database is down: translator_database_up says so
            log.error("metrics.file_check_failed", error=type(exc).__name__)
            with self._lock:
                self._running = False
            return
        if check.missing or check.orphaned:
            log.warning(
                "files.inconsistent",
                missing=len(check.missing),
                orphaned=len(check.orphaned),
                first_missing=check.missing[0].path if check.missing else None,
                first_orphan=str(check.orphaned[0]) if check.orphaned else None,
            )
        with self._lock:
            # Stamped with the injected clock's time the check was asked for: the refresh
            # period is measured on it.
            self._last = dataclasses.replace(check, checked_at=now)
            self._running = False

    def describe(self) -> Iterable[Metric]:
        # Registration asks for names only: no scan at start-up.
        yield GaugeMetricFamily("translator_files_inconsistent", "", labels=["kind"])
        yield GaugeMetricFamily("translator_files_checked_timestamp_seconds", "")

    def collect(self) -> Iterable[Metric]:
        check = self.current()
        g = GaugeMetricFamily(
            "translator_files_inconsistent",
            "Files table against the storage directory: rows whose file is missing, "
            "files no row points to (orphaned).",
            labels=["kind"],
        )
        checked = GaugeMetricFamily(
            "translator_files_checked_timestamp_seconds",
            "When the files were last checked against the table (unix time).",
            labels=[],
        )
        if check is not None:
            g.add_metric(["missing"], len(check.missing))
            g.add_metric(["orphaned"], len(check.orphaned))
            checked.add_metric([], check.checked_at.timestamp())
        yield g
        yield checked
