"""What the signal chart draws over the values: the band (or the fixed threshold) the
detector judges each series by, and the alerts its tuning would have raised, found the
way the sentinel finds them: the stored history replayed through the detector the
series runs (its applied tuning, else the catalogue's), and through a proposed
tuning still waiting for a person, to compare before accepting it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from sentinel.catalogue.models import SignalSpec
from sentinel.db import Database
from sentinel.detectors import BatchResult, DetectorSpec, evaluate
from sentinel.detectors.tuning import outcome
from sentinel.engine import MAX_WARMUP_SAMPLES, detector_spec_for
from sentinel.history import HistoryStore, Row
from sentinel.models import Tuning

# History replayed before the window, so a learning detector's band at the window's
# start is what it has learnt by then (the sentinel warms up on more: this bounds the
# page's cost; a detector still warming up shows its prior's threshold, as it judges).
REPLAY_BEFORE = timedelta(days=3)


@dataclass
class SeriesOverlay:
    lower: list[tuple[float, float]]  # (slot middle, mean of the band's edge)
    upper: list[tuple[float, float]]
    would_be: list[tuple[float, float]]  # (first, last firing step) in the window
    proposed: list[tuple[float, float]] = field(default_factory=list)
    has_proposal: bool = False  # a proposal waits: `proposed` is what it would raise


def overlay(
    db: Database,
    spec: SignalSpec,
    series: Sequence[str],
    applied: dict[tuple[str, str], Tuning],
    proposed: dict[str, Tuning],
    since: datetime,
    until: datetime,
    slots: int,
) -> dict[str, SeriesOverlay]:
    """Per series: its band as the means of the chart's slots (the slot middles match
    the reader's `averages`), and the would-be alerts of its detector and of its
    proposal (`proposed` by series key; "" covers every series)."""
    rows = HistoryStore(db).load(spec.name, since=since - REPLAY_BEFORE, until=until)
    by_series: dict[str, list[Row]] = {}
    for row in rows:
        by_series.setdefault(row.series, []).append(row)
    out = {}
    for key in series:
        # the sentinel's own bound on a replay (a month-long chart shows its latest part)
        mine = by_series.get(key, [])[-MAX_WARMUP_SAMPLES:]
        if not mine:
            continue
        t = np.array([r.t.timestamp() for r in mine])
        v = np.array([np.nan if r.value is None else r.value for r in mine])
        vol = np.array([np.nan if r.volume is None else r.volume for r in mine])
        detector, _ = detector_spec_for(spec, key, applied)
        result = evaluate(detector, t, v, vol)
        lower = _slot_means(t, result.lower, since, until, slots)
        upper = _slot_means(t, result.upper, since, until, slots)
        would = _episodes(t, v, result, since, until)
        found = proposed.get(key) or proposed.get("")
        if found is not None:
            candidate = spec.guarded(DetectorSpec.model_validate(found.spec))
            would_then = _episodes(t, v, evaluate(candidate, t, v, vol), since, until)
        else:
            would_then = []
        out[key] = SeriesOverlay(lower, upper, would, would_then, found is not None)
    return out


def _episodes(
    t: np.ndarray, v: np.ndarray, result: BatchResult, since: datetime, until: datetime
) -> list[tuple[float, float]]:
    """The tuner's would-be alerts (runs of firing steps) that overlap the window."""
    alerts, _ = outcome(t, v, result, [])
    a, b = since.timestamp(), until.timestamp()
    return [(max(x.start, a), x.end) for x in alerts if x.end >= a and x.start < b]


def _slot_means(
    t: np.ndarray, values: np.ndarray, since: datetime, until: datetime, slots: int
) -> list[tuple[float, float]]:
    start = since.timestamp()
    width = (until - since).total_seconds() / slots
    keep = (t >= start) & (t < until.timestamp()) & np.isfinite(values)
    if not keep.any():
        return []
    index = np.floor((t[keep] - start) / width).astype(np.int64)
    sums = np.bincount(index, weights=values[keep], minlength=slots)
    counts = np.bincount(index, minlength=slots)
    return [
        (start + (i + 0.5) * width, float(sums[i] / counts[i]))
        for i in np.flatnonzero(counts).tolist()
    ]
