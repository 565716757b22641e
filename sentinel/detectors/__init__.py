"""Pure detection and threshold tuning: history in, thresholds and verdicts out.

No I/O here (no database, no HTTP, no clock: time comes in as data), except the PNG
chart writer and the CSV backtest, which take the paths/streams they are given.

    spec = default_spec(SignalKind.RATIO)          # or DetectorSpec(kind=..., params=...)
    det = build_detector(spec)                     # stepping, one Observation at a time
    verdict = det.step(Observation(t, value, volume))
    batch = evaluate(spec, t, v, volume)           # the same verdicts, vectorised
    result = tune((t, v), "ratio", incidents, budget_per_week=1.0)
"""

from .backtest import BacktestError, backtest_csv
from .base import BatchResult, Detector, Observation, OrderError, Persistence, Verdict, run
from .spec import (
    KINDS,
    DetectorSpec,
    SignalKind,
    build_detector,
    default_spec,
    evaluate,
    spec_for,
)
from .tuning import (
    BacktestCounts,
    Incident,
    IncidentOutcome,
    Provenance,
    TuningResult,
    WouldBeAlert,
    plot_tuning,
    tune,
)

__all__ = [
    "KINDS",
    "BacktestCounts",
    "BacktestError",
    "BatchResult",
    "Detector",
    "DetectorSpec",
    "Incident",
    "IncidentOutcome",
    "Observation",
    "OrderError",
    "Persistence",
    "Provenance",
    "SignalKind",
    "TuningResult",
    "Verdict",
    "WouldBeAlert",
    "backtest_csv",
    "build_detector",
    "default_spec",
    "evaluate",
    "plot_tuning",
    "run",
    "spec_for",
    "tune",
]
