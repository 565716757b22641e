"""The detector contract: observations in, verdicts out, one step at a time or in batch.

Every detector is causal: the verdict for a step depends only on that step and the
steps before it. The batch path (`evaluate` in `spec.py`) computes exactly the same
verdicts with numpy, for backtests and tuning; the tests hold the two paths equal.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True, slots=True)
class Observation:
    t: float  # unix seconds, UTC
    value: float | None  # None = no data at this step (source failed or returned nothing)
    volume: float | None = None  # requests/attempts behind a ratio or a count (min-volume guards)


@dataclass(frozen=True, slots=True)
class Verdict:
    t: float
    value: float | None
    score: float  # anomaly strength in [0, 1]
    anomalous: bool  # raw verdict of this step
    firing: bool  # after persistence/hysteresis: what should alert
    no_data: bool
    expected: float | None  # centre of the expected band
    lower: float | None
    upper: float | None
    reason: str  # one line a human reads in an SMS


@runtime_checkable
class Detector(Protocol):
    name: str

    def step(self, obs: Observation) -> Verdict: ...  # causal, incremental, stateful

    def describe(self) -> dict[str, Any]: ...  # parameters, for provenance and alert text


@dataclass(frozen=True, slots=True)
class BatchResult:
    """Verdicts of a whole series as arrays (NaN where a step has no expected/lower/upper).

    `strength` is the detector's raw statistic, compared with its sensitivity parameter
    (NaN where the detector gave no verdict); `judged` marks steps that got a verdict
    (not warm-up, not no-data, not under the minimum volume)."""

    t: np.ndarray
    value: np.ndarray
    score: np.ndarray
    anomalous: np.ndarray
    firing: np.ndarray
    no_data: np.ndarray
    expected: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    strength: np.ndarray
    judged: np.ndarray

    def __len__(self) -> int:
        return len(self.t)


@dataclass(slots=True)
class Raw:
    """What a detector kernel computes for a whole series, before persistence."""

    strength: np.ndarray
    anomalous: np.ndarray
    no_data: np.ndarray
    judged: np.ndarray
    expected: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    score: np.ndarray


class OrderError(ValueError):
    """An observation arrived with a timestamp older than the previous one."""


def run(detector: Detector, observations: Iterable[Observation]) -> list[Verdict]:
    """Step a detector through a history; the reference the batch path is tested against."""
    return [detector.step(obs) for obs in observations]


def clean(value: float | None) -> float | None:
    """None for missing, NaN or infinite values: all mean 'no usable data at this step'."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def opt(x: float) -> float | None:
    """A band edge for a Verdict: None instead of NaN."""
    return None if x != x else x  # NaN != NaN


def fmt(x: float | None) -> str:
    """Compact number for alert text: 3 significant digits, no exponent for everyday sizes."""
    if x is None or x != x:
        return "n/a"
    if x == math.inf:
        return "∞"
    if x == 0:
        return "0"
    ax = abs(x)
    if 1e-3 <= ax < 1e6:
        s = f"{x:.3g}"
        return s if "e" not in s else f"{x:.0f}"
    return f"{x:.2e}"


def fmt_duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


# --- scores -------------------------------------------------------------------------
# Score maps a strength onto [0, 1] with 0.5 at the threshold. Only +, *, / are used so
# the stepping path (Python floats) and the batch path (numpy) agree to the last bit.


def ratio_score(strength: float, tau: float) -> float:
    """For a positive statistic compared with a positive threshold: 1/(1+(tau/s)^4)."""
    if not strength > 0:  # also catches NaN
        return 0.0
    if strength == math.inf:
        return 1.0
    r = tau / strength
    r2 = r * r
    return 1.0 / (1.0 + r2 * r2)


def ratio_score_array(strength: np.ndarray, tau: float | np.ndarray) -> np.ndarray:
    """`ratio_score` elementwise, as s^4 / (s^4 + tau^4): the same to rounding (scores
    are not compared with thresholds), NaN and non-positive strengths score 0."""
    x = np.fmin(np.fmax(strength, 0.0), 1e75)  # NaN → 0; no overflow in x^4
    x *= x
    x *= x
    t2 = tau * tau
    return x / (x + t2 * t2)


def margin_score(x: float, thr: float, scale: float) -> float:
    """For a value against a threshold that may be zero or negative: 0.5 at the threshold,
    0.9 at one `scale` beyond it, towards 0 below."""
    d = (x - thr) / scale
    if d >= 0:
        return 1.0 - 0.5 / (1.0 + 4.0 * d * d)
    return 0.5 / (1.0 + 4.0 * d * d)


def margin_score_array(x: np.ndarray, thr: float, scale: float) -> np.ndarray:
    d = (x - thr) / scale
    q = 0.5 / (1.0 + 4.0 * d * d)
    out = np.where(d >= 0, 1.0 - q, q)
    out[~np.isfinite(x)] = 0.0
    return out


# --- persistence and hysteresis --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Persistence:
    """When a run of anomalous steps becomes an alert, and how long it keeps firing.

    for_samples of of_samples: at least m of the last n steps anomalous (n = m by default);
    for_seconds: that condition must have held continuously this long (Prometheus `for`);
    keep_firing_for_seconds: once firing, stay firing until the condition has been false
    for this long (Prometheus `keep_firing_for`), so a flapping signal is one alert."""

    for_samples: int = 1
    of_samples: int | None = None
    for_seconds: float = 0.0
    keep_firing_for_seconds: float = 0.0

    @property
    def n(self) -> int:
        return self.of_samples if self.of_samples is not None else self.for_samples

    @property
    def trivial(self) -> bool:
        return (
            self.for_samples == 1
            and self.n == 1
            and self.for_seconds <= 0
            and self.keep_firing_for_seconds <= 0
        )

    def describe(self) -> dict[str, Any]:
        return {
            "for_samples": self.for_samples,
            "of_samples": self.n,
            "for_seconds": self.for_seconds,
            "keep_firing_for_seconds": self.keep_firing_for_seconds,
        }

    def text(self) -> str:
        parts = []
        if self.for_samples > 1 or self.n > 1:
            parts.append(f"{self.for_samples} of {self.n} steps")
        if self.for_seconds > 0:
            parts.append(f"for {fmt_duration(self.for_seconds)}")
        if self.keep_firing_for_seconds > 0:
            parts.append(f"kept {fmt_duration(self.keep_firing_for_seconds)}")
        return ", ".join(parts)


def persist_batch(rule: Persistence, t: np.ndarray, anomalous: np.ndarray) -> np.ndarray:
    """Firing flags for a whole series; the same state machine as `Persisted.step`."""
    n = len(anomalous)
    if rule.trivial or n == 0:
        return anomalous.copy()
    m, w = rule.for_samples, rule.n
    if m == 1 and w == 1:
        cond = anomalous
    else:
        ca = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(anomalous, out=ca[1:])
        lo = np.maximum(np.arange(1, n + 1) - w, 0)
        cond = (ca[1:] - ca[lo]) >= m
    if rule.for_seconds <= 0:
        # no pending time: every run of the keep-firing condition starts with a true
        # step, so firing is that condition, found from the (few) ends of true runs
        return _kept(cond, t, rule.keep_firing_for_seconds)
    idx = np.arange(n)
    if rule.for_seconds > 0:
        # time the current run of `cond` started: the row after the last false row
        last_false = np.maximum.accumulate(np.where(cond, -1, idx))
        run_start_t = t[np.minimum(last_false + 1, n - 1)]
        raw = cond & ((t - run_start_t) >= rule.for_seconds)
    else:
        raw = cond
    if rule.keep_firing_for_seconds > 0:
        last_true = np.maximum.accumulate(np.where(cond, idx, -1))
        first_false_t = t[np.minimum(last_true + 1, n - 1)]
        ok = cond | ((last_true >= 0) & ((t - first_false_t) < rule.keep_firing_for_seconds))
    else:
        ok = cond
    # within each run of `ok`, fire from the first `raw` step onwards
    cr = np.cumsum(raw)
    last_not_ok = np.maximum.accumulate(np.where(ok, -1, idx))
    base = np.where(last_not_ok >= 0, cr[np.maximum(last_not_ok, 0)], 0)
    return ok & ((cr - base) > 0)


def _kept(cond: np.ndarray, t: np.ndarray, keep: float) -> np.ndarray:
    firing = cond.copy()
    if keep <= 0:
        return firing
    n = len(cond)
    ci = np.flatnonzero(cond)
    ends = ci[ci + 1 < n]
    ends = ends[~cond[ends + 1]]  # last true step of each run, with a step after it
    if len(ends) == 0:
        return firing
    stops = np.searchsorted(t, t[ends + 1] + keep, side="left")
    for a, b in zip((ends + 1).tolist(), stops.tolist(), strict=True):
        firing[a:b] = True  # until keep seconds after the first calm step
    return firing


class Persisted:
    """Wraps a detector: keeps its raw verdict, decides `firing` by a Persistence rule,
    and says in the alert text how often it fired over the past weeks it has seen."""

    __slots__ = (
        "inner",
        "rule",
        "name",
        "_flags",
        "_count",
        "_run_start",
        "_had_true",
        "_first_false",
        "_firing",
        "_episodes",
        "_t0",
        "_last_t",
    )

    HISTORY = 28 * 86400.0  # window for the "fired N×/week" line

    def __init__(self, inner: Any, rule: Persistence) -> None:
        self.inner = inner
        self.rule = rule
        self.name = inner.name
        self._flags: deque[bool] = deque(maxlen=rule.n)
        self._count = 0
        self._run_start: float | None = None
        self._had_true = False
        self._first_false = 0.0
        self._firing = False
        self._episodes: deque[float] = deque()
        self._t0: float | None = None
        self._last_t = -math.inf

    def describe(self) -> dict[str, Any]:
        d = dict(self.inner.describe())
        d["persistence"] = self.rule.describe()
        return d

    def _advance(self, t: float, anomalous: bool) -> bool:
        rule = self.rule
        flags = self._flags
        if len(flags) == flags.maxlen and flags[0]:
            self._count -= 1
        flags.append(anomalous)
        if anomalous:
            self._count += 1
        cond = self._count >= rule.for_samples
        if cond:
            if self._run_start is None:
                self._run_start = t
            raw = (t - self._run_start) >= rule.for_seconds
            self._had_true = True
            self._first_false = math.nan
        else:
            self._run_start = None
            raw = False
            if self._had_true and self._first_false != self._first_false:
                self._first_false = t
        ok = cond or (self._had_true and (t - self._first_false) < rule.keep_firing_for_seconds)
        self._firing = ok and (raw or self._firing)
        return self._firing

    def step(self, obs: Observation) -> Verdict:
        if not obs.t >= self._last_t:
            raise OrderError(
                f"observation at t={obs.t!r} is older than the previous one at t={self._last_t!r}"
            )
        self._last_t = obs.t
        v = self.inner.step(obs)
        was = self._firing
        firing = self._advance(v.t, v.anomalous)
        if self._t0 is None:
            self._t0 = v.t
        if firing and not was:
            self._episodes.append(v.t)
        if firing == v.firing and not firing:
            return v
        reason = v.reason
        if firing:
            if not v.anomalous:
                reason = "still firing (" + self.rule.text() + "): " + reason
            reason += self._rate_text(v.t)
        return Verdict(
            v.t,
            v.value,
            v.score,
            v.anomalous,
            firing,
            v.no_data,
            v.expected,
            v.lower,
            v.upper,
            reason,
        )

    def _rate_text(self, t: float) -> str:
        eps = self._episodes
        while eps and eps[0] < t - self.HISTORY:
            eps.popleft()
        seen = t - (self._t0 if self._t0 is not None else t)
        if seen < 7 * 86400:
            return ""
        weeks = min(seen, self.HISTORY) / (7 * 86400)
        before = max(len(eps) - 1, 0)  # the last episode is this one
        if before == 0:
            return f"; the first firing in {weeks:.0f} weeks"
        return f"; fired {before / weeks:.2g}×/week before this, over the past {weeks:.0f} weeks"
