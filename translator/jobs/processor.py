"""Processing one claimed job: translate its blocks, write the translated
document, record the outcome under the claim."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Protocol

from prometheus_client import Counter, Histogram
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from common.clock import Clock
from common.logs import get_logger, log_context
from translator.db import Database
from translator.errors import TranslatorError
from translator.faults import FaultInjector
from translator.files.formats import FORMATS
from translator.files.models import File
from translator.files.storage import FileStorage
from translator.jobs import queue
from translator.jobs.heartbeat import HeldClaims
from translator.jobs.hotpath import QueueConnection, Work
from translator.jobs.models import TranslationBlock, TranslationJob
from translator.llm.exceptions import LLMError
from translator.metrics import TranslatorMetrics

log = get_logger(__name__)


class Translates(Protocol):
    def translate(self, text: str, source_lang: str, target_lang: str) -> str: ...


class ProviderLookup(Protocol):
    def get(self, name: str) -> Translates: ...


class InjectedWorkerFailure(RuntimeError):
    pass


# Failures whose messages are written in our own words, fit for the job's owner.
_PUBLIC_FAILURES = (LLMError, TranslatorError, InjectedWorkerFailure)


def describe_failure(exc: BaseException) -> str:
    """What a failed attempt shows its user (``error_message``) and the log line.
    Anything else (a driver error with SQL, an OS error with a path) is named by
    its type only; the full traceback goes to the log under the job's id."""
    if isinstance(exc, _PUBLIC_FAILURES):
        return f"{type(exc).__name__}: {exc}"
    return f"{type(exc).__name__}: internal error"


class JobProcessor:
    def __init__(
        self,
        db: Database,
        storage: FileStorage,
        providers: ProviderLookup,
        clock: Clock,
        faults: FaultInjector,
        metrics: TranslatorMetrics,
        max_retries: int = queue.MAX_RETRIES,
        stop: threading.Event | None = None,
    ) -> None:
        self.db, self.storage, self.providers, self.clock = db, storage, providers, clock
        self.faults, self.metrics, self.max_retries = faults, metrics, max_retries
        self.stop = stop or threading.Event()
        self.held = HeldClaims()
        # Label children by outcome, looked up once.
        self._outcome_series: dict[str, tuple[Histogram, Counter]] = {}

    def run_once(self, worker_id: str, connection: QueueConnection | None = None) -> bool:
        """Claim and process one job. False when the queue was empty.

        Workers pass their own ``connection``; without one, a connection is
        borrowed for this call."""
        if connection is None:
            with QueueConnection(self.db.engine) as borrowed:
                return self.run_once(worker_id, borrowed)
        claimed = connection.claim(worker_id, self.clock.now())
        if claimed is None:
            return False
        claim, work = claimed
        self.held.add(claim)
        try:
            queue.log_claimed(claim)
            with log_context(job_id=claim.job_id, worker=worker_id):
                self.process(claim, work, connection)
        finally:
            self.held.discard(claim)
        return True

    def process(
        self,
        claim: queue.Claim,
        work: Work | None = None,
        connection: QueueConnection | None = None,
    ) -> str:
        """Translate, write the output and record the outcome; returns the outcome."""
        if connection is None:
            with QueueConnection(self.db.engine) as borrowed:
                return self.process(claim, work, borrowed)
        started = time.monotonic()
        done: dict[int, str] = {}
        try:
            if work is None:
                with self.db.session() as s:
                    work = self._load(s, claim.job_id)
            hang = self.faults.worker_hang()
            if hang is not None:
                # A hung worker: holds its claim without progress until the
                # stuck-job recovery takes the job back (or we are stopped).
                self.stop.wait(hang)
                if not self._still_owned(claim):
                    return self._finish(claim, started, "lost")
                raise InjectedWorkerFailure(f"worker hung for {hang:.0f}s")
            provider = self.providers.get(work.provider)
            for block_id, source, translated in work.blocks:
                if translated is None:  # else kept from an earlier attempt
                    translated = provider.translate(source, work.source_lang, work.target_lang)
                done[block_id] = translated
            output = FORMATS[work.file_format].render(
                self.storage.read(work.file_path), list(done.values())
            )
            out_path = self.storage.translated_path(
                Path(work.file_path), work.target_lang, claim.job_id
            )
            # Durable before the database says "ready" (an fsync, outside any transaction).
            self.storage.write(out_path, output)
            file_id = connection.complete(
                claim, self.clock.now(), str(out_path), done, blocks_done=len(done)
            )
            if file_id is None:
                log.warning("job.claim_lost", job_id=claim.job_id, worker=claim.worker_id)
                return self._finish(claim, started, "lost")
            log.info("job.completed", job_id=claim.job_id, worker=claim.worker_id, file_id=file_id)
            return self._finish(claim, started, "completed")
        except Exception as exc:
            error = describe_failure(exc)
            public = isinstance(exc, _PUBLIC_FAILURES)
            log.error("job.attempt_failed", job_id=claim.job_id, error=error, exc_info=not public)
            with self.db.session() as s:
                if queue.still_owned(s, claim):
                    self._save_blocks(s, claim.job_id, done)
                outcome = queue.record_failure(
                    s, claim, error, self.clock.now(), max_retries=self.max_retries
                )
            return self._finish(claim, started, outcome.value)

    def _finish(self, claim: queue.Claim, started: float, outcome: str) -> str:
        duration, count = self._outcome_series.get(outcome) or self._series_of(outcome)
        duration.observe(time.monotonic() - started)
        count.inc()
        return outcome

    def _series_of(self, outcome: str) -> tuple[Histogram, Counter]:
        series = (
            self.metrics.job_duration.labels(outcome),
            self.metrics.jobs_finished.labels(outcome),
        )
        self._outcome_series[outcome] = series
        return series

    def _still_owned(self, claim: queue.Claim) -> bool:
        with self.db.session() as s:
            return queue.still_owned(s, claim)

    @staticmethod
    def _load(s: Session, job_id: int) -> Work:
        job = s.execute(
            select(
                File.file_path,
                File.file_format,
                TranslationJob.provider,
                TranslationJob.source_lang,
                TranslationJob.target_lang,
            )
            .join(File, File.id == TranslationJob.file_id)
            .where(TranslationJob.id == job_id)
        ).one()
        blocks = s.execute(
            select(
                TranslationBlock.id,
                TranslationBlock.source_text,
                TranslationBlock.translated_text,
            )
            .where(TranslationBlock.job_id == job_id)
            .order_by(TranslationBlock.position)
        ).all()
        return Work(*job, blocks=[tuple(b) for b in blocks])

    @staticmethod
    def _save_blocks(s: Session, job_id: int, done: dict[int, str]) -> None:
        if not done:
            return
        s.execute(
            update(TranslationBlock),
            [{"id": block_id, "translated_text": text} for block_id, text in done.items()],
        )
        s.execute(
            update(TranslationJob)
            .where(TranslationJob.id == job_id)
            .values(blocks_done=len(done))
            .execution_options(synchronize_session=False)
        )
