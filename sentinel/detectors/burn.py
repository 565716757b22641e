"""Multi-window, multi-burn-rate alerts on an error ratio against an SLO (Google SRE
workbook, chapter 5): page when the error budget burns `factor` times too fast over both
a long window (the trend is real) and a short one (it is still happening)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import (
    Observation,
    Raw,
    Verdict,
    clean,
    fmt,
    fmt_duration,
    ratio_score,
    ratio_score_array,
)
from .threshold import no_data
from .windows import TimeWindow, cumulative, window_sums

# (long window, short window, burn factor): 2% of a 30-day budget in 1 h, 5% in 6 h
SRE_WINDOWS: tuple[tuple[float, float, float], ...] = (
    (3600.0, 300.0, 14.4),
    (21600.0, 1800.0, 6.0),
)


class BurnRate:
    name = "burn_rate"

    def __init__(
        self,
        slo: float = 0.999,
        windows: tuple[tuple[float, float, float], ...] = SRE_WINDOWS,
        min_volume: float = 0.0,
        factor_scale: float = 1.0,
    ) -> None:
        self.slo = slo
        self.pairs = tuple((float(a), float(b), float(f)) for a, b, f in windows)
        self.min_volume = min_volume
        self.factor_scale = factor_scale
        self.budget = 1.0 - slo
        self._widths = sorted({w for a, b, _ in self.pairs for w in (a, b)})
        self._wins = {w: TimeWindow(w, 2) for w in self._widths}
        self._cum = (0.0, 0.0)
        self._t0: float | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.name,
            "slo": self.slo,
            "windows": [list(p) for p in self.pairs],
            "min_volume": self.min_volume,
            "factor_scale": self.factor_scale,
        }

    def step(self, obs: Observation) -> Verdict:
        v = clean(obs.value)
        if v is None:
            return no_data(obs.t)
        vol = clean(obs.volume)
        w = vol if vol is not None else 1.0
        if self._t0 is None:
            self._t0 = obs.t
        self._cum = (self._cum[0] + v * w, self._cum[1] + w)
        burn: dict[float, float] = {}
        volume: dict[float, float] = {}
        for width, win in self._wins.items():
            e, n = win.push(obs.t, self._cum)
            burn[width] = (e / n if n > 0 else 0.0) / self.budget
            volume[width] = n
        best = -1.0
        best_pair = self.pairs[0]
        for pair in self.pairs:
            long_w, short_w, f = pair
            if volume[short_w] < self.min_volume:
                continue
            s = min(burn[long_w] / f, burn[short_w] / f)
            if s > best:
                best, best_pair = s, pair
        if best < 0:
            return Verdict(
                obs.t, v, 0.0, False, False, False, None, None, None,
                f"volume {fmt(volume[self.pairs[0][1]])} < {fmt(self.min_volume)}: no verdict",
            )  # fmt: skip
        anomalous = best >= self.factor_scale
        long_w, short_w, f = best_pair
        thr = f * self.factor_scale
        reason = (
            f"error budget burning {fmt(burn[long_w])}× over {self._span(obs.t, long_w)} and "
            f"{fmt(burn[short_w])}× over {self._span(obs.t, short_w)} "
            f"({'≥' if anomalous else 'below'} {fmt(thr)}× for SLO {self.slo * 100:.4g}%)"
        )
        return Verdict(
            obs.t,
            v,
            ratio_score(best, self.factor_scale),
            anomalous,
            anomalous,
            False,
            self.budget,
            None,
            self.pairs[0][2] * self.factor_scale * self.budget,
            reason,
        )


    def _span(self, t: float, width: float) -> str:
        """A window, or the data it holds when the series is younger than the window."""
        seen = t - (self._t0 if self._t0 is not None else t)
        if seen >= width:
            return fmt_duration(width)
        return f"the {fmt_duration(seen)} of data so far ({fmt_duration(width)} window)"


def burn_batch(p: dict[str, Any], t: np.ndarray, v: np.ndarray, vol: np.ndarray | None) -> Raw:
    n = len(t)
    slo = float(p["slo"])
    budget = 1.0 - slo
    pairs = tuple((float(a), float(b), float(f)) for a, b, f in p["windows"])
    scale = float(p["factor_scale"])
    valid = np.isfinite(v)
    rows = np.flatnonzero(valid)
    volume = vol[rows] if vol is not None else np.full(len(rows), np.nan)
    w = np.where(np.isfinite(volume), volume, 1.0)
    tv = t[rows]
    ce = cumulative(v[rows] * w)
    cv = cumulative(w)
    burn: dict[float, np.ndarray] = {}
    vsum: dict[float, np.ndarray] = {}
    for width in sorted({x for a, b, _ in pairs for x in (a, b)}):
        e = window_sums(tv, ce, width)
        nn = window_sums(tv, cv, width)
        with np.errstate(invalid="ignore", divide="ignore"):
            burn[width] = np.where(nn > 0, e / np.where(nn > 0, nn, 1.0), 0.0) / budget
        vsum[width] = nn
    best = np.full(len(rows), -1.0)
    for long_w, short_w, f in pairs:
        s = np.minimum(burn[long_w] / f, burn[short_w] / f)
        s = np.where(vsum[short_w] >= p["min_volume"], s, -1.0)
        best = np.maximum(best, s)  # strict '>' when stepping keeps the first of equals: same value
    judged_rows = best >= 0
    strength = np.full(n, np.nan)
    strength[rows[judged_rows]] = best[judged_rows]
    judged = np.isfinite(strength)
    anomalous = judged & (strength >= scale)
    expected = np.where(judged, budget, np.nan)
    upper = np.where(judged, pairs[0][2] * scale * budget, np.nan)
    return Raw(
        strength=strength,
        anomalous=anomalous,
        no_data=~valid,
        judged=judged,
        expected=expected,
        lower=np.full(n, np.nan),
        upper=upper,
        score=np.where(judged, ratio_score_array(np.nan_to_num(strength), scale), 0.0),
    )
