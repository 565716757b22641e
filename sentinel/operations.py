"""Operations on a signal's history that a person starts: backfill it from the
business tables, and tune its detector on it (Citymobil's method: rewind the
chart a month, choose the threshold, see what it would have done)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from common.logs import get_logger
from sentinel import tunings
from sentinel.backfill import backfill_series
from sentinel.catalogue.models import SignalSpec
from sentinel.db import Database
from sentinel.detectors import TuningResult, evaluate, plot_tuning, tune
from sentinel.history import HistoryStore
from sentinel.service import Sentinel

log = get_logger(__name__)


def backfill_signal(
    sentinel: Sentinel, name: str, days: float, step: timedelta | None = None
) -> int:
    """Evaluate the signal's query over the past ``days`` and store the samples.
    Raises ``BackfillUnsupported`` for sources that only see the present."""
    spec = sentinel.catalogue.get(name)
    now = sentinel.clock.now()
    step = step or timedelta(seconds=spec.interval_seconds)
    return backfill_series(
        name, sentinel.sources[name], sentinel.history, now - timedelta(days=days), now, step
    )


@dataclass
class TunedSeries:
    series: str
    result: TuningResult
    chart: Path | None
    tuning_id: int


def tune_signal(
    sentinel: Sentinel,
    name: str,
    days: float,
    budget_per_week: float,
    incidents: list[tuple[datetime, datetime]] = (),  # type: ignore[assignment]
    chart_dir: Path | None = None,
    apply: bool = True,
    by: str = "cli",
) -> list[TunedSeries]:
    """Tune every series of the signal on its stored history and record the
    result with its provenance: applied (a person asked), or proposed (the
    scheduled re-tune, which never changes a threshold silently)."""
    out = tune_history(
        sentinel.db,
        sentinel.history,
        sentinel.catalogue.get(name),
        sentinel.clock.now(),
        days,
        budget_per_week,
        incidents,
        chart_dir,
        apply=apply,
        by=by,
    )
    if apply:
        sentinel.rebuild_detectors()
    return out


def tune_history(
    db: Database,
    history: HistoryStore,
    spec: SignalSpec,
    now: datetime,
    days: float,
    budget_per_week: float,
    incidents: list[tuple[datetime, datetime]] = (),  # type: ignore[assignment]
    chart_dir: Path | None = None,
    apply: bool = True,
    by: str = "cli",
) -> list[TunedSeries]:
    """`tune_signal` for a process that is not a running sentinel (the console): the
    same tuning on the same stored history, recorded the same way. A running sentinel
    sees an applied tuning on its next cycle."""
    name = spec.name
    rows = history.load(name, since=now - timedelta(days=days))
    if not rows:
        raise LookupError(
            f"no history for {name} in the last {days:g} days; run `sentinel backfill {name}` first"
        )
    spans = [(a.timestamp(), b.timestamp()) for a, b in incidents]
    out = []
    for key in sorted({r.series for r in rows}):
        mine = [r for r in rows if r.series == key]
        t = np.array([r.t.timestamp() for r in mine])
        v = np.array([np.nan if r.value is None else r.value for r in mine])
        vol = np.array([np.nan if r.volume is None else r.volume for r in mine])
        # The catalogue's detector (direction, volume guard...) is kept; tuning sets
        # its sensitivity.
        result = tune((t, v, vol), spec.kind, spans, budget_per_week, detector=spec.detector)
        chart = None
        if chart_dir is not None:
            chart_dir.mkdir(parents=True, exist_ok=True)
            chart = chart_dir / f"{name}{'.' + _slug(key) if key else ''}.png"
            plot_tuning(t, v, evaluate(result.spec, t, v, vol), result, chart)
        provenance: dict[str, Any] = {
            **result.provenance.model_dump(mode="json"),
            "tuned_at": now.isoformat(),
            "days": days,
            "false_alerts_per_week": round(result.backtest.false_alerts_per_week, 2),
            "backtest": result.backtest.model_dump(mode="json"),
            "notes": result.notes,
        }
        tuning_id = tunings.record(
            db,
            name,
            result.spec.model_dump(mode="json"),
            provenance,
            now,
            apply=apply,
            by=by,
            series=key,
        )
        out.append(TunedSeries(key, result, chart, tuning_id))
    return out


def _slug(key: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in key).strip("_")
