"""The owner's heartbeat: while a gate process has releases in flight, a
thread stamps them every ``interval`` seconds with the database's clock.

Recovery judges an owner by this stamp alone, never by ``kill(pid, 0)``: a
SIGKILLed gate left as a zombie still "exists" to ``kill``, a gate on another
host cannot be asked at all, and a reused pid lies. A process that stops
stamping (killed, frozen, cut off from the database) is dead to the others
once the stamp is ``stale_after_seconds`` old by the database's clock."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from common.db_clock import database_now
from common.logs import get_logger
from release_gate.db import Database
from release_gate.models import IN_FLIGHT, Release

log = get_logger(__name__)


def owner_is_alive(stamp: datetime | None, now: datetime, stale_after_seconds: float) -> bool:
    """An owner is alive while its last stamp is younger than the staleness limit."""
    return stamp is not None and now - stamp < timedelta(seconds=stale_after_seconds)


def stamp(session: Session, owner: str) -> int:
    """Stamp ``owner``'s releases in flight with the database's time; how many."""
    result = session.execute(
        update(Release)
        .where(Release.owner == owner, Release.status.in_(IN_FLIGHT))
        .values(owner_heartbeat_at=database_now(session))
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


class OwnerHeartbeat:
    """One thread per gate process, running only while it owns releases in flight:
    ``kick()`` after taking one (admission, recovery) starts it if need be."""

    def __init__(self, db: Database, owner: str, interval: float) -> None:
        self.db, self.owner, self.interval = db, owner, interval
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._kicks = 0
        self._stop = threading.Event()

    def kick(self) -> None:
        with self._lock:
            self._kicks += 1
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(
                    target=self._run, name=f"gate-heartbeat-{self.owner}", daemon=True
                )
                self._thread.start()

    def beat(self) -> int:
        with self.db.session() as session:
            return stamp(session, self.owner)

    def _run(self) -> None:
        while True:
            with self._lock:
                seen = self._kicks
            try:
                beating = self.beat() > 0
            except SQLAlchemyError as exc:  # the database is away: keep trying
                log.warning("gate.heartbeat_failed", owner=self.owner, error=type(exc).__name__)
                beating = True
            with self._lock:
                if (not beating and self._kicks == seen) or self._stop.is_set():
                    self._thread = None  # nothing in flight, and nothing new since
                    return
            if self._stop.wait(self.interval):
                with self._lock:
                    self._thread = None
                return

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout=10)
