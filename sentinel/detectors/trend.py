"""Time to breach for queues: fit a line through the last samples of the queue's age or
depth and alert when that line reaches the limit within the horizon, before the limit is
hit rather than after. A stuck queue's age grows one second per second: it is caught
`horizon` seconds before it crosses the limit."""

from __future__ import annotations

import math
from collections import deque
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


def _fit(xs: list[np.ndarray] | list[float], ys: list[np.ndarray] | list[float], n: int) -> tuple:
    """Least squares line through n points (x = seconds before now, <= 0), summed in a
    fixed order so a scalar loop and an array loop agree bit for bit. Returns the fitted
    level now and the slope per second."""
    sx = sy = sxx = sxy = 0.0 * xs[0]
    for x, y in zip(xs, ys, strict=True):
        sx = sx + x
        sy = sy + y
        sxx = sxx + x * x
        sxy = sxy + x * y
    mx = sx / n
    my = sy / n
    vxx = sxx - sx * mx
    vxy = sxy - sx * my
    return vxx, vxy, mx, my


class TimeToBreach:
    name = "time_to_breach"

    def __init__(self, limit: float, horizon_seconds: float = 900.0, fit_samples: int = 10) -> None:
        self.limit = limit
        self.horizon = horizon_seconds
        self.fit_samples = fit_samples
        self._tau = 1.0 / horizon_seconds
        self._pts: deque[tuple[float, float]] = deque(maxlen=fit_samples)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.name,
            "limit": self.limit,
            "horizon_seconds": self.horizon,
            "fit_samples": self.fit_samples,
        }

    def step(self, obs: Observation) -> Verdict:
        v = clean(obs.value)
        if v is None:
            return no_data(obs.t)
        pts = self._pts
        pts.append((obs.t, v))
        n = len(pts)
        if n < self.fit_samples:
            return Verdict(
                obs.t, v, 0.0, False, False, False, None, None, self.limit,
                f"collecting samples for the trend: {n} of {self.fit_samples}",
            )  # fmt: skip
        xs = [pt - obs.t for pt, _ in pts]
        ys = [pv for _, pv in pts]
        vxx, vxy, mx, my = _fit(xs, ys, n)
        slope = vxy / vxx if vxx > 0 else 0.0
        level = my - slope * mx
        if v >= self.limit or level >= self.limit:
            inv = math.inf
        elif slope > 0:
            inv = slope / (self.limit - level)
        else:
            inv = 0.0
        anomalous = inv >= self._tau
        if inv == math.inf:
            reason = f"{fmt(v)} at or over the limit {fmt(self.limit)}"
        elif slope > 0:
            ttb = 1.0 / inv
            reason = (
                f"{fmt(v)} rising {fmt(slope * 60)}/min: reaches {fmt(self.limit)} in "
                f"{fmt_duration(ttb)} ({'within' if anomalous else 'beyond'} the "
                f"{fmt_duration(self.horizon)} horizon)"
            )
        else:
            reason = f"{fmt(v)} not rising (limit {fmt(self.limit)})"
        return Verdict(
            obs.t,
            v,
            ratio_score(inv, self._tau),
            anomalous,
            anomalous,
            False,
            level,
            None,
            self.limit,
            reason,
        )


def ttb_batch(p: dict[str, Any], t: np.ndarray, v: np.ndarray, vol: np.ndarray | None) -> Raw:
    n = len(t)
    limit = float(p["limit"])
    w = int(p["fit_samples"])
    tau = 1.0 / float(p["horizon_seconds"])
    valid = np.isfinite(v)
    rows = np.flatnonzero(valid)
    strength = np.full(n, np.nan)
    expected = np.full(n, np.nan)
    judged = np.zeros(n, bool)
    m = len(rows) - w + 1
    if m > 0:
        tv, vv = t[rows], v[rows]
        now = tv[w - 1 :]
        xs = [tv[j : j + m] - now for j in range(w)]
        ys = [vv[j : j + m] for j in range(w)]
        vxx, vxy, mx, my = _fit(xs, ys, w)
        with np.errstate(invalid="ignore", divide="ignore"):
            slope = np.where(vxx > 0, vxy / np.where(vxx > 0, vxx, 1.0), 0.0)
            level = my - slope * mx
            over = (vv[w - 1 :] >= limit) | (level >= limit)
            inv = np.where(slope > 0, slope / (limit - level), 0.0)
        inv[over] = np.inf
        r = rows[w - 1 :]
        strength[r] = inv
        expected[r] = level
        judged[r] = True
    fresh = valid & ~judged
    upper = np.where(judged | fresh, limit, np.nan)
    return Raw(
        strength=strength,
        anomalous=judged & (strength >= tau),
        no_data=~valid,
        judged=judged,
        expected=expected,
        lower=np.full(n, np.nan),
        upper=upper,
        score=np.where(judged, ratio_score_array(np.nan_to_num(strength), tau), 0.0),
    )
