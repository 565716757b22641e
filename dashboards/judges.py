"""Which fixed line judges a signal, as far as a dashboard or a Prometheus rule
can draw or evaluate it.

The detector in force is the one the sentinel runs: an applied signal-wide
tuning (``sentinel tune``), else the catalogue's detector, else the default of
the signal's kind, each with the signal's prior. Fixed detectors (``static``,
``ratio``, ``share``) and burn rates are lines; a learned band (``auto``,
``seasonal``, ...) moves with the history and exists only inside the sentinel,
so the fixed guard that stands in for it, the prior, is what is drawn and what
a Prometheus rule can evaluate."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sentinel.catalogue import SignalSpec
from sentinel.detectors.spec import DetectorSpec

Direction = Literal["above", "below"]
FIXED = ("static", "ratio", "share")


@dataclass(frozen=True)
class Line:
    value: float
    direction: Direction
    label: str  # what the line is, for a legend or a rule's description


@dataclass(frozen=True)
class BurnWindow:
    long_seconds: float
    short_seconds: float
    error_ratio: float  # factor × error budget: above it over both windows pages


@dataclass(frozen=True)
class Judge:
    """What judges a signal: the detector in force, and the fixed parts of it."""

    detector: DetectorSpec  # in force, with its prior
    learned: bool  # the detector itself is a learned band
    line: Line | None  # a fixed threshold on the value (the detector's, else its prior's)
    fixed: DetectorSpec | None  # the fixed detector that judges (static, ratio or share)
    burn: tuple[BurnWindow, ...] = ()
    slo: float | None = None
    tuning_id: int | None = None  # the applied tuning it comes from
    series_tunings: int = 0  # per-series tunings (not drawn: one line per signal)

    @property
    def describe(self) -> str:
        text = self.detector.describe()
        if self.tuning_id is not None:
            text += f" (tuning #{self.tuning_id})"
        return text


def judge_of(signal: SignalSpec, tunings: Mapping[tuple[str, str], Any] | None = None) -> Judge:
    """``tunings``: what ``sentinel.tunings.applied`` returns (rows with ``id`` and
    ``spec``), keyed by (signal, series); series "" is signal-wide."""
    tunings = tunings or {}
    tuning = tunings.get((signal.name, ""))
    if tuning is not None:
        detector = signal.guarded(DetectorSpec.model_validate(tuning.spec))
    else:
        detector = signal.effective_detector
    per_series = sum(1 for name, series in tunings if name == signal.name and series)
    tuning_id = tuning.id if tuning is not None else None
    if detector.kind == "burn_rate":
        p = detector.params
        budget = 1.0 - p["slo"]
        windows = tuple(
            BurnWindow(long_w, short_w, factor * p["factor_scale"] * budget)
            for long_w, short_w, factor in p["windows"]
        )
        return Judge(detector, False, None, None, windows, p["slo"], tuning_id, per_series)
    if detector.kind in FIXED:
        fixed = detector
        label = "tuned threshold" if tuning is not None else "threshold"
    elif detector.prior is not None and detector.prior.kind in FIXED:
        fixed = detector.prior
        label = "prior (until the learned band judges)"
    else:
        fixed, label = None, ""
    # A share's threshold is on value / volume, not on the value a panel draws.
    line = (
        Line(fixed.params["threshold"], fixed.params.get("direction", "above"), label)
        if fixed is not None and fixed.kind != "share"
        else None
    )
    learned = detector.kind not in FIXED
    return Judge(detector, learned, line, fixed, (), None, tuning_id, per_series)
