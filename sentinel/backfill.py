"""History before anyone asks: a signal whose source can read the past (SQL over the
business tables' timestamps, PromQL ranges) and has no stored samples is backfilled
when a replica takes the lead, so its learned detector judges as soon as it can. The
backfill runs beside the evaluation loop, never in front of it: the priors guard every
series meanwhile, and the evaluator replays the filled history once it is done."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from common.logs import get_logger
from sentinel.catalogue.models import SignalSpec
from sentinel.history import HistoryStore, Row, series_key
from sentinel.sources.base import RangeSource, Source, backfill

log = get_logger(__name__)

# Ten-minute samples: two weeks is 2,016 reads a signal, enough for hourly profiles.
STARTUP_STEP = timedelta(minutes=10)


def backfill_series(
    name: str, source: Source, history: HistoryStore, since: datetime, until: datetime,
    step: timedelta,
) -> int:  # fmt: skip
    """Read the signal's source over [since, until] every ``step`` and store the samples.
    Raises ``BackfillUnsupported`` for sources that only see the present."""
    readings = backfill(source, since, until, step)
    rows = [
        Row(name, series_key(p.labels), r.t, p.value, p.volume) for r in readings for p in r.points
    ]
    history.append(rows)
    log.info(
        "history.backfilled", signal=name, since=since.isoformat(), readings=len(readings),
        samples=len(rows),
    )  # fmt: skip
    return len(rows)


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
    ) -> None:
        self.signals = signals
        self.sources = sources
        self.history = history
        self.until = until
        self.days = days
        self.done = done
        self.step = step
        self.finished = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sentinel-backfill", daemon=True)

    def start(self) -> None:
        log.info("history.backfill_started", signals=",".join(s.name for s in self.signals))
        self._thread.start()

    def _run(self) -> None:
        filled = 0
        for spec in self.signals:
            try:
                backfill_series(
                    spec.name,
                    self.sources[spec.name],
                    self.history,
                    self.until - timedelta(days=self.days),
                    self.until,
                    self.step,
                )
                filled += 1
            except Exception:
                log.exception("history.backfill_failed", signal=spec.name)
        try:
            if filled:
                self.done()
        finally:
            self.finished.set()
