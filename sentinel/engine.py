"""The evaluation cycle: read each due signal, store what was read, step its
detectors, and move its alerts. One ``Evaluator`` runs on the leader only."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from common.logs import get_logger
from sentinel.alerts import AlertBook, Step
from sentinel.catalogue.models import Catalogue, SignalSpec
from sentinel.detectors.base import Detector, Observation, Verdict
from sentinel.detectors.prior import Guarded
from sentinel.detectors.spec import DetectorSpec, build_detector
from sentinel.history import HistoryStore, Row, parse_series_key, series_key
from sentinel.lease import LeaseLost
from sentinel.models import Tuning
from sentinel.source_health import SourceHealth
from sentinel.sources.base import Reading, Source, depends_on

log = get_logger(__name__)

RECENT = 10  # samples quoted in an alert's evidence
# Bounds a new leader's replay (about a second per series), so takeover stays quick.
MAX_WARMUP_SAMPLES = 50_000


@dataclass
class SeriesState:
    detector: Detector
    labels: dict[str, str]
    spec: dict[str, Any]
    provenance: dict[str, Any] | None
    last_data_t: float | None = None
    recent: deque[float | None] = field(default_factory=lambda: deque(maxlen=RECENT))
    last_verdict: Verdict | None = None


def detector_spec_for(
    spec: SignalSpec, series: str, tunings: dict[tuple[str, str], Tuning]
) -> tuple[DetectorSpec, Tuning | None]:
    """The detector a series runs: its applied tuning, else the signal-wide one,
    else the catalogue's, else the default for the signal's kind."""
    tuning = tunings.get((spec.name, series)) or tunings.get((spec.name, ""))
    if tuning is not None:
        return spec.guarded(DetectorSpec.model_validate(tuning.spec)), tuning
    return spec.effective_detector, None


class Evaluator:
    def __init__(
        self,
        catalogue: Catalogue,
        sources: dict[str, Source],
        history: HistoryStore,
        book: AlertBook,
        tunings: dict[tuple[str, str], Tuning] | None = None,
        health: SourceHealth | None = None,
        holding: Callable[[str, datetime], str | None] | None = None,
    ) -> None:
        self.catalogue = catalogue
        # Source alerts and the start-up grace (None: every signal judged from its first read).
        self.health = health
        # Why a signal starts no alert yet besides the grace (its history being backfilled).
        self.holding = holding
        self.sources = sources
        self.history = history
        self.book = book
        self.tunings = tunings or {}
        self.series: dict[str, dict[str, SeriesState]] = {s.name: {} for s in catalogue.signals}
        # Each signal's due instants lie on a fixed grid (first evaluation + k ×
        # interval), so a late wake-up never pushes the following ones back.
        self.next_due: dict[str, datetime] = {}
        self.skipped_ticks: dict[str, int] = {}  # grid points passed over while behind
        self._behind: set[str] = set()
        self.last_reading: dict[str, Reading] = {}
        self.cycle_seconds = 0.0

    # --- detectors -----------------------------------------------------------

    def _detector_spec(self, spec: SignalSpec, series: str) -> tuple[DetectorSpec, dict | None]:
        detector, tuning = detector_spec_for(spec, series, self.tunings)
        return detector, tuning.provenance if tuning is not None else None

    def _state(self, spec: SignalSpec, series: str) -> SeriesState:
        states = self.series[spec.name]
        state = states.get(series)
        if state is None:
            detector_spec, provenance = self._detector_spec(spec, series)
            state = SeriesState(
                detector=build_detector(detector_spec),
                labels=parse_series_key(series),
                spec=detector_spec.model_dump(mode="json"),
                provenance=provenance,
            )
            states[series] = state
        return state

    def warm_up(self, now: datetime, days: float) -> int:
        """Replay stored history through fresh detectors (start-up, new leader),
        so they judge the next sample with everything learnt so far."""
        replayed = 0
        for spec in self.catalogue.signals:
            self.series[spec.name] = {}
            rows = self.history.load(spec.name, since=now - timedelta(days=days))
            for row in _latest_per_series(rows, MAX_WARMUP_SAMPLES):
                state = self._state(spec, row.series)
                state.last_verdict = state.detector.step(
                    Observation(row.t.timestamp(), row.value, row.volume)
                )
                if row.value is not None:
                    state.last_data_t = row.t.timestamp()
                state.recent.append(row.value)
                replayed += 1
        log.info("engine.warmed_up", samples=replayed, days=days)
        return replayed

    def judges(self) -> dict[tuple[str, str], tuple[str | None, datetime | None]]:
        """Per (signal, series) with a prior: whether the learned detector or the prior
        judged its last judged step, and since when."""
        out = {}
        for name, states in list(self.series.items()):
            for key, state in list(states.items()):
                guarded = getattr(state.detector, "inner", None)
                if isinstance(guarded, Guarded):
                    since = guarded.since
                    at = datetime.fromtimestamp(since, UTC) if since is not None else None
                    out[(name, key)] = (guarded.judged_by, at)
        return out

    # --- the cycle -------------------------------------------------------------

    def due(self, now: datetime) -> list[SignalSpec]:
        return [s for s in self.catalogue.signals if self.next_due.get(s.name, now) <= now]

    def next_wake(self) -> datetime | None:
        """The earliest instant a signal falls due (None before the first tick)."""
        return min(self.next_due.values(), default=None)

    def tick(self, now: datetime) -> int:
        started = time.process_time()
        due = self.due(now)
        rows: list[Row] = []  # stored once per cycle: one transaction, not one per signal
        for spec in due:
            try:
                self.evaluate(spec, now, rows)
            except LeaseLost:
                raise  # deposed mid-cycle: nothing more may be written
            except Exception:
                log.exception("engine.signal_failed", signal=spec.name)
            self.next_due[spec.name] = self._next_grid_point(spec, now)
        if self.health is not None and due:
            try:
                self.health.settle(now)
            except Exception:
                log.exception("engine.source_alerts_failed")
        self.history.append(rows)
        self.cycle_seconds = time.process_time() - started
        return len(due)

    def _next_grid_point(self, spec: SignalSpec, now: datetime) -> datetime:
        """The due instant after this evaluation: one interval after the previous
        due instant, not after ``now``; a loop that fell behind by more than an
        interval skips to the next grid point after ``now`` and says so once."""
        interval = timedelta(seconds=spec.interval_seconds)
        due = self.next_due.get(spec.name, now)
        following = due + interval
        if following > now:
            self._behind.discard(spec.name)
            return following
        missed = int((now - due) / interval)
        self.skipped_ticks[spec.name] = self.skipped_ticks.get(spec.name, 0) + missed
        if spec.name not in self._behind:  # once per spell of lateness, not every tick
            self._behind.add(spec.name)
            log.warning(
                "engine.fell_behind",
                signal=spec.name,
                late_seconds=round((now - due).total_seconds(), 3),
                skipped_ticks=missed,
            )
        return due + (missed + 1) * interval

    def evaluate(self, spec: SignalSpec, now: datetime, rows: list[Row]) -> list[Verdict]:
        """Read one signal and judge each of its series; the samples go to ``rows``."""
        reading = self.sources[spec.name].read(now)
        self.last_reading[spec.name] = reading
        quiet = None
        if self.health is not None:
            self.health.observe(spec.name, reading, now)
            grace = self.health.grace(spec.name, now)
            quiet = grace.reason if grace is not None else None
        if quiet is None and self.holding is not None:
            quiet = self.holding(spec.name, now)
        t = reading.t.astimezone(UTC)
        verdicts = []
        seen: set[str] = set()
        for point in reading.points:
            key = series_key(point.labels)
            seen.add(key)
            verdicts.append(
                self._observe(spec, key, t, point.value, point.volume, now, reading, rows, quiet)
            )
        if seen and "" not in seen and "" in self.series[spec.name]:
            self._retire_placeholder(spec, t, now, reading)
        # Series seen before but missing now (or the whole source down): no data.
        missing = [k for k in self.series[spec.name] if k not in seen]
        if not self.series[spec.name] and reading.no_data:
            missing = [""]
        for key in missing:
            verdicts.append(self._observe(spec, key, t, None, None, now, reading, rows, quiet))
        return verdicts

    def _retire_placeholder(
        self, spec: SignalSpec, t: datetime, now: datetime, reading: Reading
    ) -> None:
        """A source that was down before it ever answered stands as one unlabelled series;
        once it answers with its own series, that one is settled (its no-data alert
        resolves) and dropped, instead of staying without data for good."""
        del self.series[spec.name][""]
        calm = Verdict(
            t.timestamp(), None, 0.0, False, False, False, None, None, None,
            "the source answers again, as its own series",
        )  # fmt: skip
        evidence = {"value": None, "reason": calm.reason, "no_data_reason": reading.no_data}
        step = Step(calm, 0.0, spec.no_data, spec.absence_seconds)
        self.book.observe(spec, "", {}, step, now, evidence)

    def _observe(
        self,
        spec: SignalSpec,
        key: str,
        t: datetime,
        value: float | None,
        volume: float | None,
        now: datetime,
        reading: Reading,
        rows: list[Row],
        quiet: str | None = None,
    ) -> Verdict:
        state = self._state(spec, key)
        epoch = t.timestamp()
        verdict = state.detector.step(Observation(epoch, value, volume))
        rows.append(Row(spec.name, key, t, value, volume))
        state.recent.append(value)
        if value is not None:
            state.last_data_t = epoch
        # A series that never had data has been silent forever.
        silent = epoch - state.last_data_t if state.last_data_t is not None else float("inf")
        evidence = {
            "value": value,
            "volume": volume,
            "expected": verdict.expected,
            "lower": verdict.lower,
            "upper": verdict.upper,
            "score": round(verdict.score, 4),
            "reason": verdict.reason,
            "detector": state.spec,
            "samples": list(state.recent),
            "no_data_reason": reading.no_data,
            # What this series reads: a source alert on one of these mutes its no-data.
            "sources": list(depends_on(self.sources[spec.name])),
        }
        self.book.observe(
            spec,
            key,
            state.labels,
            Step(verdict, silent, spec.no_data, spec.absence_seconds),
            now,
            evidence,
            state.provenance,
            quiet=quiet,
        )
        state.last_verdict = verdict
        return verdict


def _latest_per_series(rows: list[Row], limit: int) -> list[Row]:
    """``rows`` (ordered by series, then time) keeping each series' last ``limit``."""
    kept: list[Row] = []
    start = 0
    for i in range(1, len(rows) + 1):
        if i == len(rows) or rows[i].series != rows[start].series:
            kept.extend(rows[max(start, i - limit) : i])
            start = i
    return kept
