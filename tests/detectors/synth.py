"""Seeded synthetic series for the detector tests (small and fast on purpose)."""

from __future__ import annotations

import numpy as np

from sentinel.detectors import Observation

DAY = 86400.0
WEEK = 7 * DAY
T0 = 1_704_067_200.0  # 2024-01-01 00:00 UTC, a Monday


def times(days: float, interval: float, jitter: float = 0.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(days * DAY / interval)
    t = T0 + np.arange(n) * interval
    if jitter:
        t = np.sort(t + rng.uniform(0, jitter * interval, n))
    return t


def shape(t: np.ndarray, daily: float = 0.6, weekly: float = 0.3) -> np.ndarray:
    """Busy afternoons, quiet nights, quieter weekends."""
    h = (t % DAY) / 3600.0
    dow = ((t - T0) // DAY).astype(int) % 7
    return (1 + daily * np.sin(2 * np.pi * (h - 9) / 24)) * np.where(dow >= 5, 1 - weekly, 1.0)


def seasonal_counts(days: float, interval: float = 60.0, peak: float = 40.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    t = times(days, interval)
    lam = peak * shape(t) * interval / 60.0
    return t, rng.poisson(lam).astype(float), lam


def flat_ratio(days: float, interval: float = 60.0, p: float = 0.03, volume: float = 200.0, seed=0):
    rng = np.random.default_rng(seed)
    t = times(days, interval)
    vol = rng.poisson(volume, len(t)).astype(float)
    v = rng.binomial(vol.astype(int), p) / np.maximum(vol, 1)
    return t, v, vol


def noisy_level(days: float, interval: float = 60.0, level: float = 500.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    t = times(days, interval, jitter=0.2, seed=seed)
    v = level * shape(t, 0.4, 0.2) * (1 + rng.normal(0, 0.03, len(t)))
    return t, v


def observations(t, v, vol=None) -> list[Observation]:
    out = []
    for i in range(len(t)):
        x = v[i]
        value = None if x is None or x != x else float(x)
        out.append(Observation(float(t[i]), value, None if vol is None else float(vol[i])))
    return out


def episodes(firing: np.ndarray) -> list[tuple[int, int]]:
    d = np.diff(np.asarray(firing, dtype=np.int8), prepend=0, append=0)
    return list(
        zip(np.flatnonzero(d == 1).tolist(), (np.flatnonzero(d == -1) - 1).tolist(), strict=True)
    )
