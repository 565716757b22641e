"""Fixed thresholds: a value above/below a line, a ratio with a minimum-volume guard, and
no data for too long. The simplest detectors, and the easiest alerts to explain."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from .base import (
    Observation,
    Raw,
    Verdict,
    clean,
    fmt,
    fmt_duration,
    margin_score,
    margin_score_array,
    ratio_score,
    ratio_score_array,
)
from .windows import TimeWindow, cumulative, window_sums

NAN = math.nan


def no_data(t: float, reason: str = "no data") -> Verdict:
    return Verdict(t, None, 0.0, False, False, True, None, None, None, reason)


def _empty_raw(n: int) -> Raw:
    nan = np.full(n, np.nan)
    return Raw(
        strength=nan.copy(),
        anomalous=np.zeros(n, bool),
        no_data=np.zeros(n, bool),
        judged=np.zeros(n, bool),
        expected=nan.copy(),
        lower=nan.copy(),
        upper=nan.copy(),
        score=np.zeros(n),
    )


def _scale(threshold: float) -> float:
    # distance at which the score reaches 0.9: a quarter of the threshold, or 1 around 0
    return abs(threshold) / 4 if threshold != 0 else 1.0


# --- static -----------------------------------------------------------------------


class Static:
    """Value above (or below) a fixed threshold."""

    name = "static"

    def __init__(self, threshold: float, direction: str = "above") -> None:
        self.threshold = threshold
        self.direction = direction
        self._sign = 1.0 if direction == "above" else -1.0
        self._tau = self._sign * threshold
        self._scale = _scale(threshold)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.name, "threshold": self.threshold, "direction": self.direction}

    def step(self, obs: Observation) -> Verdict:
        v = clean(obs.value)
        if v is None:
            return no_data(obs.t)
        anomalous = self._sign * v >= self._tau
        score = margin_score(self._sign * v, self._tau, self._scale)
        word = self.direction if anomalous else ("not " + self.direction)
        reason = f"{fmt(v)} {word} {fmt(self.threshold)} (fixed threshold)"
        return _fixed_verdict(obs.t, v, score, anomalous, self.threshold, self.direction, reason)


def _fixed_verdict(
    t: float,
    value: float | None,
    score: float,
    anomalous: bool,
    threshold: float,
    direction: str,
    reason: str,
) -> Verdict:
    """A verdict against a fixed threshold: the band is open on the safe side."""
    up = direction == "above"
    return Verdict(
        t,
        value,
        score,
        anomalous,
        anomalous,
        False,
        None,
        None if up else threshold,
        threshold if up else None,
        reason,
    )


def static_batch(p: dict[str, Any], t: np.ndarray, v: np.ndarray, vol: np.ndarray | None) -> Raw:
    thr = float(p["threshold"])
    sign = 1.0 if p["direction"] == "above" else -1.0
    raw = _empty_raw(len(t))
    valid = np.isfinite(v)
    s = sign * v
    raw.strength = np.where(valid, s, np.nan)
    raw.anomalous = valid & (s >= sign * thr)
    raw.no_data = ~valid
    raw.judged = valid
    raw.score = margin_score_array(np.where(valid, s, np.nan), sign * thr, _scale(thr))
    edge = raw.upper if sign > 0 else raw.lower
    edge[valid] = thr
    return raw


# --- ratio with a minimum-volume guard -------------------------------------------------


class Ratio:
    """A ratio in [0, 1] (failure share, empty-list share) against a threshold, judged only
    when enough requests stand behind it: under `min_volume` the step gets no verdict,
    not a zero. With `window_seconds`, the ratio is pooled over that trailing window
    (failures / attempts), so a low-traffic payment method is judged on enough attempts.
    Steps without a volume weigh 1 and are not guarded. With `volume_is_rate` (a scraped
    ratio, whose volume is requests per second since the previous scrape) a step weighs
    its volume times the seconds since the previous step, so `min_volume` counts requests
    whatever the sampling interval."""

    name = "ratio"

    def __init__(
        self,
        threshold: float,
        direction: str = "above",
        min_volume: float = 20.0,
        window_seconds: float = 0.0,
        volume_is_rate: bool = False,
    ) -> None:
        self.threshold = threshold
        self.direction = direction
        self.min_volume = min_volume
        self.window_seconds = window_seconds
        self.volume_is_rate = volume_is_rate
        self._prev_t: float | None = None
        self._sign = 1.0 if direction == "above" else -1.0
        self._tau = self._sign * threshold
        self._scale = _scale(threshold)
        self._win = TimeWindow(window_seconds, 3) if window_seconds > 0 else None
        self._cum = (0.0, 0.0, 0.0)  # weighted failures, weights, rows with a known volume

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.name,
            "threshold": self.threshold,
            "direction": self.direction,
            "min_volume": self.min_volume,
            "window_seconds": self.window_seconds,
            "volume_is_rate": self.volume_is_rate,
        }

    def step(self, obs: Observation) -> Verdict:
        v = clean(obs.value)
        if v is None:
            return no_data(obs.t)
        vol = clean(obs.volume)
        if self._win is not None:
            w = vol if vol is not None else 1.0
            if self.volume_is_rate and vol is not None:
                dt = obs.t - self._prev_t if self._prev_t is not None else 0.0
                w = vol * min(dt, self.window_seconds)
            self._prev_t = obs.t
            a, b, c = self._cum
            self._cum = (a + v * w, b + w, c + (1.0 if vol is not None else 0.0))
            e, wsum, known = self._win.push(obs.t, self._cum)
            r = e / wsum if wsum > 0 else 0.0
            guard = wsum if known > 0 else None
            where = f" over {fmt_duration(self.window_seconds)}"
        else:
            r, guard, where = v, vol, ""
        if guard is not None and guard < self.min_volume:
            return Verdict(
                obs.t,
                v,
                0.0,
                False,
                False,
                False,
                None,
                None,
                None,
                f"volume {fmt(guard)}{where} < {fmt(self.min_volume)}: no verdict",
            )
        anomalous = self._sign * r >= self._tau
        score = margin_score(self._sign * r, self._tau, self._scale)
        word = self.direction if anomalous else ("not " + self.direction)
        vol_text = f", {fmt(guard)} requests" if guard is not None else ""
        reason = f"ratio {fmt(r)}{where} {word} {fmt(self.threshold)} (fixed threshold{vol_text})"
        return _fixed_verdict(obs.t, v, score, anomalous, self.threshold, self.direction, reason)


def ratio_batch(p: dict[str, Any], t: np.ndarray, v: np.ndarray, vol: np.ndarray | None) -> Raw:
    thr = float(p["threshold"])
    sign = 1.0 if p["direction"] == "above" else -1.0
    n = len(t)
    raw = _empty_raw(n)
    valid = np.isfinite(v)
    volume = vol if vol is not None else np.full(n, np.nan)
    known = np.isfinite(volume)
    r = np.full(n, np.nan)
    guard = np.full(n, np.nan)
    if p["window_seconds"] > 0:
        rows = np.flatnonzero(valid)
        tv = t[rows]
        w = np.where(known[rows], volume[rows], 1.0)
        if p.get("volume_is_rate"):
            dt = np.minimum(np.diff(tv, prepend=tv[:1]), p["window_seconds"])
            w = np.where(known[rows], volume[rows] * dt, 1.0)
        e = window_sums(tv, cumulative(v[rows] * w), p["window_seconds"])
        wsum = window_sums(tv, cumulative(w), p["window_seconds"])
        kn = window_sums(tv, cumulative(known[rows].astype(float)), p["window_seconds"])
        with np.errstate(invalid="ignore", divide="ignore"):
            r[rows] = np.where(wsum > 0, e / np.where(wsum > 0, wsum, 1.0), 0.0)
        guard[rows] = np.where(kn > 0, wsum, np.nan)
    else:
        r = np.where(valid, v, np.nan)
        guard = np.where(known & valid, volume, np.nan)
    low = np.isfinite(guard) & (guard < p["min_volume"])
    judged = valid & ~low
    s = sign * r
    raw.strength = np.where(judged, s, np.nan)
    raw.anomalous = judged & (s >= sign * thr)
    raw.no_data = ~valid
    raw.judged = judged
    raw.score = np.where(
        judged, margin_score_array(np.where(judged, s, 0.0), sign * thr, _scale(thr)), 0.0
    )
    edge = raw.upper if sign > 0 else raw.lower
    edge[judged] = thr
    return raw


# --- share of a count in its volume -----------------------------------------------------


class Share:
    """A count out of its volume (failed payments of all attempts) as a share against a
    threshold, judged only on at least `min_volume` attempts: "a payment method failing
    at least 20% of at least 5 attempts". A step without attempts gets no verdict."""

    name = "share"

    def __init__(self, threshold: float, direction: str = "above", min_volume: float = 5.0):
        self._ratio = Ratio(threshold, direction, min_volume)
        self.threshold, self.direction, self.min_volume = threshold, direction, min_volume

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.name,
            "threshold": self.threshold,
            "direction": self.direction,
            "min_volume": self.min_volume,
        }

    def step(self, obs: Observation) -> Verdict:
        v, vol = clean(obs.value), clean(obs.volume)
        if v is None:
            return no_data(obs.t)
        n = vol if vol is not None else 0.0
        share = v / n if n else 0.0
        verdict = self._ratio.step(Observation(obs.t, share, n))
        if verdict.upper is None and verdict.lower is None:
            return replace(verdict, value=v)  # too few attempts: the ratio's "no verdict"
        # the band in the signal's own unit: 3 failures against "≤ 1.4" of 7 attempts
        word = self.direction if verdict.anomalous else "not " + self.direction
        return replace(
            verdict,
            value=v,
            lower=None if verdict.lower is None else verdict.lower * n,
            upper=None if verdict.upper is None else verdict.upper * n,
            reason=f"{fmt(v)} of {fmt(n)} ({fmt(share)}) {word} a share of "
            f"{fmt(self.threshold)} (fixed threshold)",
        )


def share_batch(p: dict[str, Any], t: np.ndarray, v: np.ndarray, vol: np.ndarray | None) -> Raw:
    volume = vol if vol is not None else np.full(len(t), np.nan)
    known = np.where(np.isfinite(volume), volume, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(known != 0, v / np.where(known != 0, known, 1.0), 0.0)
    share = np.where(np.isfinite(v), share, np.nan)
    raw = ratio_batch({**p, "window_seconds": 0.0}, t, share, known)
    raw.lower = raw.lower * known
    raw.upper = raw.upper * known
    return raw


# --- absence ------------------------------------------------------------------------


class Absence:
    """No data for `after_seconds`: the source failed, or the thing it counts stopped."""

    name = "absence"

    def __init__(self, after_seconds: float) -> None:
        self.after_seconds = after_seconds
        self._last: float | None = None

    def describe(self) -> dict[str, Any]:
        return {"kind": self.name, "after_seconds": self.after_seconds}

    def step(self, obs: Observation) -> Verdict:
        v = clean(obs.value)
        if self._last is None:
            self._last = obs.t
        if v is not None:
            self._last = obs.t
            return Verdict(obs.t, v, 0.0, False, False, False, None, None, None, "data present")
        gap = obs.t - self._last
        anomalous = gap >= self.after_seconds
        reason = f"no data for {fmt_duration(gap)} (alert after {fmt_duration(self.after_seconds)})"
        return Verdict(
            obs.t,
            None,
            ratio_score(gap, self.after_seconds),
            anomalous,
            anomalous,
            True,
            None,
            None,
            None,
            reason,
        )


def absence_batch(p: dict[str, Any], t: np.ndarray, v: np.ndarray, vol: np.ndarray | None) -> Raw:
    n = len(t)
    raw = _empty_raw(n)
    if n == 0:
        return raw
    valid = np.isfinite(v)
    last = np.maximum.accumulate(np.where(valid, t, -np.inf))
    last = np.where(np.isfinite(last), last, t[0])
    gap = np.where(valid, 0.0, t - last)
    raw.strength = gap
    raw.anomalous = ~valid & (gap >= p["after_seconds"])
    raw.no_data = ~valid
    raw.judged = np.ones(n, bool)
    raw.score = np.where(valid, 0.0, ratio_score_array(gap, p["after_seconds"]))
    return raw
