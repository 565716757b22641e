"""A pool of worker threads that take jobs from the queue until stopped, and
the heartbeat thread that keeps their claims alive."""

from __future__ import annotations

import os
import socket
import threading

from sqlalchemy.exc import OperationalError

from common.logs import get_logger
from translator.jobs.heartbeat import Heartbeat
from translator.jobs.hotpath import QueueConnection
from translator.jobs.processor import JobProcessor

log = get_logger(__name__)


class WorkerPool:
    def __init__(
        self,
        processor: JobProcessor,
        size: int,
        poll_seconds: float = 0.5,
        name: str | None = None,
        heartbeat: Heartbeat | None = None,
    ) -> None:
        self.processor = processor
        self.heartbeat = heartbeat
        self.size = size
        self.poll_seconds = poll_seconds
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.stop_event = processor.stop
        self._threads: list[threading.Thread] = []

    @property
    def alive(self) -> int:
        return sum(t.is_alive() for t in self._threads)

    @property
    def running(self) -> bool:
        """Started and not stopped (a process may run with no workers of its own)."""
        return bool(self._threads)

    def start(self) -> None:
        self.stop_event.clear()
        for i in range(self.size):
            worker_id = f"{self.name}:w{i}"
            t = threading.Thread(target=self._loop, args=(worker_id,), name=worker_id, daemon=True)
            self._threads.append(t)
            t.start()
        if self.heartbeat is not None and self.size:
            self.heartbeat.start(self.stop_event, self.name)
        log.info("workers.started", count=self.size, pool=self.name)

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        for t in self._threads:
            t.join(timeout)
        self._threads.clear()
        if self.heartbeat is not None:
            self.heartbeat.join(timeout)
        log.info("workers.stopped", pool=self.name)

    def _loop(self, worker_id: str) -> None:
        # One connection for the worker's life: no pool checkout per job.
        with QueueConnection(self.processor.db.engine) as connection:
            while not self.stop_event.is_set():
                try:
                    worked = self.processor.run_once(worker_id, connection)
                except OperationalError as exc:
                    error = str(exc).splitlines()[0]
                    log.error("worker.database_error", worker=worker_id, error=error)
                    worked = False
                except Exception:
                    log.exception("worker.crashed_iteration", worker=worker_id)
                    worked = False
                if not worked:
                    self.stop_event.wait(self.poll_seconds)

    def drain(self, worker_id: str = "drain") -> int:
        """Process queued jobs in the calling thread until the queue is empty (tests, CLI)."""
        count = 0
        with QueueConnection(self.processor.db.engine) as connection:
            while self.processor.run_once(worker_id, connection):
                count += 1
        return count
