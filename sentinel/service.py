"""A running sentinel replica: everything built once from settings, and the
loop that evaluates while this replica holds the leader lease."""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TextIO

from sqlalchemy import Engine

from common.clock import Clock, SystemClock
from common.db import make_engine
from common.logs import get_logger
from common.secrets import register_secrets, url_password
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
from sentinel.source_health import SourceHealth
from sentinel.sources.base import Source, depends_on
from sentinel.sources.config import SourceContext, build_source
from sentinel.sources.push import PushStore

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
    push: PushStore
    sources: dict[str, Source]
    translator_engine: Engine | None
    replica: str
    alerting: AlertingConfig
    notifier: Notifier
    dispatcher: Dispatcher
    reactions: Reactions
    channel_kinds: dict[str, str]
    health: SourceHealth | None  # None: no source alerts and no start-up grace
    evaluator: Evaluator | None = None  # exists while this replica leads
    term: lease.Term | None = None  # the leadership term the evaluator writes under
    leader_notifier: Notifier | None = None  # the notifier of that term (fenced writes)
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
        """One scheduler tick: keep (or take) the lease, then evaluate what is due.
        Every write of the cycle carries the lease's fencing token: a replica
        deposed mid-cycle has them refused, says so, and stops the cycle."""
        with self._lock:
            ttl = timedelta(seconds=self.settings.lease_seconds)
            term = lease.acquire(self.db, LEADER_LEASE, self.replica, ttl)
            if term is None:
                if self.evaluator is not None:
                    log.warning("sentinel.leadership_lost", replica=self.replica)
                    self._stand_down()
                return 0
            now = self.clock.now()
            try:
                if (
                    self.evaluator is None
                    or self.term is None
                    or term.token != self.term.token
                    or self._tunings_changed()
                ):
                    self._lead(term, now)
                assert self.evaluator is not None and self.leader_notifier is not None
                changed = self.evaluator.tick(now)
                self.leader_notifier.run_once()
            except lease.LeaseLost as exc:
                log.warning(
                    "sentinel.lease_lost",
                    replica=self.replica,
                    token=term.token,
                    detail=str(exc),
                    action="cycle stopped; its writes were refused",
                )
                self._stand_down()
                return 0
            return changed

    def _lead(self, term: lease.Term, now: datetime) -> None:
        """Start (or, after ``rebuild_detectors``, restart) evaluating for ``term``:
        its alert book, history writes and notifier go through the fenced database."""
        if self.term is None or term.token != self.term.token:
            log.warning("sentinel.leadership_taken", replica=self.replica, token=term.token)
        self.term = term
        fenced = lease.FencedDatabase(self.db, term)
        self.book = AlertBook(fenced, flap_window=self.book.flap_window)
        self.leader_notifier = make_notifier(
            fenced, self.alerting, self.clock, self.settings, self.dispatcher
        )
        if self.health is not None:
            self.health.db = fenced  # source alerts are the leader's writes too
            self.health.reload()
        self.evaluator = Evaluator(
            self.catalogue,
            self.sources,
            HistoryStore(fenced),
            self.book,
            tunings.applied(self.db),
            health=self.health,
            holding=self._held_by_backfill,
        )
        self.evaluator.warm_up(now, self.settings.history_warmup_days)
        self._start_backfill(now)

    def _tunings_changed(self) -> bool:
        """A tuning applied or accepted by another process (the CLI, the console) since
        the detectors were built: they are rebuilt with it, as after `rebuild_detectors`."""
        assert self.evaluator is not None
        built = {t.id for t in self.evaluator.tunings.values()}
        return {t.id for t in tunings.applied(self.db).values()} != built

    def _stand_down(self) -> None:
        self.evaluator = None
        self.leader_notifier = None
        self.term = None

    def _start_backfill(self, now: datetime) -> None:
        """Once per process, on first taking the lead: fill what has no history yet."""
        if self.backfill is not None or self.settings.backfill_days <= 0:
            return
        signals = without_history(self.catalogue.signals, self.sources, self.history)
        self.backfill = StartupBackfill(
            signals, self.sources, self.history, now, self.settings.backfill_days,
            done=self.rebuild_detectors,
            hold=timedelta(seconds=self.settings.backfill_hold_seconds),
        )  # fmt: skip
        if signals:
            self.backfill.start()
        else:
            self.backfill.finished.set()

    def _held_by_backfill(self, signal: str, now: datetime) -> str | None:
        backfill = self.backfill
        return backfill.holding(signal, now) if backfill is not None else None

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
                lease.release(self.db, LEADER_LEASE, self.replica)
                self._stand_down()

    def stop_backfill(self) -> None:
        """On the way out: the start-up backfill reads and writes nothing more."""
        if self.backfill is not None:
            self.backfill.stop()

    def close(self) -> None:
        self.stop_backfill()
        self.step_down()
        self.dispatcher.close()
        for source in self.sources.values():
            source.close()
        if self.translator_engine is not None:
            self.translator_engine.dispose()
        self.db.dispose()


def make_notifier(
    db: Database,
    alerting: AlertingConfig,
    clock: Clock,
    settings: SentinelSettings,
    dispatcher: Dispatcher,
) -> Notifier:
    return Notifier(db, alerting, clock, public_url=settings.public_url, on_queued=dispatcher.wake)


def build_sentinel(
    settings: SentinelSettings | None = None,
    clock: Clock | None = None,
    catalogue: Catalogue | None = None,
    migrate: bool = True,
    outbox_stream: TextIO | None = None,
) -> Sentinel:
    """``outbox_stream``: where pages sent without provider credentials are printed
    (default stdout; the demo narrates instead and sends them to its log)."""
    settings = settings or SentinelSettings()
    register_secrets(
        [
            settings.twilio_auth_token,
            settings.slack_bot_token,
            settings.slack_signing_secret,
            settings.webhook_secret,
            url_password(settings.database_url),
            url_password(settings.translator_database_url),
        ]
    )
    db = Database(settings.database_url)
    if migrate:
        db.migrate()
    catalogue = catalogue or load_catalogue(settings.catalogue)
    translator_engine = make_engine(settings.translator_database_url, read_only=True)
    clock = clock or SystemClock()
    alerting = load_alerting_config(settings.alerting)
    dispatcher, reactions, kinds = build_dispatcher(settings, db, alerting, clock, outbox_stream)
    push_signals = sum(spec.source.type == "push" for spec in catalogue.signals)
    push = PushStore(db, max_signals=max(1000, push_signals), clock=clock)
    context = SourceContext(
        translator_engine=translator_engine,
        translator_database_url=settings.translator_database_url,
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
    health = SourceHealth(
        signals={spec.name: spec for spec in catalogue.signals},
        dependencies={name: depends_on(source) for name, source in sources.items()},
        db=db,
        startup_grace=timedelta(seconds=settings.startup_grace_seconds),
        warmup=timedelta(seconds=settings.source_warmup_seconds),
        down_after=timedelta(seconds=settings.source_down_after_seconds),
    )
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
        notifier=make_notifier(db, alerting, clock, settings, dispatcher),
        dispatcher=dispatcher,
        reactions=reactions,
        channel_kinds=kinds,
        health=health,
    )
