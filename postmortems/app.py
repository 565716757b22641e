"""The served process: the HTTP API and web form, and in the background the
alert, acknowledgement and rollback watchers and the reminders, one pass every
``interval`` seconds."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError

from common.logs import get_logger
from postmortems.reminders import Reminders, Sender, http_sender, sentinel_sender
from postmortems.service import Postmortems
from postmortems.watcher import AckWatcher, AlertWatcher, ReleaseWatcher

log = get_logger("postmortems.app")


def default_sender(service: Postmortems, sentinel_db: Any = None) -> Sender:
    """Over HTTP when ``sentinel_url`` is set, else into the sentinel's outbox
    (``sentinel_db``: an open sentinel database to reuse)."""
    settings = service.settings
    if settings.sentinel_url:
        return http_sender(settings.sentinel_url, settings.sentinel_api_token)
    if sentinel_db is None:
        from sentinel.db import Database as SentinelDatabase

        sentinel_db = SentinelDatabase(settings.sentinel_database_url)
    return sentinel_sender(sentinel_db, service.clock.now)


class Background:
    def __init__(
        self,
        service: Postmortems,
        *,
        interval: float,
        reminders: bool = True,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        from sentinel.db import Database as SentinelDatabase

        self.service = service
        self.interval = interval
        self.sentinel_db = SentinelDatabase(service.settings.sentinel_database_url)
        self.watcher = AlertWatcher(
            service, self.sentinel_db, default_service=service.settings.default_service
        )
        self.acks = AckWatcher(service, self.sentinel_db)
        self.gate_db = None
        self.releases: ReleaseWatcher | None = None
        if service.settings.gate_database_url:
            from release_gate.db import Database as GateDatabase

            self.gate_db = GateDatabase(service.settings.gate_database_url)
            self.releases = ReleaseWatcher(service, self.gate_db)
        sender = default_sender(service, self.sentinel_db) if reminders else None
        self.reminders = Reminders(service, sender) if sender else None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # For /api/health: when the watchers last got through a whole pass.
        self.monotonic = monotonic
        self.started = monotonic()
        self.last_success: float | None = None  # time.monotonic() of that pass
        self.last_success_at: datetime | None = None
        self.last_error: str | None = None

    def run_once(self) -> None:
        failed: list[str] = []
        try:
            self.watcher.run_once()
        except DBAPIError as exc:
            failed.append(f"alerts: {type(exc).__name__}")
            # Typically a sentinel database not created yet: say it in one line.
            log.warning(
                "watcher.sentinel_unreadable",
                error=str(exc.orig).splitlines()[0],
                url=self.sentinel_db.engine.url.render_as_string(hide_password=True),
            )
        except Exception as exc:  # noqa: BLE001 - the next pass retries; the API keeps serving
            failed.append(f"alerts: {type(exc).__name__}")
            log.exception("watcher.pass_failed")
        try:
            self.acks.run_once()  # after the alerts: a new incident's page may be acked
        except DBAPIError as exc:
            failed.append(f"acknowledgements: {type(exc).__name__}")
            log.warning("watcher.acks_unreadable", error=str(exc.orig).splitlines()[0])
        except Exception as exc:  # noqa: BLE001
            failed.append(f"acknowledgements: {type(exc).__name__}")
            log.exception("watcher.acks_failed")
        if self.releases is not None:
            try:
                self.releases.run_once()
            except Exception as exc:  # noqa: BLE001
                failed.append(f"rollbacks: {type(exc).__name__}")
                log.exception("watcher.rollbacks_failed")
        if failed:
            self.last_error = ", ".join(failed)
        else:
            self.last_success, self.last_success_at = self.monotonic(), datetime.now(UTC)
            self.last_error = None
        if self.reminders is not None:
            try:
                self.reminders.run_once()
            except Exception:  # noqa: BLE001
                log.exception("reminders.pass_failed")

    def run_forever(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self.interval)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run_forever, name="postmortems-bg", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.sentinel_db.dispose()
        if self.gate_db is not None:
            self.gate_db.dispose()


def create_served_app(
    service: Postmortems, *, background: bool, interval: float, identity: Any = None
) -> Any:
    from postmortems.api import create_app

    app: FastAPI = create_app(service, identity)
    if not background:
        return app
    worker = Background(service, interval=interval)
    app.state.background = worker  # /api/health reports its last successful pass

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        worker.start()
        try:
            yield
        finally:
            worker.stop()

    app.router.lifespan_context = lifespan
    return app
