"""Worker heartbeats: every few seconds a process marks the jobs its workers
hold as alive, and takes back the jobs of workers that went silent.

A process killed mid-job leaves its claim in ``processing`` with nobody to
finish it. The stuck-job scan (10 minutes) would find it eventually; the
heartbeat finds it once its last beat is ``timeout`` old, at the next beat of
any live worker process: within ``timeout + interval`` (35 s with the
defaults). A worker that was only slow (paused, starved of CPU) and comes
back finds its claim token replaced, so its result is refused and the job is
not completed twice.

A worker thread hung inside one job still heartbeats (its process is alive):
that is the stuck-job scan's case."""

from __future__ import annotations

import threading
from datetime import timedelta

from common.clock import Clock
from common.logs import get_logger
from translator.db import Database
from translator.jobs import queue

log = get_logger(__name__)


class HeldClaims:
    """The claims this process's workers hold now: what its heartbeat keeps alive."""

    def __init__(self) -> None:
        self._tokens: set[str] = set()
        self._lock = threading.Lock()

    def add(self, claim: queue.Claim) -> None:
        with self._lock:
            self._tokens.add(claim.token)

    def discard(self, claim: queue.Claim) -> None:
        with self._lock:
            self._tokens.discard(claim.token)

    def tokens(self) -> list[str]:
        with self._lock:
            return list(self._tokens)


class Heartbeat:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        held: HeldClaims,
        interval: float,
        timeout: float,
        max_retries: int = queue.MAX_RETRIES,
    ) -> None:
        if timeout < 2 * interval:
            raise ValueError(
                f"heartbeat timeout {timeout}s must be at least two intervals ({interval}s)"
            )
        self.db, self.clock, self.held = db, clock, held
        self.interval, self.timeout, self.max_retries = interval, timeout, max_retries
        self._thread: threading.Thread | None = None

    def beat(self) -> queue.RecoveryReport:
        """Refresh this process's claims, then take back silent ones."""
        now = self.clock.now()
        tokens = self.held.tokens()
        if tokens:
            with self.db.session() as s:
                alive = queue.heartbeat(s, tokens, now)
            if alive < len(tokens):
                log.warning("heartbeat.claims_lost", held=len(tokens), alive=alive)
        with self.db.session() as s:
            report = queue.recover_abandoned(
                s, now, timedelta(seconds=self.timeout), self.max_retries
            )
        if report.total:
            log.warning(
                "heartbeat.jobs_taken_back",
                requeued=report.jobs_requeued,
                failed=report.jobs_failed,
            )
        return report

    def start(self, stop: threading.Event, name: str) -> None:
        self._thread = threading.Thread(
            target=self._loop, args=(stop,), name=f"{name}:heartbeat", daemon=True
        )
        self._thread.start()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self, stop: threading.Event) -> None:
        # Beat at once: a restarted process takes back its predecessor's jobs
        # as soon as they are silent long enough.
        while not stop.is_set():
            try:
                self.beat()
            except Exception as exc:  # the database may be down: try again next beat
                log.error("heartbeat.failed", error=f"{type(exc).__name__}: {exc}".splitlines()[0])
            stop.wait(self.interval)
