"""Processing one claimed job: translate its blocks, write the translated
document, record the outcome under the claim."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

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


@dataclass(frozen=True)
class _Work:
    file_path: str
    file_format: str
    provider: str
    source_lang: str
    target_lang: str
    blocks: list[tuple[int, str, str | None]]  # (block id, source, translation so far)


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

    def run_once(self, worker_id: str) -> bool:
        """Claim and process one job. False when the queue was empty."""
        with self.db.session() as s:
            claim = queue.claim(s, worker_id, self.clock.now())
            work = self._load(s, claim.job_id) if claim is not None else None
        if claim is None:
            return False
        with log_context(job_id=claim.job_id, worker=worker_id):
            self.process(claim, work)
        return True

    def process(self, claim: queue.Claim, work: _Work | None = None) -> str:
        """Translate, write the output and record the outcome; returns the outcome."""
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
                if translated is not None:
                    done[block_id] = translated  # kept from an earlier attempt
                    continue
                done[block_id] = provider.translate(source, work.source_lang, work.target_lang)
            output = FORMATS[work.file_format].render(
                self.storage.read(work.file_path), [done[b[0]] for b in work.blocks]
            )
            out_path = self.storage.translated_path(
                Path(work.file_path), work.target_lang, claim.job_id
            )
            self.storage.write(out_path, output)
            with self.db.session() as s:
                self._save_blocks(s, claim.job_id, done)
                ok = queue.complete(s, claim, self.clock.now(), str(out_path))
            return self._finish(claim, started, "completed" if ok else "lost")
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
        self.metrics.job_duration.labels(outcome).observe(time.monotonic() - started)
        self.metrics.jobs_finished.labels(outcome).inc()
        return outcome

    def _still_owned(self, claim: queue.Claim) -> bool:
        with self.db.session() as s:
            return queue.still_owned(s, claim)

    @staticmethod
    def _load(s: Session, job_id: int) -> _Work:
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
        return _Work(*job, blocks=[tuple(b) for b in blocks])

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
