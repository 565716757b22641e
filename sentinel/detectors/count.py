"""Counts with a zero or low baseline (failed payments per minute): the upper tail of a
Poisson, or a negative binomial when the history is overdispersed, with a minimum count
so that "3 failures where 0.2 were expected" does not page anybody."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import special, stats

from .base import Observation, Raw, Verdict, clean, fmt, ratio_score, ratio_score_array
from .blocks import Ring, block_index, block_of, gather, row_median
from .threshold import no_data

MIN_BLOCKS = 3  # hours of history before judging
OVERDISPERSED = 1.2  # variance/mean above this → negative binomial


def _baseline(win_means: np.ndarray, win_sums: np.ndarray, dispersion: str) -> tuple:
    """Per row of block windows: λ (median of hourly mean counts), NB size r (inf = Poisson),
    and how many blocks had data. win_sums has shape (rows, H, 3): sum, sum of squares, n."""
    lam, nblk = row_median(win_means)
    # contiguous rows: numpy then sums each row the same way whatever the row count
    s, q, n = (np.nansum(np.ascontiguousarray(win_sums[:, :, j]), axis=1) for j in range(3))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s / n
        var = q / n - mean * mean
        over = (var > OVERDISPERSED * lam) & (lam > 0)
        r = np.where(over, lam * lam / np.where(over, var - lam, 1.0), np.inf)
    if dispersion == "poisson":
        r = np.full(len(lam), np.inf)
    return lam, r, nblk


def _tail(x: np.ndarray | float, lam: np.ndarray | float, r: np.ndarray | float) -> Any:
    """P(X >= x) under Poisson(lam) (r = inf) or NB(mean lam, size r); ufuncs only, so a
    scalar call and an array call give the same bits."""
    k = np.ceil(x) - 1.0
    pois = special.pdtrc(np.maximum(k, 0.0), lam)
    with np.errstate(invalid="ignore", divide="ignore"):
        nb = special.betainc(np.maximum(k, 0.0) + 1.0, r, lam / (r + lam))
    p = np.where(np.isinf(r), pois, nb)
    return np.where(k < 0, 1.0, p)


def _critical(lam: np.ndarray, r: np.ndarray, alpha: float) -> np.ndarray:
    """Smallest count c with P(X >= c) <= alpha (for the band shown in alerts)."""
    out = np.ones(len(lam))
    pois = np.isinf(r) & (lam > 0)
    if pois.any():
        out[pois] = stats.poisson.isf(alpha, lam[pois]) + 1.0
    nb = ~np.isinf(r) & (lam > 0)
    if nb.any():
        out[nb] = stats.nbinom.isf(alpha, r[nb], r[nb] / (r[nb] + lam[nb])) + 1.0
    return out


class Count:
    """Upper tail of the count distribution learned from the past `baseline_hours`."""

    name = "count"

    def __init__(
        self,
        alpha: float = 1e-4,
        min_count: float = 5.0,
        baseline_hours: int = 168,
        dispersion: str = "auto",
    ) -> None:
        self.alpha = alpha
        self.min_count = min_count
        self.hours = baseline_hours
        self.dispersion = dispersion
        self._tau = -math.log10(alpha)
        self._ring = Ring(baseline_hours + 1, 3)
        self._means = Ring(baseline_hours + 1, 1)
        self._b: int | None = None
        self._cum = [0.0, 0.0, 0.0]
        self._start = (0.0, 0.0, 0.0)
        self._lam = math.nan
        self._r = math.inf
        self._crit = math.nan
        self._nblk = 0

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.name,
            "alpha": self.alpha,
            "min_count": self.min_count,
            "baseline_hours": self.hours,
            "dispersion": self.dispersion,
            "baseline_mean": None if self._lam != self._lam else self._lam,
            "nb_size": None if math.isinf(self._r) else self._r,
        }

    def _enter(self, b: int) -> None:
        if self._b is not None:
            s = self._cum[0] - self._start[0]
            q = self._cum[1] - self._start[1]
            n = self._cum[2] - self._start[2]
            self._ring.put(self._b, np.array([s, q, n]))
            self._means.put(self._b, s / n if n > 0 else math.nan)
        self._b = b
        self._start = (self._cum[0], self._cum[1], self._cum[2])
        win = self._ring.window(b, self.hours)[None, :, :]
        means = self._means.window(b, self.hours)[:, 0][None, :]
        lam, r, nblk = _baseline(means, win, self.dispersion)
        self._lam, self._r, self._nblk = float(lam[0]), float(r[0]), int(nblk[0])
        if self._nblk >= MIN_BLOCKS:
            crit = _critical(lam, r, self.alpha)[0]
            self._crit = max(float(crit), self.min_count)

    def step(self, obs: Observation) -> Verdict:
        b = block_of(obs.t)
        if b != self._b:
            self._enter(b)
        x = clean(obs.value)
        if x is None:
            return no_data(obs.t)
        c = self._cum
        c[0] += x
        c[1] += x * x
        c[2] += 1.0
        if self._nblk < MIN_BLOCKS:
            return Verdict(
                obs.t, x, 0.0, False, False, False, None, None, None,
                f"learning the baseline: {self._nblk} of {MIN_BLOCKS} hours with data",
            )  # fmt: skip
        lam, r = self._lam, self._r
        # at or below its baseline a count is never anomalous: no tail to compute
        p = float(_tail(x, lam, r)) if x > lam and x >= self.min_count else 1.0
        anomalous = x >= self.min_count and p <= self.alpha
        strength = -math.log10(max(p, 1e-300)) if x >= self.min_count else 0.0
        model = "Poisson" if math.isinf(r) else f"negative binomial, size {fmt(r)}"
        verb = "≥" if anomalous else "<"
        reason = (
            f"{fmt(x)} {verb} {fmt(self._crit)}: P(≥{fmt(x)}) = {fmt(p)} vs {fmt(self.alpha)} "
            f"(baseline {fmt(lam)} per step, median of {self._nblk} hours, {model})"
        )
        return Verdict(
            obs.t,
            x,
            ratio_score(strength, self._tau),
            anomalous,
            anomalous,
            False,
            lam,
            None,
            self._crit,
            reason,
        )


def count_batch(p: dict[str, Any], t: np.ndarray, v: np.ndarray, vol: np.ndarray | None) -> Raw:
    n = len(t)
    hours = int(p["baseline_hours"])
    valid = np.isfinite(v)
    blk = block_index(t) if n else np.zeros(0, np.int64)
    nan = np.full(n, np.nan)
    raw = Raw(
        strength=nan.copy(),
        anomalous=np.zeros(n, bool),
        no_data=~valid,
        judged=np.zeros(n, bool),
        expected=nan.copy(),
        lower=nan.copy(),
        upper=nan.copy(),
        score=np.zeros(n),
    )
    if n == 0:
        return raw
    b0 = int(blk[0])
    nb = int(blk[-1]) - b0 + 1
    rows = np.flatnonzero(valid)
    x = v[rows]
    rb = blk[rows] - b0
    # per-block sums as differences of running totals, like the stepping accumulators
    tot = np.zeros((len(rows) + 1, 3))
    np.cumsum(x, out=tot[1:, 0])
    np.cumsum(x * x, out=tot[1:, 1])
    tot[1:, 2] = np.arange(1, len(rows) + 1)
    ends = np.searchsorted(rb, np.arange(nb), side="right")
    starts = np.concatenate([[0], ends[:-1]])
    sums = tot[ends] - tot[starts]
    has = sums[:, 2] > 0
    sums[~has] = np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums[:, 0] / sums[:, 2]
    # baseline for every entered block from the `hours` blocks before it
    entered = np.unique(blk) - b0
    idx = entered[:, None] - np.arange(hours, 0, -1)[None, :]
    win = np.stack([gather(sums[:, j], idx) for j in range(3)], axis=2)
    lam, r, nblk = _baseline(gather(means, idx), win, p["dispersion"])
    ready = nblk >= MIN_BLOCKS
    crit = np.full(len(entered), np.nan)
    if ready.any():
        crit[ready] = np.maximum(_critical(lam[ready], r[ready], p["alpha"]), p["min_count"])
    pos = np.searchsorted(entered, blk - b0)
    ok = valid & ready[pos]
    lam_r, r_r = lam[pos], r[pos]
    tail = np.ones(n)
    big = ok & (v >= p["min_count"])
    hot = big & (v > lam_r)
    tail[hot] = _tail(v[hot], lam_r[hot], r_r[hot])
    raw.anomalous = big & (tail <= p["alpha"])
    strength = np.where(ok, 0.0, np.nan)
    strength[big] = -np.log10(np.maximum(tail[big], 1e-300))
    raw.strength = strength
    raw.judged = ok
    raw.expected = np.where(ok, lam_r, np.nan)
    raw.upper = np.where(ok, crit[pos], np.nan)
    raw.score = np.where(
        ok, ratio_score_array(np.nan_to_num(strength), -math.log10(p["alpha"])), 0.0
    )
    return raw
