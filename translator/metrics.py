"""Prometheus metrics for the translator.

Counters and histograms are updated where things happen. Queue and job
gauges are read from the database at scrape time, so they are right however
many worker processes share the database. With ``PROMETHEUS_MULTIPROC_DIR``
set, counters and histograms from every process are merged on scrape."""

from __future__ import annotations

import bisect
import dataclasses
import os
import platform
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

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


# Pending request observations are added to their series at the latest when this
# many are waiting (else when the metrics are read).
HTTP_FOLD_AT = 1000


class HttpSeries:
    """One (method, route, status)'s request counter child and latency histogram child."""

    __slots__ = ("requests", "duration", "_bounds", "_buckets", "_sum")

    def __init__(self, requests: Any, duration: Any) -> None:
        self.requests, self.duration = requests, duration
        # prometheus_client's own parts of the child: ``Histogram.observe`` adds to the
        # first bucket whose upper bound is at least the value, and to the sum.
        self._bounds: list[float] = list(duration._upper_bounds)
        self._buckets = duration._buckets
        self._sum = duration._sum

    def observe(self, seconds: float) -> None:
        self.requests.inc()
        self.duration.observe(seconds)


class _FoldFirst(Collector):
    """Registered before the HTTP metrics: any read of the registry sees every request."""

    def __init__(self, fold: Callable[[], None]) -> None:
        self.fold = fold

    def collect(self) -> Iterable[Metric]:
        self.fold()
        return ()


class TranslatorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        # Requests are counted and timed by appending (series, seconds) to a list;
        # the lot is added to the counter and the histogram when the metrics are read
        # (or ``HTTP_FOLD_AT`` wait). Files shared by processes
        # (PROMETHEUS_MULTIPROC_DIR) are read by the process that is scraped, not
        # the one holding the list: there each request is recorded at once.
        self._http_pending: list[tuple[HttpSeries, float]] = []
        self._fold_lock = threading.Lock()
        shared_files = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        # For a caller that appends itself (the request middleware); None: observe.
        self.http_pending = None if shared_files else self._http_pending
        self.observe_http: Callable[[HttpSeries, float], None] = (
            self._observe_now if shared_files else self._observe_later
        )
        r.register(_FoldFirst(self.fold_http))
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

    def http_series(self, method: str, route: str, status: int) -> HttpSeries:
        return HttpSeries(
            self.http_requests.labels(method, route, str(status)),
            self.http_duration.labels(method, route),
        )

    @staticmethod
    def _observe_now(series: HttpSeries, seconds: float) -> None:
        series.observe(seconds)

    def _observe_later(self, series: HttpSeries, seconds: float) -> None:
        pending = self._http_pending
        pending.append((series, seconds))
        if len(pending) >= HTTP_FOLD_AT:
            self.fold_http()

    def fold_http(self) -> None:
        """Adds the pending request observations to their series."""
        pending = self._http_pending
        if not pending:
            return
        with self._fold_lock:
            # Appends may go on meanwhile (a request on another thread): only the
            # first ``n`` are taken, and taking them is one step.
            n = len(pending)
            taken = pending[:n]
            del pending[:n]
            # Per series: its buckets' counts, then its request count. The sums are
            # added in the order observed, as ``observe`` would (series of two
            # statuses share a histogram child, so a sum's rounding depends on it).
            counts: dict[HttpSeries, list[int]] = {}
            for series, seconds in taken:
                series._sum.inc(seconds)
                bounds = series._bounds
                tally = counts.get(series)
                if tally is None:
                    tally = counts[series] = [0] * (len(bounds) + 1)
                tally[-1] += 1
                if seconds == seconds:  # NaN is in no bucket
                    tally[bisect.bisect_left(bounds, seconds)] += 1
            for series, tally in counts.items():
                series.requests.inc(tally[-1])
                for bucket, count in zip(series._buckets, tally[:-1], strict=True):
                    if count:
                        bucket.inc(count)

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
