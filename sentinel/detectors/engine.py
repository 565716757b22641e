"""The robust seasonal band behind `auto`, `seasonal` and `level_shift`.

What it learns, all from the series' own past, per clock hour ("block"):

* a summary of each hour: count, centre (the median; the mean for integer counts, whose
  median moves in whole steps), spread (interquartile), min, max, integers or not, the
  longest gap between samples;
* once a day (at an hour spread over the day per series, so thousands of series do not
  refit in the same cycle): whether the series is integer counts, bounded in [0, 1],
  non-negative; its sampling interval and normal gaps; whether it is weekly seasonal,
  daily seasonal or flat, by which profile would have predicted the past week best (and
  it keeps its profile unless another is clearly better); a noise floor; the level
  factor (how the past week compared with its own expectation, so growth does not read
  as an anomaly); and how much each statistic below varies, from its robust spread and
  its tail over the past week (so autocorrelated or bursty series are not judged as if
  every sample were independent and normal);
* when an hour starts: its expected value and spread, from the same hour of the past
  weeks (weekly), of the past 7 days (daily) or the past 24 hours (flat): the median of
  those hours, and the spread of their values mixed with the series-wide hour error
  when there are few of them. Within the hour the expected value follows a straight line
  towards the neighbouring hours (a morning ramp is not an anomaly).

Each step then costs O(1): z = (value - expected) / spread (for counts and ratios with a
volume, no larger than their exact Poisson / binomial tail says), the means of the last
5, 30 and 360 residuals (clipped; plain residuals for counts, which the tail correction
would bias) from running sums, and a run of zeros where the same hours never had one;
the strongest of them, each over its learned spread, against `k`. A mean counts only
when at least two of its residuals are a point spread out its way (one burst is the
point test's to judge) and, for 30 and 360, while the next shorter mean is still 3
spreads out its way (a long mean remembers a fault for hours after it ended). Spikes
show in z; drops to zero in the zeros and the means; level shifts, ramps and stuck
queues in the means. Warm-up is quiet and says so: no verdict for a day, no point test
until a day of residuals shows how they vary (counts excepted: their exact tail judges
them meanwhile, so a history backfilled at a coarse step, or a series whose windows
mostly hold no volume, is judged from the first fit), no means until a whole week (a
first weekend is news to the detector, not an incident), and a wide band until then.
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from .base import (
    Observation,
    Raw,
    Verdict,
    clean,
    fmt,
    fmt_duration,
    opt,
    ratio_score,
    ratio_score_array,
)
from .blocks import (
    BLOCK,
    MAD_K,
    Ring,
    block_index,
    block_of,
    gather,
    padded_rows,
    row_mad,
    row_median,
)
from .threshold import no_data

WINDOWS = (1, 5, 30, 360)  # samples; 1 is the point test
RING = 361  # running sums kept for the longest window
ZC = 5.0  # a single wild sample moves a window mean by at most ZC point spreads / w
HIST = 168  # blocks (a week) for inference, floors and window spreads
FLAT_REFS = 24
DAILY_REFS = 7
LEVEL_BLOCKS = 168  # a week: a fault of a day or two barely moves the level
LEVEL_MIN = 48  # hours with a ratio before the level factor is used
SHRINK = 6  # reference hours worth of the series-wide spread mixed into each hour's
MAX_WINDOW = 6 * 3600.0  # longest window of means, in time
ZMAX = 8  # longest run of zeros that still adds evidence
WINDOW_DAYS = 8  # window means only once a whole week was seen (a first weekend is news)
YOUNG_REL = 0.1  # before that, a spread of at least 10% of the level: a first weekend
# 30-40% quieter is not an incident, a drop to zero or a tripling still is
WEEKLY_DAYS = 9  # days of history before a weekly profile can be chosen (2 days to compare)
MIN_SCALE_SAMPLES = 24  # hours with a residual before a spread is learned from them
COUNT_SPREAD = 1.0  # the point spread of counts until then (see `point_spread`)
MIN_OUT = 2  # a window mean counts when this many of its residuals are a point spread out
AGREE = 3.0  # a window mean counts while the shorter window is this many spreads out
TAIL_Q = 0.98  # the hourly maximum of a statistic exceeds this quantile 1 hour in 50 ...
TAIL_T = 4.0  # ... and that quantile sits at TAIL_T spreads (the default k = 5.5 is above it)
LEVEL_CLIP = (0.5, 2.0)
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
SEASONS = ("flat", "daily", "weekly")

# block summary columns
CNT, CEN, SPR, VMIN, VMAX, INT, GAP = range(7)
# band ring columns
EHAT, EXP, SCL, RAT = range(4)


@dataclass(frozen=True, slots=True)
class EngineParams:
    k: float = 5.0
    direction: str = "both"  # both | up | down
    seasonality: str = "auto"  # auto | weekly | daily | none
    weeks: int = 4
    min_volume: float = 0.0
    shares: bool = False  # values are shares of the volume (a ratio), in [0, 1]
    point: bool = True
    windows: bool = True
    absence: bool = True
    warmup_hours: float = 24.0

    @property
    def cen_blocks(self) -> int:
        return 168 * (self.weeks + 1)


@dataclass(frozen=True, slots=True)
class Model:
    season: str
    provisional: bool
    mult: bool
    integer: bool
    bounded: bool
    nonneg: bool
    floor: float
    between: float  # typical error of an hour's median vs its prediction (relative if mult)
    gap_limit: float
    interval: float
    days: float
    errors: tuple[float, float, float]  # flat, daily, weekly prediction errors (NaN = n/a)

    def describe(self) -> dict[str, Any]:
        return {
            "seasonality": self.season + (" (provisional)" if self.provisional else ""),
            "level": "multiplicative" if self.mult else "additive",
            "integer_counts": self.integer,
            "bounded_0_1": self.bounded,
            "non_negative": self.nonneg,
            "noise_floor": self.floor,
            "typical_hour_error": self.between,
            "absence_after_seconds": self.gap_limit,
            "sampling_interval_seconds": self.interval,
            "history_days": round(self.days, 2),
            "prediction_errors": {
                s: (None if e != e else e) for s, e in zip(SEASONS, self.errors, strict=True)
            },
        }


# --- shared computations (identical inputs → identical bits in both paths) ----------------
#
# The batch path works on matrices (one row per hour); the stepping path on one hour with
# plain Python floats, which is much cheaper for a single row. Both take medians as order
# statistics and (lo + hi) * 0.5, and use the same arithmetic in the same order: IEEE
# +, -, *, / and sqrt are exactly rounded, so the results agree to the last bit.


def summarize(m: np.ndarray) -> np.ndarray:
    """Per row of values (NaN-padded), the block summary columns CNT..INT (GAP left NaN);
    all NaN for a row without values."""
    srt = np.sort(m, axis=1)
    med, cnt = row_median(m, srt)
    out = np.full((m.shape[0], 7), np.nan)
    has = cnt > 0
    rows = np.arange(m.shape[0])
    out[:, CNT] = cnt
    out[:, CEN] = med
    # spread from the interquartile range: the same sort as the median, no second one
    rows_, last = np.arange(m.shape[0]), np.maximum(cnt - 1, 0)
    q1 = srt[rows_, (last * 0.25).astype(np.int64)]
    q3 = srt[rows_, np.ceil(last * 0.75).astype(np.int64)]
    out[:, SPR] = (q3 - q1) / 1.349
    out[:, VMIN] = srt[:, 0]
    out[:, VMAX] = srt[rows, np.maximum(cnt - 1, 0)]
    is_int = np.all(np.isnan(m) | (m == np.floor(m)), axis=1)
    out[:, INT] = is_int
    # counts: their mean (see `count_centre`); sums of integers are exact in any order
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(np.isnan(m), 0.0, m).sum(axis=1) / cnt
    out[:, CEN] = np.where(is_int, mean, med)
    out[~has] = np.nan
    return out


def count_centre(xs: list[float]) -> float:
    """An hour of integer counts is centred on its mean, not its median. At low counts the
    median moves in whole steps (an hour of Poisson(0.5) counts has median 0, of Poisson(2.6)
    2 or 3): every hour's expected value would be off by up to half a count, and the means
    of residuals would wander with the time of day. Hours are still combined by their
    median across reference hours, so a fault in one of them does not move the band.
    Same bits as `summarize`: a sum of integers is exact in any order."""
    return sum(xs) / len(xs)


def summarize1(vals: list[float], all_int: bool, gap: float) -> list[float]:
    """`summarize` of one hour in plain Python (same order statistics, same bits)."""
    if not vals:
        return [math.nan] * 7
    xs = sorted(vals)
    n = len(xs)
    last = n - 1
    med = (xs[last // 2] + xs[n // 2]) * 0.5
    spr = (xs[math.ceil(last * 0.75)] - xs[int(last * 0.25)]) / 1.349
    if all_int:
        med = count_centre(xs)
    return [float(n), med, spr, xs[0], xs[-1], 1.0 if all_int else 0.0, gap]


def med1(a: np.ndarray) -> float:
    """Median of a 1-d array without NaN (np.median is slow on small arrays)."""
    s = np.sort(a)
    n = len(s)
    return float((s[(n - 1) // 2] + s[n // 2]) * 0.5)


def pmed(vals: Any) -> tuple[float, int]:
    """Median of the non-NaN values of a sequence, in plain Python, and their count: the
    same bits as `row_median` on one row."""
    xs = sorted(x for x in vals if x == x)
    n = len(xs)
    if n == 0:
        return math.nan, 0
    return (xs[(n - 1) // 2] + xs[n // 2]) * 0.5, n


@dataclass(frozen=True, slots=True)
class Stats:
    """Per hour, over its reference hours: median and count of their medians, and the
    reference matrices themselves (medians c, spreads d) for the spread when needed."""

    med: np.ndarray
    cnt: np.ndarray
    c: np.ndarray
    d: np.ndarray

    def rows(self, r: Any, full: bool = True) -> Stats:
        """These hours only; without `full`, medians and counts only (what a fit needs)."""
        if not full:
            return Stats(self.med[r], self.cnt[r], self.c[:0], self.d[:0])
        return Stats(self.med[r], self.cnt[r], self.c[r], self.d[r])


def season_stats(c: np.ndarray, d: np.ndarray) -> Stats:
    med, cnt = row_median(c)
    return Stats(med, cnt, c, d)


def spread_stats(st: Stats) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MAD of the reference medians, median within-hour spread, range of the medians."""
    c = st.c
    srt = np.sort(c, axis=1)
    rng = srt[np.arange(len(c)), np.maximum(st.cnt - 1, 0)] - srt[:, 0]
    return row_mad(c, st.med), row_median(st.d)[0], rng


def stats1(c: Any, d: Any) -> tuple[float, int, float, float, float]:
    """`season_stats` for a single hour, in plain Python."""
    xs = sorted(x for x in c if x == x)
    n = len(xs)
    if n == 0:
        return math.nan, 0, math.nan, pmed(d)[0], math.nan
    med = (xs[(n - 1) // 2] + xs[n // 2]) * 0.5
    return med, n, pmed([abs(x - med) for x in xs])[0], pmed(d)[0], xs[-1] - xs[0]


SEASON_CODE = {"flat": 0, "daily": 1, "weekly": 2}


def _wmae(err: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per row, mean absolute error over `mask`, each error capped at 5× the row's median
    absolute error (a fault in the past week should not decide the profile)."""
    a = np.where(mask, np.abs(err), np.nan)
    cap = 5.0 * row_median(a)[0]
    a = np.where(cap[:, None] > 0, np.minimum(a, cap[:, None]), a)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nansum(a, axis=1) / np.count_nonzero(mask, axis=1)


def ready_to_fit(cnt: np.ndarray) -> np.ndarray:
    """Enough data in the last HIST hours to fit (per row of hourly sample counts)."""
    have = cnt > 0
    return (np.count_nonzero(have, axis=1) >= 12) & (np.where(have, cnt, 0.0).sum(axis=1) >= 20)


def _between(res: np.ndarray, have: np.ndarray, fallback: np.ndarray | None) -> float:
    """MAD of an hour's prediction errors over the past week (of the values themselves
    when fewer than 12 hours have a prediction); 0 when there is nothing to go on."""
    r = res[have & np.isfinite(res)]
    if len(r) < 12:
        if fallback is None:
            return 0.0
        r = fallback[have & np.isfinite(fallback)]
        if len(r) == 0:
            return 0.0
    return MAD_K * med1(np.abs(r - med1(r)))


def fit_models(
    p: EngineParams,
    days: np.ndarray,
    recent: np.ndarray,
    st: dict[str, Stats],
    prev: Model | None = None,
) -> list[Model | None]:
    """The daily refit, for several fit points at once: row-wise array work first (so one
    fit alone gives the same bits), then a short sequential pass, since each fit keeps
    its predecessor's profile unless another one is clearly better. recent: (F, HIST, 7)
    summaries of the HIST hours before each fit point, oldest first; st: their reference
    statistics per profile, arrays (F, HIST); prev: the model before the first fit point.
    None where there is too little data (the model before it stays in force)."""
    nan = np.nan
    cnt = recent[:, :, CNT]
    have = cnt > 0
    ready = ready_to_fit(cnt)
    vmin = np.where(have, recent[:, :, VMIN], np.inf).min(axis=1)
    vmax = np.where(have, recent[:, :, VMAX], -np.inf).max(axis=1)
    nonneg = vmin >= 0
    integer = nonneg & np.all(~have | (recent[:, :, INT] == 1), axis=1)
    # a share in [0, 1] shows fractions: a count that never exceeded 1 is still a count
    # (unless the values are known to be shares: a method that never failed is no count)
    bounded = nonneg & (vmax <= 1) & (~integer | p.shares)
    integer &= ~bounded
    interval = BLOCK / row_median(np.where(have, cnt, nan))[0]
    gap = recent[:, :, GAP]
    normal_gap = np.where(have & np.isfinite(gap), gap, -np.inf).max(axis=1)
    normal_gap = np.where(normal_gap > -np.inf, normal_gap, interval)
    gap_limit = np.maximum(np.maximum(3.0 * normal_gap, 10.0 * interval), 600.0)
    sw = row_median(np.where(have, recent[:, :, SPR], nan))[0]
    level = row_median(np.where(have, np.abs(recent[:, :, CEN]), nan))[0]

    # how well each profile would have predicted the past week's hours (out of sample)
    y = recent[:, :, CEN]
    preds = (
        np.where(st["flat"].cnt >= 12, st["flat"].med, nan),
        np.where(st["daily"].cnt >= 1, st["daily"].med, nan),
        np.where(st["weekly"].cnt >= 1, st["weekly"].med, nan),
    )
    weekly_ok = days >= WEEKLY_DAYS
    common = np.isfinite(y) & np.isfinite(preds[0]) & np.isfinite(preds[1])
    common &= ~weekly_ok[:, None] | np.isfinite(preds[2])
    judge = (days >= 2) & (np.count_nonzero(common, axis=1) >= 24)
    errs = np.stack([_wmae(y - pr, common) for pr in preds], axis=1)
    errs[~weekly_ok, 2] = nan
    errs[~judge] = nan

    out: list[Model | None] = []
    last = prev
    forced = {"none": 0, "daily": 1, "weekly": 2}.get(p.seasonality)
    for i in range(len(days)):
        if not ready[i]:
            out.append(None)
            continue
        ef, ed, ew = (float(x) for x in errs[i])
        if forced is not None:
            code = forced
        elif not judge[i]:
            code = SEASON_CODE[last.season] if last is not None else 0
        else:
            if weekly_ok[i] and ew < 0.8 * min(ed, ef):
                code = 2
            elif ed < 0.8 * ef:
                code = 1
            else:
                code = 0
            if last is not None:
                was = SEASON_CODE[last.season]
                e_was = (ef, ed, ew)[was]
                # keep the profile in force unless the new one is clearly better
                if code != was and e_was == e_was and not (ef, ed, ew)[code] < 0.8 * e_was:
                    code = was
        mult = bool(nonneg[i]) and code != 0
        # typical error of an hour under the profile (relative to the prediction when the
        # level is multiplicative), for the spread of hours with few reference hours
        yi, pr, hv = y[i], preds[code][i], have[i]
        babs = _between(yi - pr, hv, yi)
        bt = babs
        if mult:
            with np.errstate(invalid="ignore", divide="ignore"):
                bt = _between((yi - pr) / np.where(pr > 0, pr, nan), hv, None)
        floor = max(0.25 * max(float(sw[i]), babs), 1e-9 * (1.0 + float(level[i])))
        m = Model(
            SEASONS[code],
            code == 1 and bool(days[i] < 15) and forced is None,
            mult,
            bool(integer[i]),
            bool(bounded[i]),
            bool(nonneg[i]),
            floor,
            bt,
            float(gap_limit[i]),
            float(interval[i]),
            float(days[i]),
            (ef, ed, ew),
        )
        out.append(m)
        last = m
    return out


def _tail(hi: np.ndarray, lo: np.ndarray, direction: str) -> np.ndarray:
    """Per row, the hourly maximum (in the alerting direction) exceeded in a fraction
    1 - TAIL_Q of the hours, or NaN without MIN_SCALE_SAMPLES hours. hi, lo: (rows, HIST)
    hourly maxima and minima."""
    top = hi if direction == "up" else -lo if direction == "down" else np.fmax(hi, -lo)
    srt = np.sort(top, axis=1)
    cnt = np.count_nonzero(~np.isnan(srt), axis=1)
    q = srt[np.arange(len(srt)), np.maximum(np.floor(TAIL_Q * (cnt - 1)).astype(np.int64), 0)]
    return np.where(cnt >= MIN_SCALE_SAMPLES, q, np.nan)


def window_scales(
    endm: np.ndarray, hi: np.ndarray, lo: np.ndarray, ws: tuple[int, ...], direction: str
) -> np.ndarray:
    """How much each statistic (the point z, the means of w residuals) varies, learned
    from the past week: the larger of its robust spread (MAD of its values at the ends of
    the hours) and its tail (the hourly maximum exceeded in TAIL_Q of the hours, divided
    by TAIL_T), so heavy-tailed series (queue ages, bursty counts) are not judged as if
    they were normal. endm, hi, lo: (F, HIST, len(ws)) values at hour ends, hourly maxima
    and minima. Returns (F, len(ws)); NaN (test off) without enough history."""
    f, h, nw = endm.shape

    def rows(x: np.ndarray) -> np.ndarray:
        return x.transpose(0, 2, 1).reshape(f * nw, h)

    med, cnt = row_median(np.abs(rows(endm)))
    spread = (MAD_K * med).reshape(f, nw)
    tail = np.nan_to_num(_tail(rows(hi), rows(lo), direction).reshape(f, nw) / TAIL_T)
    floor = np.array([1.0 if w == 1 else 1.0 / math.sqrt(w) for w in ws])
    out = np.maximum(np.maximum(spread, tail), floor[None, :])
    return np.where(cnt.reshape(f, nw) >= MIN_SCALE_SAMPLES, out, np.nan)


def point_spread(c1: np.ndarray, counted: np.ndarray | bool) -> np.ndarray:
    """The point test's spread per row: the learned one, else COUNT_SPREAD for counts.
    A count's z is already no larger than its exact Poisson / binomial tail says, so it
    can be judged before a week holds MIN_SCALE_SAMPLES hours of residuals: a history
    backfilled at a coarse step, or a method so rarely used that most of its windows hold
    no attempt (no volume, no residual), may never hold them."""
    return np.where(np.isnan(c1) & counted, COUNT_SPREAD, c1)


def agrees(m_short: np.ndarray, c_short: np.ndarray, m: np.ndarray, direction: str) -> np.ndarray:
    """Per row: may a window mean count as evidence? Only while the next shorter window
    (where it is learned) still deviates the same way by AGREE of its spreads: a long
    window remembers a fault for hours after it ended (30 minutes of zeros stay in the
    mean of 360 samples for six hours), and would page again when the first alert ends."""
    with np.errstate(invalid="ignore"):
        ok = (m_short * m > 0) & (_directed(m_short / c_short, direction) >= AGREE)
    return ok | np.isnan(c_short)


def abs_tail(hi: np.ndarray, lo: np.ndarray, direction: str) -> np.ndarray:
    """Series-wide floor for the point test's spread, in the series' units: the tail of
    the hourly extreme residual (value - expected) divided by TAIL_T. Bursts of a fixed
    size (a queue's age jumping by a minute now and then) are normal at every hour, even
    the quiet ones where the relative spread is small. hi, lo: (F, HIST)."""
    return np.nan_to_num(_tail(hi, lo, direction) / TAIL_T)


def ref_offsets(p: EngineParams) -> dict[str, np.ndarray]:
    return {
        "weekly": 168 * np.arange(1, p.weeks + 1),
        "daily": 24 * np.arange(1, DAILY_REFS + 1),
        "flat": np.arange(FLAT_REFS, 0, -1),
    }


NEED = {"flat": 6, "daily": 2, "weekly": 1}  # reference hours with data a profile needs


def band_base(
    code: np.ndarray, prov: np.ndarray, between: np.ndarray, mult: np.ndarray, st: dict[str, Stats]
) -> tuple:
    """Expected value (before the level factor), spread, profile used (0 flat, 1 daily,
    2 weekly, -1 none) and number of reference hours, per hour. A weekly model falls back
    to daily, a daily one to flat, for hours whose reference hours have no data."""
    f = st["flat"]
    used = np.where(f.cnt >= NEED["flat"], 0, -1)
    for c, name in ((1, "daily"), (2, "weekly")):
        used = np.where((code >= c) & (st[name].cnt >= NEED[name]), c, used)
    m = len(code)
    med = np.full(m, np.nan)
    nref = np.zeros(m, dtype=np.int64)
    mad, sw, rng = np.full(m, np.nan), np.full(m, np.nan), np.zeros(m)
    for c, name in enumerate(SEASONS):
        rows = np.flatnonzero(used == c)
        if len(rows) == 0:
            continue
        x = st[name].rows(rows)
        med[rows], nref[rows] = x.med, x.cnt
        mad[rows], sw[rows], rng[rows] = spread_stats(x)
    # few reference hours give a noisy MAD: mix in the series-wide hour error
    g = np.where(mult, between * np.abs(med), between)
    own = MAD_K * mad
    sb = np.sqrt((nref * own * own + SHRINK * g * g) / (nref + SHRINK))
    # while a weekly pattern cannot be told apart yet, the day-to-day range widens the band
    rterm = np.where((used == 1) & prov, 0.5 * rng, 0.0)
    sb = np.maximum(sb, rterm)
    sw = np.where(np.isfinite(sw), sw, 0.0)
    s0 = np.sqrt(sw * sw + sb * sb)
    ehat = np.where(used >= 0, med, np.nan)
    return ehat, s0, used, nref


def band_final(
    young: np.ndarray,
    mult: np.ndarray,
    floor: np.ndarray,
    integer: np.ndarray,
    ehat: np.ndarray,
    s0: np.ndarray,
    used: np.ndarray,
    lvl: np.ndarray,
    cnt: np.ndarray,
) -> tuple:
    """The final expected value and spread, per hour, with the level factor (median of
    the last LEVEL_BLOCKS hours' actual/expected as of the last fit, and how many)."""
    ok = (cnt >= LEVEL_MIN) & (used >= 1)
    lim = 3.0 * floor
    lvl = np.where(
        ok,
        np.where(mult, np.clip(lvl, *LEVEL_CLIP), np.clip(lvl, -lim, lim)),
        np.where(mult, 1.0, 0.0),
    )
    e = np.where(mult, ehat * lvl, ehat + lvl)
    s = np.where(mult, s0 * lvl, s0)
    s = np.maximum(s, floor)
    s = np.where(young, np.maximum(s, YOUNG_REL * np.abs(e)), s)
    s = np.where(integer, np.maximum(s, np.sqrt(np.maximum(e, 1.0))), s)  # Poisson noise at least
    return e, s, lvl


def band_one(
    model: Model, get: Any, level: tuple[float, int]
) -> tuple[float, float, float, float, int, int]:
    """`band_base` + `band_final` for one hour in plain Python. get(name) gives the
    reference medians and spreads of that profile."""
    code = SEASON_CODE[model.season]
    chosen = None
    used = -1
    for c, name in ((2, "weekly"), (1, "daily"), (0, "flat")):
        if code < c:
            continue
        refs = get(name)
        if refs is None:
            break
        st = stats1(*refs)
        if st[1] >= NEED[name]:
            chosen, used = st, c
            break
    if chosen is None:
        return math.nan, math.nan, math.nan, 1.0, -1, 0
    med, nref, mad, sw, rng = chosen
    g = model.between * abs(med) if model.mult else model.between
    own = MAD_K * mad
    sb = math.sqrt((nref * own * own + SHRINK * g * g) / (nref + SHRINK))
    rterm = 0.5 * rng if (used == 1 and model.provisional) else 0.0
    sb = max(sb, rterm)
    sw = sw if sw == sw else 0.0
    s0 = math.sqrt(sw * sw + sb * sb)
    lvl, cnt = level
    ok = cnt >= LEVEL_MIN and used >= 1
    if model.mult:
        lvl = min(max(lvl, LEVEL_CLIP[0]), LEVEL_CLIP[1]) if ok else 1.0
        e, s = med * lvl, s0 * lvl
    else:
        lim = 3.0 * model.floor
        lvl = min(max(lvl, -lim), lim) if ok else 0.0
        e, s = med + lvl, s0
    s = max(s, model.floor)
    if model.days < WINDOW_DAYS:
        s = max(s, YOUNG_REL * abs(e))
    if model.integer:
        s = max(s, math.sqrt(max(e, 1.0)))
    return med, e, s, lvl, used, nref


def zero_refs(vmin: np.ndarray, cnt: np.ndarray) -> np.ndarray:
    """Per hour: how many samples its reference hours hold, if none of them was 0 or
    less; 0 otherwise (zeros are normal there). vmin, cnt: (hours, refs)."""
    valid = cnt > 0
    never = np.all(~valid | (vmin > 0), axis=1) & valid.any(axis=1)
    return np.where(never, np.where(valid, cnt, 0.0).sum(axis=1), 0.0)


def zero_refs_one(vmin: list[float], cnt: list[float]) -> float:
    total = 0.0
    for v, c in zip(vmin, cnt, strict=True):
        if c > 0:
            if not v > 0:
                return 0.0
            total += c
    return total


def zero_strength(run: int, n: float) -> float:
    """A run of zeros where the same hours of the past held n samples and no zero: as
    unlikely as `run` independent draws of a never-seen value, (1/n)^run, on the z scale."""
    inv = 1.0 / n
    prob = 1.0
    for _ in range(min(run, ZMAX)):
        prob *= inv
    return float(-special.ndtri(prob))


def next_expected(model: Model, used: int, lvl: float, e: float, get_next: Any) -> float:
    """The next hour's expected value (its profile median, with this hour's level factor),
    towards which the expected value moves in the second half of this hour; e itself
    when this hour has no profile (flat)."""
    if used < 1:
        return e
    code = SEASON_CODE[model.season]
    for c, name in ((2, "weekly"), (1, "daily")):
        if code < c:
            continue
        med, cnt = pmed(get_next(name))
        if cnt >= NEED[name]:
            return med * lvl if model.mult else med + lvl
    return e


def interpolate(e: Any, e_prev: Any, e_next: Any, u: Any, s: Any) -> Any:
    """Expected value at fraction u of the hour: hour values sit at the middle of their
    hours, straight lines between (steep morning ramps are not anomalies), moving at most
    one spread s away from the hour's own value (a step at midnight into a weekend is a
    step, not a ramp)."""
    if isinstance(u, np.ndarray):
        d = np.where(u < 0.5, e - e_prev, e_next - e) * (u - 0.5)
        return e + np.clip(d, -s, s)
    d = (e - e_prev if u < 0.5 else e_next - e) * (u - 0.5)
    return e + min(max(d, -s), s)


def block_ratio(mult: Any, center: Any, ehat: Any) -> Any:
    """This hour's actual vs expected, for the level factor of the hours after it."""
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(ehat > 0, center / np.where(ehat > 0, ehat, 1.0), np.nan)
    return np.where(mult, ratio, center - ehat)


def _phase(t0: float, v0: float) -> int:
    return zlib.crc32(struct.pack("<dd", t0, v0)) % 24


GATE = 2.0  # beyond this normal-approximation z, counts get their exact tail probability
MU_MIN = 0.1  # an expected count of exactly 0 would make any count infinitely unlikely


def count_z(x: float, e: float, vol: float | None, bounded: bool) -> float:
    """How unusual x is as a count (a ratio with its volume: a binomial count of vol
    trials; else a Poisson count), as a standard normal quantile. Cheap approximations
    near the centre, exact tails beyond GATE: at small counts the normal approximation
    is far off in the tails, where alerts are decided."""
    if vol is not None and bounded:
        n = round(vol)
        k = round(x * vol)
        pp = min(max(e, 0.5 / n), 1.0 - 0.5 / n)
        z = (k / n - pp) / math.sqrt(pp * (1.0 - pp) / n)
        if z > GATE:
            return float(-special.ndtri(special.bdtrc(k - 1, n, pp)))
        if z < -GATE:
            return float(special.ndtri(special.bdtr(k, n, pp)))
        return z
    mu = max(e, MU_MIN)
    z = 2.0 * (math.sqrt(x + 0.375) - math.sqrt(mu + 0.375))  # Anscombe
    if z > GATE:
        return float(-special.ndtri(special.pdtrc(x - 1.0, mu)))
    if z < -GATE:
        return float(special.ndtri(special.pdtr(x, mu)))
    return z


def share_spread(e: Any, vol: Any) -> Any:
    """The binomial spread of a share around its expected value e, with vol trials: what
    a share's band shows at least, as a count's shows its Poisson noise (a share that was
    always 0 learns a spread of ~0, while its test is the exact binomial tail)."""
    n = np.maximum(vol, 1.0)
    pp = np.minimum(np.maximum(e, 0.5 / n), 1.0 - 0.5 / n)
    return np.sqrt(pp * (1.0 - pp) / n)


def count_z_array(x: np.ndarray, e: np.ndarray, vol: np.ndarray | None) -> np.ndarray:
    """`count_z` elementwise (vol given: binomial, else Poisson)."""
    if vol is not None:
        n = np.rint(vol).astype(np.int64)
        k = np.rint(x * vol).astype(np.int64)
        pp = np.minimum(np.maximum(e, 0.5 / n), 1.0 - 0.5 / n)
        z = (k / n - pp) / np.sqrt(pp * (1.0 - pp) / n)
        up, dn = z > GATE, z < -GATE
        if up.any():
            z[up] = -special.ndtri(special.bdtrc(k[up] - 1, n[up], pp[up]))
        if dn.any():
            z[dn] = special.ndtri(special.bdtr(k[dn], n[dn], pp[dn]))
        return z
    mu = np.maximum(e, MU_MIN)
    z = 2.0 * (np.sqrt(x + 0.375) - np.sqrt(mu + 0.375))
    up, dn = z > GATE, z < -GATE
    if up.any():
        z[up] = -special.ndtri(special.pdtrc(x[up] - 1.0, mu[up]))
    if dn.any():
        z[dn] = special.ndtri(special.pdtr(x[dn], mu[dn]))
    return z


def _directed(x: Any, direction: str) -> Any:
    if direction == "up":
        return x
    if direction == "down":
        return -x
    return abs(x)


def eval_stats(
    summ: np.ndarray, ends: np.ndarray, offsets: dict[str, np.ndarray]
) -> dict[str, Stats]:
    """Reference statistics per profile for the hours `ends` (indices into summ, which
    must reach back far enough: ends - offsets >= 0)."""
    out = {}
    cen = np.ascontiguousarray(summ[:, CEN])
    spr = np.ascontiguousarray(summ[:, SPR])
    for name, off in offsets.items():
        idx = ends[:, None] - off[None, :]
        out[name] = season_stats(cen[idx], spr[idx])
    return out


# --- stepping -------------------------------------------------------------------------


class BandEngine:
    """Stepping form; `engine_batch` is the same computation for a whole series."""

    def __init__(self, name: str, p: EngineParams) -> None:
        self.name = name
        self.p = p
        self._offsets = ref_offsets(p)
        self._summ = Ring(p.cen_blocks + 1, 7)
        self._band = Ring(HIST + 1, 4)
        self._endm = Ring(HIST + 1, len(WINDOWS))
        nw = len(WINDOWS)
        self._ext = Ring(HIST + 1, 2 * nw + 2)
        self._m = [math.nan] * (nw + 1)  # this step's z, window means and raw residual
        self._hi = [math.nan] * (nw + 1)  # their maxima and minima over the hour so far
        self._lo = [math.nan] * (nw + 1)
        self._abs = 0.0  # absolute floor of the point test's spread
        self._warm = math.ceil(p.warmup_hours)
        self._b: int | None = None
        self._vals: list[float] = []
        self._int = True  # all values of this hour integers so far
        self._gap = math.nan
        self._b0: int | None = None
        self._phase = 0
        self._last_valid: float | None = None
        self._model: Model | None = None
        self._cw: tuple[float, ...] = (math.nan,) * len(WINDOWS)
        self._ehat = math.nan
        self._e = math.nan
        self._e_prev = math.nan
        self._e_next = math.nan
        self._level: tuple[float, int] = (math.nan, 0)  # level factor as of the last fit
        self._zero_n = 0.0  # samples in this hour's reference hours, none of them 0
        self._zrun = 0  # zeros in a row
        self._s = math.nan
        self._lvl = 1.0
        self._used = -1
        self._nref = 0
        self._cz = [0.0] * RING
        self._cn = [0] * RING
        self._cu = [0] * RING  # running counts of residuals a point spread above / below
        self._cd = [0] * RING
        self._totu = 0
        self._totd = 0
        self._outs = [(0, 0)] * len(WINDOWS)  # those counts in each window
        self._row = 0
        self._totz = 0.0
        self._totn = 0
        self._active = self._active_windows()
        self._active_c: dict[int, float] = {}

    def describe(self) -> dict[str, Any]:
        p = self.p
        d: dict[str, Any] = {
            "kind": self.name,
            "k": p.k,
            "direction": p.direction,
            "seasonality": p.seasonality,
            "weeks": p.weeks,
            "min_volume": p.min_volume,
            "point": p.point,
            "windows": p.windows,
            "absence": p.absence,
            "warmup_hours": p.warmup_hours,
        }
        if self._model is not None:
            d["learned"] = self._model.describe()
            d["learned"]["window_spreads"] = {
                str(w): (None if c != c else round(c, 4))
                for w, c in zip(WINDOWS, self._cw, strict=True)
            }
        return d

    def _active_windows(self) -> list[tuple[int, int, float]]:
        out = []
        model = self._model
        if model is None or model.days < WINDOW_DAYS or not self.p.windows:
            return out
        for j, w in enumerate(WINDOWS):
            if w == 1 or w * model.interval > MAX_WINDOW:
                continue
            c = self._cw[j]
            if c == c:
                out.append((j, w, c))
        return out

    # block boundary: close the last hour, maybe refit, compute this hour's band
    def _enter(self, b: int) -> None:
        pb = self._b
        if pb is not None:
            self._close(pb)
        self._b = b
        self._vals = []
        self._int = True
        self._gap = math.nan
        p = self.p
        if self._b0 is not None:
            refit = False
            if self._model is None:
                refit = b - self._b0 >= self._warm
            elif pb is not None:
                refit = (b + self._phase) // 24 > (pb + self._phase) // 24
            if refit:
                local = self._summ.window(b, p.cen_blocks)
                ends = np.arange(p.cen_blocks - HIST, p.cen_blocks)
                st = eval_stats(local, ends, self._offsets)
                st = {
                    k: Stats(x.med[None], x.cnt[None], x.c[None], x.d[None]) for k, x in st.items()
                }
                days = np.array([(b - self._b0) / 24])
                m = fit_models(p, days, local[-HIST:][None], st, self._model)[0]
                if m is not None or self._model is not None:
                    self._model = m if m is not None else self._model
                    nw = len(WINDOWS)
                    endm = self._endm.window(b, HIST)[None]
                    ext = self._ext.window(b, HIST)[None]
                    cw = window_scales(
                        endm, ext[:, :, :nw], ext[:, :, nw + 1 : 2 * nw + 1], WINDOWS, p.direction
                    )
                    self._cw = tuple(cw[0].tolist())
                    self._abs = float(
                        abs_tail(ext[:, :, nw], ext[:, :, 2 * nw + 1], p.direction)[0]
                    )
                    self._active = self._active_windows()
                    self._active_c = {j: c for j, _, c in self._active}
                    self._level = pmed(self._band.window(b, LEVEL_BLOCKS)[:, RAT].tolist())
        model = self._model
        if model is None:
            self._ehat = self._e = self._s = math.nan
            self._used = -1
            return
        summ, offsets = self._summ, self._offsets

        def get(name: str) -> list[list[float]]:
            return summ.cols(b - offsets[name], (CEN, SPR))

        def get_next(name: str) -> list[float]:
            return summ.cols(b + 1 - offsets[name], (CEN,))[0]

        self._ehat, e, self._s, self._lvl, self._used, self._nref = band_one(
            model, get, self._level
        )
        self._e = e
        prev = self._band.cols(np.array([b - 1]), (EXP,))[0][0]
        self._e_prev = prev if prev == prev else e
        self._e_next = next_expected(model, self._used, self._lvl, e, get_next)
        self._zero_n = 0.0
        if self._used >= 0:
            vmin, cnt = summ.cols(b - offsets[SEASONS[self._used]], (VMIN, CNT))
            self._zero_n = zero_refs_one(vmin, cnt)

    def _close(self, b: int) -> None:
        summ = summarize1(self._vals, self._int, self._gap)
        self._summ.put(b, summ)
        self._endm.put(b, self._m[:-1])
        self._ext.put(b, self._hi + self._lo)
        self._hi = [math.nan] * len(self._hi)
        self._lo = [math.nan] * len(self._lo)
        model, c, ehat = self._model, summ[CEN], self._ehat
        if model is None:
            ratio = math.nan
        elif model.mult:  # as `block_ratio`
            ratio = c / ehat if ehat > 0 else math.nan
        else:
            ratio = c - ehat
        self._band.put(b, [ehat, self._e, self._s, ratio])

    def step(self, obs: Observation) -> Verdict:
        t = obs.t
        b = block_of(t)
        if b != self._b:
            self._enter(b)
        x = clean(obs.value)
        p = self.p
        model = self._model
        if x is None:
            self._advance(math.nan, math.nan)
            if model is not None and p.absence and self._last_valid is not None:
                gap = t - self._last_valid
                if gap >= model.gap_limit:
                    return Verdict(
                        t, None, 1.0, True, True, True, None, None, None,
                        f"no data for {fmt_duration(gap)} (normal gaps up to "
                        f"{fmt_duration(model.gap_limit / 3)}; alert after "
                        f"{fmt_duration(model.gap_limit)})",
                    )  # fmt: skip
            return no_data(t)
        if self._b0 is None:
            self._b0 = b
            self._phase = _phase(t, x)
        self._vals.append(x)
        if self._int and x != math.floor(x):
            self._int = False
        self._zrun = self._zrun + 1 if x == 0 else 0
        if self._last_valid is not None:
            g = t - self._last_valid
            if not g <= self._gap:  # also when the gap so far is NaN
                self._gap = g
        self._last_valid = t
        e = self._e
        if model is None or e != e:
            self._advance(math.nan, math.nan)
            return self._quiet(t, x)
        e = interpolate(e, self._e_prev, self._e_next, (t - b * BLOCK) / BLOCK, self._s)
        vol = clean(obs.volume)
        s = self._s
        z = (x - e) / s
        counted = model.integer  # a count: its own tail test, no absolute floor
        if vol is not None:
            if vol <= 0 or vol < p.min_volume:
                self._advance(math.nan, math.nan)
                return Verdict(
                    t, x, 0.0, False, False, False, None, None, None,
                    f"volume {fmt(vol)} < {fmt(max(p.min_volume, 1e-300))}: no verdict",
                )  # fmt: skip
            if model.bounded and vol >= 1:
                counted = True
                zc = count_z(x, e, vol, True)
                if abs(zc) < abs(z):
                    z = zc
                s = max(s, float(share_spread(e, vol)))  # for the band it shows
        zm = z  # what the means add up (see `engine_batch`)
        if vol is None and model.integer:
            zc = count_z(x, e, None, False)
            if abs(zc) < abs(z):
                z = zc
        self._advance(z, x - e, zm)
        return self._judge(t, x, z, e, s, 0.0 if counted else self._abs, counted)

    def _advance(self, z: float, r: float, zm: float = math.nan) -> None:
        """This step's point z, raw residual r and the residual zm its means add up."""
        if z == z:
            c1 = self._cw[0]
            if c1 != c1:
                c1 = 1.0
            lim = ZC * c1
            self._totz += min(max(zm, -lim), lim)
            self._totn += 1
            if zm >= c1:
                self._totu += 1
            elif zm <= -c1:
                self._totd += 1
        self._row += 1
        row = self._row
        self._cz[row % RING] = totz = self._totz
        self._cn[row % RING] = totn = self._totn
        self._cu[row % RING] = totu = self._totu
        self._cd[row % RING] = totd = self._totd
        ms, his, los = self._m, self._hi, self._lo
        ms[0] = z
        ms[-1] = r
        if self.p.windows:
            cz, cn = self._cz, self._cn
            for j in range(1, len(WINDOWS)):
                w = WINDOWS[j]
                m = math.nan
                if row >= w:
                    lo = (row - w) % RING
                    c = totn - cn[lo]
                    if c >= (w + 1) // 2:
                        m = (totz - cz[lo]) / c
                    self._outs[j] = (totu - self._cu[lo], totd - self._cd[lo])
                ms[j] = m
        for j, m in enumerate(ms):
            if m == m:
                if not m <= his[j]:  # also when the hour's maximum is still NaN
                    his[j] = m
                if not m >= los[j]:
                    los[j] = m

    def _judge(
        self, t: float, x: float, z: float, e: float, s: float, a: float, counted: bool
    ) -> Verdict:
        p = self.p
        direction = p.direction
        c1 = self._cw[0]
        if counted and c1 != c1:
            c1 = COUNT_SPREAD  # see `point_spread`
        c1 = max(c1, a / s)
        best = -math.inf
        which = 1
        mean = z
        if p.point:
            best = _directed(z / c1, direction)
            if best != best:  # the point spread is not learned yet
                best = -math.inf
            if x == 0 and self._zero_n > 0 and direction != "up":
                sz = zero_strength(self._zrun, self._zero_n)
                if sz > best:
                    best, which = sz, 0
        ms = self._m
        active = self._active_c
        for j, w, c in self._active:
            m = ms[j]
            if m != m:
                continue
            ups, downs = self._outs[j]
            if not ((m > 0 and ups >= MIN_OUT) or (m < 0 and downs >= MIN_OUT)):
                continue  # one wild sample is the point test's to judge
            if j >= 2 and j - 1 in active:  # see `agrees`
                mp = ms[j - 1]
                if not (mp * m > 0 and _directed(mp / active[j - 1], direction) >= AGREE):
                    continue
            sw = _directed(m / c, direction)
            if sw > best:
                best, which, mean = sw, w, m
        if not best > -math.inf:  # nothing learned enough to judge with (also NaN)
            return self._quiet(t, x)
        k = p.k
        anomalous = best >= k
        half = k * c1 * s
        lower = e - half
        upper = e + half
        model = self._model
        assert model is not None
        if model.nonneg and lower < 0:
            lower = 0.0
        if model.bounded and upper > 1:
            upper = 1.0
        if half != half:
            lower = upper = math.nan
        reason = self._reason(t, x, e, s, c1 * s, lower, upper, which, mean, best, anomalous)
        return Verdict(
            t,
            x,
            ratio_score(best, k),
            anomalous,
            anomalous,
            False,
            e,
            opt(lower),
            opt(upper),
            reason,
        )

    def _quiet(self, t: float, x: float) -> Verdict:
        if self._model is None:
            hours = 0.0 if self._b0 is None else (t - self._b0 * BLOCK) / 3600
            why = f"warming up: {hours:.1f} h of history, judging after {self.p.warmup_hours:.0f} h"
        elif self._e != self._e:
            why = "no reference hours with data for this hour yet: no verdict"
        else:
            why = "learning how much the series varies (a day of residuals): no verdict yet"
        return Verdict(t, x, 0.0, False, False, False, None, None, None, why)

    def _basis(self, t: float) -> str:
        used = self._used
        if used == 2:
            tm = _slot_time(t)
            where = f"{DAYS[tm[0]]} {tm[1]:02d}:00 over {self._nref} weeks"
        elif used == 1:
            where = f"{_slot_time(t)[1]:02d}:00 over {self._nref} days"
        else:
            where = f"the last {self._nref} hours"
        model = self._model
        lvl = ""
        if used >= 1 and model is not None:
            lvl = f", level ×{self._lvl:.2f}" if model.mult else f", level {self._lvl:+.3g}"
        return f"median {fmt(self._ehat)} of {where}{lvl}"

    def _reason(
        self,
        t: float,
        x: float,
        e: float,
        s: float,
        point_spread: float,
        lower: float,
        upper: float,
        which: int,
        mean: float,
        best: float,
        anomalous: bool,
    ) -> str:
        k = self.p.k
        basis = self._basis(t)
        if which == 0:
            return (
                f"0 for {self._zrun} samples in a row, expected {fmt(e)}: no zero among the "
                f"{self._zero_n:.0f} samples of the same hours in the past ({basis})"
            )
        if which == 1:
            if not anomalous:
                return f"{fmt(x)} within {fmt(lower)}–{fmt(upper)} ({basis})"
            side = "above" if x > e else "below"
            edge = upper if x > e else lower
            sign = "+" if x > e else "−"
            spread = fmt(point_spread)
            return f"{fmt(x)} {side} {fmt(edge)} ({basis} {sign} {k:.1f}×{spread} spread)"
        j = WINDOWS.index(which)
        avg = e + mean * s
        side = "above" if mean > 0 else "below"
        state = "" if anomalous else "not "
        return (
            f"mean of the last {which} samples {fmt(avg)} {state}{side} expected {fmt(e)} by "
            f"{best:.1f}× its usual spread {fmt(self._cw[j] * s)} (last value {fmt(x)}; {basis})"
        )


def _slot_time(t: float) -> tuple[int, int]:
    days = math.floor(t / 86400)
    return (days + 3) % 7, math.floor(t / 3600) % 24  # 1970-01-01 was a Thursday


# --- batch ----------------------------------------------------------------------------


def engine_batch(p: EngineParams, t: np.ndarray, v: np.ndarray, vol: np.ndarray | None) -> Raw:
    n = len(t)
    no_data = ~np.isfinite(v)
    valid = ~no_data
    vrows = np.flatnonzero(valid)
    if len(vrows) == 0:
        return _quiet_raw(n, no_data)
    blk = block_index(t)
    b_lo = int(blk[0])
    rb = blk - b_lo
    nb = int(rb[-1]) + 1

    # per-hour summaries, padded in front so that history before the data reads as NaN
    pad = p.cen_blocks
    all_valid = len(vrows) == n
    m, _ = padded_rows(rb if all_valid else rb[vrows], v if all_valid else v[vrows], nb)
    summ = np.full((pad + nb + 1, 7), np.nan)  # one more hour: the next hour of the last
    summ[pad : pad + nb] = summarize(m)
    if len(vrows) > 1:
        # longest gap before a sample, per hour of the later sample
        gaps = np.diff(t[vrows])
        gb = rb[vrows[1:]]
        first = np.flatnonzero(np.diff(gb, prepend=-1))
        summ[pad + gb[first], GAP] = np.maximum.reduceat(gaps, first)
    entered = rb[np.flatnonzero(np.diff(rb, prepend=-1))]  # rb is sorted
    last_row = np.searchsorted(rb, entered, side="right") - 1
    offsets = ref_offsets(p)
    # reference statistics of every hour from HIST hours before the data on (row q is
    # relative hour q - HIST)
    st_all = eval_stats(summ, np.arange(pad - HIST, pad + nb + 1), offsets)

    def st_rows(rows: np.ndarray | slice, full: bool = True) -> dict[str, Stats]:
        return {k: x.rows(rows, full) for k, x in st_all.items()}

    # pass 1: when the model is (re)fitted, as the stepping path would: first when a day
    # of history is in and there is enough data, then once a day
    b0 = int(rb[vrows[0]])
    phase = _phase(float(t[vrows[0]]), float(v[vrows[0]]))
    warm = math.ceil(p.warmup_hours)
    cnt0 = np.nan_to_num(summ[:, CNT])
    have = np.cumsum(np.concatenate([[0], cnt0 > 0]))
    total = np.cumsum(np.concatenate([[0.0], cnt0]))
    lo_i, hi_i = pad + entered - HIST, pad + entered
    ready = ((have[hi_i] - have[lo_i]) >= 12) & ((total[hi_i] - total[lo_i]) >= 20)
    first = np.flatnonzero((entered > b0) & (entered - b0 >= warm) & ready)
    if len(first) == 0:
        return _quiet_raw(n, no_data)
    i0 = int(first[0])
    day = (entered + b_lo + phase) // 24
    crossing = np.flatnonzero(np.diff(day) > 0) + 1
    fit_pos = np.concatenate([[i0], crossing[crossing > i0]])
    fb = entered[fit_pos]
    new_pos = fit_pos[ready[fit_pos]]
    nbk = entered[new_pos]
    rec = summ[pad + nbk[:, None] + np.arange(-HIST, 0)[None, :]]
    q = nbk[:, None] + np.arange(HIST)[None, :]
    fresh = fit_models(p, (nbk - b0) / 24, rec, st_rows(q, full=False))
    # a refit without enough data keeps the model before it
    which = np.searchsorted(new_pos, fit_pos, side="right") - 1
    models = [fresh[w] for w in which]
    fits = list(zip(fit_pos.tolist(), models, strict=True))
    del fb

    # pass 2: the band of every hour under the model of its day
    seg_e = np.searchsorted(fit_pos, np.arange(len(entered)), side="right") - 1
    on = seg_e >= 0
    eb = entered[on]
    seg = seg_e[on]

    def per(attr: str, dtype: Any = float) -> np.ndarray:
        return np.array([getattr(mm, attr) for mm in models], dtype=dtype)[seg]

    code = np.array([SEASON_CODE[mm.season] for mm in models])[seg]
    mult = per("mult", bool)
    ehat, s0, used, _ = band_base(
        code, per("provisional", bool), per("between"), mult, st_rows(eb + HIST)
    )
    band_rat = np.full(nb, np.nan)
    band_rat[eb] = block_ratio(mult, summ[pad + eb, CEN], ehat)
    # the level factor at each fit point, from the week of hours before it
    lv_idx = entered[fit_pos][:, None] - np.arange(LEVEL_BLOCKS, 0, -1)[None, :]
    lvl_f, lvl_n = row_median(gather(band_rat, lv_idx))
    e_b, s_b, lvl_b = band_final(
        per("days") < WINDOW_DAYS,
        mult,
        per("floor"),
        per("integer", bool),
        ehat,
        s0,
        used,
        lvl_f[seg],
        lvl_n[seg],
    )
    e_blk = np.full(nb, np.nan)
    s_blk = np.full(nb, np.nan)
    e_blk[eb] = e_b
    s_blk[eb] = s_b
    # the expected value of the neighbouring hours, to interpolate within each hour
    e_prev = gather(e_blk, eb - 1)
    e_prev = np.where(np.isfinite(e_prev), e_prev, e_b)
    nxt = st_rows(eb + 1 + HIST, full=False)
    e_next = e_b.copy()
    for c, name in ((1, "daily"), (2, "weekly")):
        x = nxt[name]
        take = (used >= 1) & (code >= c) & (x.cnt >= NEED[name])
        e_next = np.where(take, np.where(mult, x.med * lvl_b, x.med + lvl_b), e_next)
    prev_blk = np.full(nb, np.nan)
    next_blk = np.full(nb, np.nan)
    prev_blk[eb] = e_prev
    next_blk[eb] = e_next
    # zeros: how many samples the hours' references hold, none of them zero
    zero_blk = np.zeros(nb)
    if p.point and p.direction != "up":
        for c, name in enumerate(SEASONS):
            sel = used == c
            if not sel.any():
                continue
            idx = pad + eb[sel][:, None] - offsets[name][None, :]
            zero_blk[eb[sel]] = zero_refs(summ[idx, VMIN], summ[idx, CNT])

    # pass 3: standardised residuals and their running sums (rows are sorted by hour, so
    # per-hour values spread to rows with np.repeat)
    first_row = np.searchsorted(rb, entered)
    nrow = np.diff(np.append(first_row, n))
    u = (t - blk * BLOCK) / BLOCK
    s_row = np.repeat(s_blk[entered], nrow)
    # each hour's rows before its middle move from the previous hour's value, those after
    # it towards the next hour's (see `interpolate`): one slope per half hour
    eb_ = e_blk[entered]
    mid = np.searchsorted(t, (entered + b_lo) * BLOCK + BLOCK / 2, side="left") - first_row
    halves = np.stack([mid, nrow - mid], axis=1).ravel()
    slope = np.stack([eb_ - prev_blk[entered], next_blk[entered] - eb_], axis=1).ravel()
    d = np.repeat(slope, halves) * (u - 0.5)
    e_row = np.repeat(eb_, nrow) + np.clip(d, -s_row, s_row)
    seg_row = np.repeat(seg_e, nrow)
    fitted_row = seg_row >= 0
    segr = np.maximum(seg_row, 0)

    def flag(attr: str) -> np.ndarray | bool:
        """A model property per row (a plain bool when all fits agree)."""
        f = np.array([getattr(mm, attr) for mm in models])
        return bool(f[0]) if (f == f[0]).all() else f[segr]

    bounded = flag("bounded")
    integer = flag("integer")
    ok = valid & np.isfinite(e_row)
    with np.errstate(invalid="ignore"):
        z = (v - e_row) / s_row
    # the means of counts add up their plain residuals: a count's tail-corrected z is no
    # larger than its exact tail (right for a single sample) but biased, by an amount that
    # follows the rate through the day, which the means of hundreds of samples would show.
    # Ratios keep their binomial z: their expected value may be 0 at night, where a plain
    # residual would be boundless
    z_means = z.copy()
    # counts: z no larger than their exact tail says (small counts have heavy tails)
    known = np.isfinite(vol) if vol is not None else np.zeros(n, bool)
    with np.errstate(invalid="ignore"):
        big = known & (vol >= 1) if vol is not None else known
    for mask_of, weight in (
        (lambda: ok & big & bounded, vol),
        (lambda: ok & ~known & integer, None),
    ):
        if (bounded is False and weight is not None) or (integer is False and weight is None):
            continue
        mask = mask_of()
        if not mask.any():
            continue
        zz = count_z_array(v[mask], e_row[mask], None if weight is None else weight[mask])
        zm = z[mask]
        z[mask] = np.where(np.abs(zz) < np.abs(zm), zz, zm)
        if weight is not None:
            z_means[mask] = z[mask]
    if vol is not None:
        ok &= ~(known & ((vol <= 0) | (vol < p.min_volume)))
    if not ok.all():
        z[~ok] = np.nan
    counted = (integer | (bounded & big)) if vol is not None else integer
    if not isinstance(counted, bool):
        counted = True if counted.all() else (False if not counted.any() else counted)
    if counted is True:
        r = np.full(n, np.nan)  # counts get no absolute floor: no need for their residuals
    else:
        r = v - e_row
        r[~ok] = np.nan
    nw = len(WINDOWS)
    hist = (entered[fit_pos][:, None] + np.arange(-HIST, 0)[None, :]).ravel()

    def hours(rows: list[np.ndarray]) -> np.ndarray:
        """Per hour, for each row statistic: value at the hour's last row, maximum,
        minimum; then the week before each fit point: (fits, HIST, 3 * len(rows))."""
        h = np.full((nb, 3 * len(rows)), np.nan)
        for i, x in enumerate(rows):
            h[entered, 3 * i] = x[last_row]
            h[entered, 3 * i + 1] = np.fmax.reduceat(x, first_row)
            h[entered, 3 * i + 2] = np.fmin.reduceat(x, first_row)
        return gather_rows(h, hist).reshape(len(fits), HIST, -1)

    fit_rows = np.diff(np.append(np.searchsorted(seg_row, np.arange(len(fits))), n))
    before = n - int(fit_rows.sum())

    def per_row(col: np.ndarray) -> np.ndarray:
        return np.concatenate([np.full(before, col[0]), np.repeat(col, fit_rows)])

    # pass 4: spread of the point statistic at each fit point, from the week before it
    hz = hours([z, r])
    c1 = window_scales(hz[:, :, 0:1], hz[:, :, 1:2], hz[:, :, 2:3], (1,), p.direction)[:, 0]
    a_floor = abs_tail(hz[:, :, 4], hz[:, :, 5], p.direction)
    c1_row = point_spread(per_row(c1), counted)

    # pass 5: means of the last w residuals (each clipped at ZC point spreads)
    c1e = np.where(np.isfinite(c1_row), c1_row, 1.0)
    lim = ZC * c1e
    zc = np.clip(z_means, -lim, lim)
    zc[~ok] = 0.0
    # how many residuals a point spread above / below, for `MIN_OUT`
    cu = np.zeros(n + 1)
    cd = np.zeros(n + 1)
    with np.errstate(invalid="ignore"):
        np.cumsum(ok & (z_means >= c1e), out=cu[1:])
        np.cumsum(ok & (z_means <= -c1e) & ~(z_means >= c1e), out=cd[1:])
    cz = np.zeros(n + 1)
    np.cumsum(zc, out=cz[1:])
    # counts as floats: exact, and no int → float in the divisions
    if ok.all():
        cn = np.arange(n + 1, dtype=float)
    else:
        cn = np.zeros(n + 1)
        np.cumsum(ok, out=cn[1:])
    cw = np.full((len(fits), nw), np.nan)
    cw[:, 0] = c1
    means = np.full((nw, n), np.nan)
    days_f = np.array([mm.days for mm in models])
    interval_f = np.array([mm.interval for mm in models])
    live = []
    for j, w in enumerate(WINDOWS):
        if w == 1 or w > n or not p.windows:
            continue
        if not ((days_f >= WINDOW_DAYS) & (w * interval_f <= MAX_WINDOW)).any():
            continue  # off at every fit point
        # row i (i >= w - 1): sums over rows i-w+1..i = cz[i + 1] - cz[i + 1 - w]
        c = cn[w:] - cn[:-w]
        with np.errstate(invalid="ignore", divide="ignore"):
            mj = (cz[w:] - cz[:-w]) / c
        few = c < (w + 1) // 2
        if few.any():
            mj[few] = np.nan
        means[j, w - 1 :] = mj
        live.append(j)
    if live:
        hm = hours([means[j] for j in live])
        cw[:, live] = window_scales(
            hm[:, :, 0::3], hm[:, :, 1::3], hm[:, :, 2::3], tuple(WINDOWS[j] for j in live),
            p.direction,
        )  # fmt: skip
    # windows longer than MAX_WINDOW in time are off (their memory of a fault outlasts it)
    cw[np.array(WINDOWS)[None, :] * interval_f[:, None] > MAX_WINDOW] = np.nan
    cw[days_f < WINDOW_DAYS, 1:] = np.nan

    # pass 6: strongest evidence per step
    if (a_floor > 0).any() and counted is not True:
        a_row = np.where(counted, 0.0, per_row(a_floor))
        with np.errstate(invalid="ignore", divide="ignore"):
            c1p = np.maximum(c1_row, a_row / s_row)
    else:
        c1p = c1_row
    strength = _directed(z / c1p, p.direction) if p.point else np.full(n, np.nan)
    if p.windows:
        for j, w in enumerate(WINDOWS):
            if w == 1 or not np.isfinite(cw[:, j]).any():
                continue
            with np.errstate(invalid="ignore"):
                sj = _directed(means[j] / per_row(cw[:, j]), p.direction)
                outs = np.zeros((2, n))
                outs[0, w - 1 :] = cu[w:] - cu[:-w]
                outs[1, w - 1 :] = cd[w:] - cd[:-w]
                mj = means[j]
                backed = ((mj > 0) & (outs[0] >= MIN_OUT)) | ((mj < 0) & (outs[1] >= MIN_OUT))
                sj[~backed] = np.nan
                if j >= 2 and np.isfinite(cw[:, j - 1]).any():
                    sj[~agrees(means[j - 1], per_row(cw[:, j - 1]), means[j], p.direction)] = np.nan
            strength = np.fmax(strength, sj)
    zrows = np.flatnonzero(v == 0) if (zero_blk > 0).any() else np.zeros(0, np.int64)
    zero_n = zero_blk[rb[zrows]]
    keep = ok[zrows] & (zero_n > 0)
    zrows, zero_n = zrows[keep], zero_n[keep]
    if len(zrows):
        # run length of zeros among the rows with data, up to each zero
        vv = v[vrows]
        k = np.arange(len(vrows))
        last_nz = np.maximum.accumulate(np.where(vv != 0, k, -1))
        run = np.zeros(n, dtype=np.int64)
        run[vrows] = k - last_nz
        inv = 1.0 / zero_n
        prob = np.ones(len(zrows))
        rz = run[zrows]
        for j in range(ZMAX):
            prob = np.where(rz > j, prob * inv, prob)
        strength[zrows] = np.fmax(strength[zrows], -special.ndtri(prob))
    judged = ok & fitted_row & np.isfinite(strength)
    if not judged.all():
        strength[~judged] = np.nan
    if vol is not None and bounded is not False:
        shown = bounded & big
        with np.errstate(invalid="ignore"):
            s_row = np.where(shown, np.fmax(s_row, share_spread(e_row, vol)), s_row)
    half = p.k * c1p * s_row
    lower = e_row - half
    upper = e_row + half
    nonneg = flag("nonneg")
    if nonneg is not False:
        np.copyto(lower, 0.0, where=nonneg & (lower < 0))
    if bounded is not False:
        np.copyto(upper, 1.0, where=bounded & (upper > 1))
    if not judged.all():
        out = ~judged
        e_row[out] = np.nan
        lower[out] = np.nan
        upper[out] = np.nan
    raw = Raw(
        strength,
        judged & (strength >= p.k),
        no_data,
        judged,
        e_row,
        lower,
        upper,
        ratio_score_array(strength, p.k),
    )
    if p.absence and not valid.all():
        last = np.maximum.accumulate(np.where(valid, t, -np.inf))
        limit = np.array([mm.gap_limit for mm in models])[segr]
        absent = ~valid & fitted_row & np.isfinite(last) & ((t - last) >= limit)
        raw.anomalous |= absent
        raw.score[absent] = 1.0
        strength[absent] = np.inf
        judged = judged | absent
    raw.strength = strength
    raw.judged = judged
    return raw


def _quiet_raw(n: int, no_data: np.ndarray) -> Raw:
    nan = np.full(n, np.nan)
    return Raw(
        nan,
        np.zeros(n, bool),
        no_data,
        np.zeros(n, bool),
        nan.copy(),
        nan.copy(),
        nan.copy(),
        np.zeros(n),
    )


def gather_rows(arr: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """arr[idx] row-wise, NaN rows where idx falls outside."""
    ok = (idx >= 0) & (idx < len(arr))
    out = np.full((len(idx), arr.shape[1]), np.nan)
    out[ok] = arr[idx[ok]]
    return out
