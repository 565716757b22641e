"""A running sentinel replica: everything built once from settings, and the
loop that evaluates while this replica holds the leader lease."""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine

from common.clock import Clock, SystemClock
from common.db import make_engine
from common.logs import get_logger
from sentinel import lease, tunings
from sentinel.alerting.config import AlertingConfig, load_alerting_config
from sentinel.alerting.delivery import build_dispatcher
from sentinel.alerting.dispatcher import Dispatcher
from sentinel.alerting.notifier import Notifier
from sentinel.alerting.reactions import Reactions
from sentinel.alerts import AlertBook
from sentinel.backfill import StartupBackfill, without_history
from sentinel.catalogue import Catalogue, load_catalogue
from sentinel.db import Database
from sentinel.engine import Evaluator
from sentinel.history import HistoryStore
from sentinel.settings import SentinelSettings
from sentinel.sources.base import Source
from sentinel.sources.config import SourceContext, build_source
from sentinel.sources.push import PushBuffer

log = get_logger(__name__)

LEADER_LEASE = "sentinel-evaluator"


@dataclass
class Sentinel:
    settings: SentinelSettings
    clock: Clock
    db: Database
    catalogue: Catalogue
    history: HistoryStore
    book: AlertBook
    push: PushBuffer
    sources: dict[str, Source]
    translator_engine: Engine | None
    replica: str
    alerting: AlertingConfig
    notifier: Notifier
    dispatcher: Dispatcher
    reactions: Reactions
    channel_kinds: dict[str, str]
    evaluator: Evaluator | None = None  # exists while this replica leads
    backfill: StartupBackfill | None = None
    # The evaluation loop's own record, for /api/health: a loop that keeps
    # failing (its database away, say) is not healthy, however alive the process.
    last_cycle_ok_at: datetime | None = None
    cycle_failures: int = 0  # in a row
    last_cycle_error: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def is_leader(self) -> bool:
        return self.evaluator is not None

    def cycle(self) -> int:
        """One scheduler tick: keep (or take) the lease, then evaluate what is due."""
        with self._lock:
            now = self.clock.now()
            ttl = timedelta(seconds=self.settings.lease_seconds)
            if not lease.acquire(self.db, LEADER_LEASE, self.replica, now, ttl):
                if self.evaluator is not None:
                    log.warning("sentinel.leadership_lost", replica=self.replica)
                    self.evaluator = None
                return 0
            if self.evaluator is None:
                log.warning("sentinel.leadership_taken", replica=self.replica)
                self.book.reload()
                self.evaluator = Evaluator(
                    self.catalogue, self.sources, self.history, self.book, tunings.applied(self.db)
                )
                self.evaluator.warm_up(now, self.settings.history_warmup_days)
                self._start_backfill(now)
            changed = self.evaluator.tick(now)
            self.notifier.run_once()
            return changed

    def _start_backfill(self, now: datetime) -> None:
        """Once per process, on first taking the lead: fill what has no history yet."""
        if self.backfill is not None or self.settings.backfill_days <= 0:
            return
        signals = without_history(self.catalogue.signals, self.sources, self.history)
        self.backfill = StartupBackfill(
            signals, self.sources, self.history, now, self.settings.backfill_days,
            done=self.rebuild_detectors,
        )  # fmt: skip
        if signals:
            self.backfill.start()
        else:
            self.backfill.finished.set()

    def next_cycle_at(self) -> datetime:
        """When the loop should run ``cycle`` again: the earliest due signal, and
        at least every ``tick_seconds`` (lease renewal, escalation timers)."""
        poll = self.clock.now() + timedelta(seconds=self.settings.tick_seconds)
        evaluator = self.evaluator
        due = evaluator.next_wake() if evaluator is not None else None
        return min(poll, due) if due is not None else poll

    def run_cycle(self) -> datetime:
        """One turn of the cadence loop: a cycle, then when the next is due."""
        try:
            self.cycle()
        except Exception as exc:
            self.cycle_failures += 1
            self.last_cycle_error = f"{type(exc).__name__}: {exc}"[:300]
            raise
        self.last_cycle_ok_at = self.clock.now()
        self.cycle_failures, self.last_cycle_error = 0, None
        return self.next_cycle_at()

    def deliver(self) -> int:
        """Send what the outbox holds (every replica may: claims are leased)."""
        return self.dispatcher.drain()

    def rebuild_detectors(self) -> None:
        """After a tuning is applied or history is backfilled: the next cycle builds the
        detectors afresh and replays the stored history through them."""
        with self._lock:
            self.evaluator = None

    def step_down(self) -> None:
        with self._lock:
            if self.evaluator is not None:
                lease.release(self.db, LEADER_LEASE, self.replica, self.clock.now())
                self.evaluator = None

    def close(self) -> None:
        self.step_down()
        self.dispatcher.close()
        for source in self.sources.values():
            source.close()
        if self.translator_engine is not None:
            self.translator_engine.dispose()
        self.db.dispose()


def build_sentinel(
    settings: SentinelSettings | None = None,
    clock: Clock | None = None,
    catalogue: Catalogue | None = None,
    migrate: bool = True,
) -> Sentinel:
    settings = settings or SentinelSettings()
    db = Database(settings.database_url)
    if migrate:
        db.migrate()
    catalogue = catalogue or load_catalogue(settings.catalogue)
    translator_engine = make_engine(settings.translator_database_url, read_only=True)
    clock = clock or SystemClock()
    alerting = load_alerting_config(settings.alerting)
    dispatcher, reactions, kinds = build_dispatcher(settings, db, alerting, clock)
    push_signals = sum(spec.source.type == "push" for spec in catalogue.signals)
    push = PushBuffer(max_signals=max(1000, push_signals), clock=clock)
    context = SourceContext(
        translator_engine=translator_engine,
        prometheus_url=settings.prometheus_url,
        scrape_targets=settings.scrape_targets,
        node_targets=settings.node_targets,
        translator_log_file=settings.translator_log_file,
        push_buffer=push,
    )
    sources = {
        spec.name: build_source(spec.source, context, signal=spec.name)
        for spec in catalogue.signals
    }
    return Sentinel(
        settings=settings,
        clock=clock,
        db=db,
        catalogue=catalogue,
        history=HistoryStore(db),
        book=AlertBook(db, flap_window=timedelta(minutes=alerting.flap_minutes)),
        push=push,
        sources=sources,
        translator_engine=translator_engine,
        replica=settings.replica or f"{socket.gethostname()}:{os.getpid()}",
        alerting=alerting,
        notifier=Notifier(
            db, alerting, clock, public_url=settings.public_url, on_queued=dispatcher.wake
        ),
        dispatcher=dispatcher,
        reactions=reactions,
        channel_kinds=kinds,
    )
