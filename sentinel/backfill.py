"""History before anyone asks: a signal whose source can read the past (SQL over the
business tables' timestamps, PromQL ranges) and has no stored samples is backfilled
when a replica takes the lead, so its learned detector judges as soon as it can. The
backfill runs beside the evaluation loop, never in front of it, and the evaluator replays
the filled history once it is done. Meanwhile the signals being filled are read and
stored but start no alert, for at most ``hold`` from the start: a prior judging alone
the seconds before a month of history arrives would page on what that month calls
normal (no payment in a quiet Saturday half-hour). Past ``hold`` the priors judge."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from common.logs import get_logger
from sentinel.catalogue.models import SignalSpec
from sentinel.history import HistoryStore, Row, series_key
from sentinel.sources.base import RangeSource, Reading, Source, backfill, backfill_times

log = get_logger(__name__)

# Ten-minute samples: two weeks is 2,016 reads a signal, enough for hourly profiles.
STARTUP_STEP = timedelta(minutes=10)
# How much history one read covers: a stop waits for at most one such read.
CHUNK = timedelta(days=1)
# How long closing the sentinel waits for the read in progress.
STOP_TIMEOUT_SECONDS = 30.0


def backfill_series(
    name: str, source: Source, history: HistoryStore, since: datetime, until: datetime,
    step: timedelta, stopping: threading.Event | None = None,
) -> int:  # fmt: skip
    """Read the signal's source over [since, until] every ``step`` and store the samples.
    Raises ``BackfillUnsupported`` for sources that only see the present. Read a day
    at a time, it gives up between days once ``stopping`` is set, storing nothing: a
    signal's history is filled whole or not at all (the next start fills it again)."""
    next(backfill_times(since, until, step), None)  # the whole span checked up front
    readings: list[Reading] = []
    for start, end in _chunks(since, until, step):
        if stopping is not None and stopping.is_set():
            log.info("history.backfill_stopped", signal=name, since=since.isoformat())
            return 0
        readings.extend(backfill(source, start, end, step))
    rows = [
        Row(name, series_key(p.labels), r.t, p.value, p.volume) for r in readings for p in r.points
    ]
    history.append(rows)
    log.info(
        "history.backfilled", signal=name, since=since.isoformat(), readings=len(readings),
        samples=len(rows),
    )  # fmt: skip
    return len(rows)


def _chunks(
    since: datetime, until: datetime, step: timedelta
) -> Iterator[tuple[datetime, datetime]]:
    """[since, until] cut into spans of about ``CHUNK`` on the same ``step`` grid."""
    per_chunk = max(1, int(CHUNK / step))
    start = since
    while start <= until:
        end = min(start + (per_chunk - 1) * step, until)
        yield start, end
        start = end + step


def without_history(
    signals: list[SignalSpec], sources: dict[str, Source], history: HistoryStore
) -> list[SignalSpec]:
    """The signals a start-up backfill can fill: a source that reads the past, no samples."""
    return [
        s
        for s in signals
        if isinstance(sources.get(s.name), RangeSource) and not history.series_of(s.name)
    ]


class StartupBackfill:
    """Fills ``signals`` in a thread of its own, then calls ``done`` (the evaluator is
    rebuilt there, replaying what was filled). A failing signal is logged and skipped."""

    def __init__(
        self,
        signals: list[SignalSpec],
        sources: dict[str, Source],
        history: HistoryStore,
        until: datetime,
        days: float,
        done: Callable[[], None],
        step: timedelta = STARTUP_STEP,
        hold: timedelta = timedelta(0),
    ) -> None:
        self.signals = signals
        self.hold = hold
        self.sources = sources
        self.history = history
        self.until = until
        self.days = days
        self.done = done
        self.step = step
        self.finished = threading.Event()
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sentinel-backfill", daemon=True)

    def holding(self, signal: str, now: datetime) -> str | None:
        """Why ``signal`` starts no alert yet (None: it may): its history is being filled."""
        if self.finished.is_set() or now >= self.until + self.hold:
            return None
        if all(s.name != signal for s in self.signals):
            return None
        until = (self.until + self.hold).strftime("%H:%M:%S UTC")
        return f"its history is being backfilled; it starts alerts once that is done or at {until}"

    def start(self) -> None:
        log.info("history.backfill_started", signals=",".join(s.name for s in self.signals))
        self._thread.start()

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """Fill nothing further and wait for the read in progress: the databases
        it reads and writes are about to close under it."""
        self.stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("history.backfill_still_running", timeout_seconds=timeout)

    def _run(self) -> None:
        filled = 0
        for spec in self.signals:
            if self.stopping.is_set():
                break
            try:
                backfill_series(
                    spec.name,
                    self.sources[spec.name],
                    self.history,
                    self.until - timedelta(days=self.days),
                    self.until,
                    self.step,
                    self.stopping,
                )
                filled += 1
            except Exception:
                log.exception("history.backfill_failed", signal=spec.name)
        try:
            if filled and not self.stopping.is_set():
                self.done()
        finally:
            self.finished.set()
