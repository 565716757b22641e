"""A labelled set of business-like series for the detection benchmark.

Each series looks like one of the four business signals (and their cousins): counts
(payments, failed payments), ratios with a volume (failure share, share of empty job
lists), levels (active users, a gauge that wanders) and queue ages/depths; with daily
and weekly seasonality where a business would have it, noise of the right kind (Poisson,
binomial, autocorrelated), at 10 s, 1 min, 5 min and 1 h sampling. Faults are injected
after the first weeks, and the labels are the fault windows:

* drop_to_zero  the signal falls to 0 (a broken payment method, nobody gets jobs)
* level_shift   the level moves by 30-60% and stays there for hours
* spike         a few samples several times the normal value
* slow_drift    the level creeps by 40-60% over half a day, then recovers
* stuck_queue   the oldest job's age (or the depth) grows linearly: nothing is consumed

Everything comes from one seeded numpy generator: the same seed gives the same set.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DAY = 86400.0
WEEK = 7 * DAY
T0 = 1_704_067_200.0  # 2024-01-01 00:00 UTC, a Monday


@dataclass
class Fault:
    kind: str
    start: float
    end: float


@dataclass
class Series:
    name: str
    kind: str  # count | ratio | level | queue
    interval: float
    t: np.ndarray
    v: np.ndarray
    volume: np.ndarray | None
    eval_start: float  # faults and scoring from here on; before: history to learn from
    faults: list[Fault] = field(default_factory=list)


def profile(t: np.ndarray, weekly: float, daily: float, rng: np.random.Generator) -> np.ndarray:
    """Business traffic shape: busy afternoons, quiet nights, quieter weekends."""
    h = (t % DAY) / 3600.0
    phase = rng.uniform(-1.5, 1.5)
    day = 1.0 + daily * np.sin(2 * np.pi * (h - 9.0 + phase) / 24.0)
    day += 0.3 * daily * np.sin(4 * np.pi * (h - 6.0 + phase) / 24.0)
    dow = ((t - T0) // DAY).astype(int) % 7
    week = np.where(dow >= 5, 1.0 - weekly, 1.0)
    growth = 1.0 + rng.uniform(-0.05, 0.1) * (t - t[0]) / (5 * WEEK)
    return np.maximum(day, 0.05) * week * growth


def ar1(n: int, phi: float, sd: float, rng: np.random.Generator) -> np.ndarray:
    from scipy.signal import lfilter

    e = rng.normal(0, sd * np.sqrt(1 - phi * phi), n)
    return lfilter([1.0], [1.0, -phi], e)


def _times(weeks: float, interval: float, rng: np.random.Generator, jitter: bool) -> np.ndarray:
    n = int(weeks * WEEK / interval)
    t = T0 + np.arange(n) * interval
    if jitter:
        t = t + rng.uniform(0, 0.3 * interval, n)
        t.sort()
    return t


def _windows(
    t: np.ndarray, start: float, kinds: list[str], interval: float, rng: np.random.Generator
) -> list[Fault]:
    """Non-overlapping fault windows after `start`, at least a day apart."""
    faults: list[Fault] = []
    lo, hi = start + DAY / 2, t[-1] - DAY / 2
    slots = np.linspace(lo, hi, len(kinds) + 1)
    for i, kind in enumerate(kinds):
        a = rng.uniform(slots[i], slots[i + 1] - DAY / 2)
        a = float(t[np.searchsorted(t, a)])
        coarse = interval >= 3600
        dur = {
            "drop_to_zero": rng.uniform(6, 12) * 3600 if coarse else rng.uniform(20, 120) * 60,
            "level_shift": rng.uniform(24, 48) * 3600 if coarse else rng.uniform(3, 10) * 3600,
            "spike": interval * rng.integers(1, 4) - 1,
            "slow_drift": rng.uniform(48, 72) * 3600 if coarse else rng.uniform(8, 16) * 3600,
            "stuck_queue": rng.uniform(30, 90) * 60,
        }[kind]
        faults.append(Fault(kind, a, a + dur))
    return faults


def _mask(t: np.ndarray, f: Fault) -> np.ndarray:
    return (t >= f.start) & (t <= f.end)


def _ramp(t: np.ndarray, f: Fault) -> np.ndarray:
    """0 → 1 over the first 3/4 of the window, 1 for the rest."""
    x = (t - f.start) / (0.75 * (f.end - f.start))
    return np.clip(x, 0, 1) * _mask(t, f)


def count_series(name, rng, interval=60.0, weeks=5.0, peak=40.0, weekly=0.4, daily=0.7, faults=()):
    t = _times(weeks, interval, rng, jitter=False)
    lam = peak * profile(t, weekly, daily, rng) * interval / 60.0
    lam = lam * np.exp(ar1(len(t), 0.98, 0.08, rng))  # overdispersed, like real traffic
    eval_start = t[0] + 2 * WEEK if weeks >= 4 else t[0] + weeks * WEEK / 2
    fl = _windows(t, eval_start, list(faults), interval, rng)
    for f in fl:
        m = _mask(t, f)
        if f.kind == "drop_to_zero":
            lam[m] = 0.0
        elif f.kind == "level_shift":
            lam[m] *= rng.choice([0.45, 0.55, 1.6, 1.9])
        elif f.kind == "spike":
            lam[m] *= rng.uniform(4, 7)
            lam[m] += 8 * np.sqrt(peak)
        elif f.kind == "slow_drift":
            lam *= 1.0 + rng.choice([-0.55, 0.6]) * _ramp(t, f)
    v = rng.poisson(lam).astype(float)
    return Series(name, "count", interval, t, v, None, eval_start, fl)


def ratio_series(
    name, rng, base=0.02, interval=60.0, weeks=5.0, volume=150.0, seasonal=True, faults=()
):
    t = _times(weeks, interval, rng, jitter=False)
    shape = profile(t, 0.4, 0.7, rng) if seasonal else np.ones(len(t))
    vol = rng.poisson(volume * shape * interval / 60.0).astype(float)
    p = np.clip(base * np.exp(ar1(len(t), 0.99, 0.15, rng)), 0, 1)
    eval_start = t[0] + 2 * WEEK
    fl = _windows(t, eval_start, list(faults), interval, rng)
    for f in fl:
        m = _mask(t, f)
        if f.kind == "level_shift":
            p[m] = np.clip(p[m] * rng.uniform(2.5, 4.0), 0, 1)
        elif f.kind == "spike":
            p[m] = rng.uniform(0.3, 1.0)  # a payment method breaks: most attempts fail
        elif f.kind == "drop_to_zero":
            p[m] = 0.0
        elif f.kind == "slow_drift":
            p = np.clip(p * (1.0 + 2.0 * _ramp(t, f)), 0, 1)
    fails = rng.binomial(vol.astype(int), p)
    with np.errstate(invalid="ignore", divide="ignore"):
        v = np.where(vol > 0, fails / np.maximum(vol, 1), np.nan)
    return Series(name, "ratio", interval, t, v, vol, eval_start, fl)


def level_series(
    name, rng, interval=60.0, weeks=5.0, level=1000.0, seasonal=True, noise=0.03, faults=()
):
    t = _times(weeks, interval, rng, jitter=interval < 60)
    shape = profile(t, 0.3, 0.5, rng) if seasonal else np.ones(len(t))
    x = level * shape * (1 + ar1(len(t), 0.9, noise, rng)) + rng.normal(
        0, noise * level * 0.3, len(t)
    )
    if not seasonal:
        x += ar1(len(t), 0.999, 0.05 * level, rng)  # a gauge that wanders
    eval_start = t[0] + 2 * WEEK if weeks >= 4 else t[0] + weeks * WEEK / 2
    fl = _windows(t, eval_start, list(faults), interval, rng)
    for f in fl:
        m = _mask(t, f)
        if f.kind == "drop_to_zero":
            x[m] = 0.0
        elif f.kind == "level_shift":
            x[m] *= rng.choice([0.5, 0.65, 1.4, 1.6])
        elif f.kind == "spike":
            x[m] *= rng.uniform(2.0, 3.0)
        elif f.kind == "slow_drift":
            x *= 1.0 + rng.choice([-0.45, 0.5]) * _ramp(t, f)
    v = x
    return Series(name, "level", interval, t, v, None, eval_start, fl)


def queue_series(name, rng, interval=60.0, weeks=5.0, depth=False, faults=()):
    t = _times(weeks, interval, rng, jitter=interval < 60)
    n = len(t)
    shape = profile(t, 0.3, 0.6, rng)
    if depth:
        v = rng.poisson(4.0 * shape).astype(float)
    else:
        # age of the oldest pending job: a few seconds to a minute, longer at busy times
        v = rng.exponential(12.0 * shape) + rng.uniform(0, 5, n)
        burst = rng.random(n) < 0.002
        v[burst] += rng.uniform(30, 90, burst.sum())
    eval_start = t[0] + 2 * WEEK if weeks >= 4 else t[0] + weeks * WEEK / 2
    fl = _windows(t, eval_start, list(faults), interval, rng)
    for f in fl:
        m = _mask(t, f)
        if f.kind == "stuck_queue":
            since = t[m] - f.start
            if depth:
                v[m] += since / 60.0 * rng.uniform(1.0, 3.0)  # arrivals pile up
            else:
                v[m] = v[m][0] + since  # the oldest job just ages
        elif f.kind == "spike":
            v[m] *= rng.uniform(4, 8)
            v[m] += 60 if not depth else 20
        elif f.kind == "level_shift":
            v[m] *= rng.uniform(2.5, 3.5)
    if depth:
        v = np.round(v)
    return Series(name, "queue", interval, t, v, None, eval_start, fl)


def generate(seed: int = 7) -> list[Series]:
    """The benchmark set: about forty series, four kinds, four sampling intervals."""
    rng = np.random.default_rng(seed)
    out: list[Series] = []
    # counts: payments per minute, failed payments per minute, hourly orders
    for i in range(4):
        out.append(
            count_series(f"payments_{i}", rng, faults=("drop_to_zero", "level_shift", "spike"))
        )
    for i in range(3):
        out.append(
            count_series(
                f"failed_payments_{i}", rng, peak=1.5, weekly=0.3, faults=("spike", "level_shift")
            )
        )
    for i in range(2):
        out.append(count_series(f"payments_drift_{i}", rng, faults=("slow_drift", "drop_to_zero")))
    for i in range(2):
        out.append(
            count_series(
                f"orders_hourly_{i}",
                rng,
                interval=3600.0,
                weeks=12.0,
                peak=30.0,
                faults=("drop_to_zero", "level_shift", "spike"),
            )
        )
    # ratios with volumes: failure share per payment method, share of empty job lists
    for i in range(3):
        out.append(ratio_series(f"payment_failure_ratio_{i}", rng, faults=("spike", "level_shift")))
    for i in range(3):
        out.append(
            ratio_series(
                f"empty_job_lists_{i}",
                rng,
                base=0.05,
                seasonal=i != 0,
                volume=60.0,
                faults=("spike", "slow_drift"),
            )
        )
    out.append(
        ratio_series("failure_ratio_5min", rng, interval=300.0, faults=("spike", "level_shift"))
    )
    # levels: seasonal gauges, wandering gauges, fast and slow sampling
    for i in range(3):
        out.append(
            level_series(
                f"active_users_{i}", rng, faults=("drop_to_zero", "level_shift", "slow_drift")
            )
        )
    for i in range(2):
        out.append(
            level_series(f"gauge_flat_{i}", rng, seasonal=False, faults=("spike", "level_shift"))
        )
    out.append(
        level_series(
            "active_users_10s",
            rng,
            interval=10.0,
            weeks=3.0,
            faults=("drop_to_zero", "spike", "level_shift"),
        )
    )
    out.append(
        level_series(
            "revenue_hourly", rng, interval=3600.0, weeks=12.0, faults=("level_shift", "slow_drift")
        )
    )
    out.append(level_series("gauge_5min", rng, interval=300.0, faults=("spike", "drop_to_zero")))
    # queues: oldest job age and depth
    for i in range(3):
        out.append(queue_series(f"queue_age_{i}", rng, faults=("stuck_queue", "spike")))
    for i in range(2):
        out.append(
            queue_series(f"queue_depth_{i}", rng, depth=True, faults=("stuck_queue", "level_shift"))
        )
    out.append(
        queue_series("queue_age_10s", rng, interval=10.0, weeks=3.0, faults=("stuck_queue",))
    )
    # clean series: no faults at all, only false alerts to be had
    out.append(count_series("payments_clean", rng))
    out.append(ratio_series("failure_ratio_clean", rng))
    out.append(level_series("gauge_clean", rng, seasonal=False))
    out.append(queue_series("queue_age_clean", rng))
    return out
