"""The default detector on series it was never told anything about: quiet on normal data,
loud on the faults a business cares about."""

from __future__ import annotations

import numpy as np
import pytest

from sentinel.detectors import DetectorSpec, build_detector, default_spec, evaluate, run
from tests.detectors.synth import (
    DAY,
    T0,
    episodes,
    flat_ratio,
    noisy_level,
    observations,
    seasonal_counts,
    shape,
    times,
)

AUTO = default_spec(None)


def at(t: np.ndarray, day: float, hour: float = 0.0) -> int:
    return int(np.searchsorted(t, T0 + day * DAY + hour * 3600))


def fires_within(firing: np.ndarray, t: np.ndarray, start: int, seconds: float) -> bool:
    end = int(np.searchsorted(t, t[start] + seconds, side="right"))
    return bool(firing[start:end].any())


def quiet(firing: np.ndarray, t: np.ndarray, after_days: float = 2.0) -> bool:
    return not firing[t >= t[0] + after_days * DAY].any()


# --- normal data: no false alarm ----------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: seasonal_counts(22, 60.0, peak=40.0, seed=1)[:2],
        lambda: seasonal_counts(22, 60.0, peak=2.0, seed=2)[:2],  # failed payments: low counts
        lambda: noisy_level(22, 60.0, seed=3),
        lambda: seasonal_counts(70, 3600.0, peak=30.0, seed=4)[:2],  # hourly
    ],
    ids=["busy counts", "low counts", "jittered level", "hourly counts"],
)
def test_quiet_on_normal_seasonal_series(make) -> None:
    t, v = make()
    result = evaluate(AUTO, t, v)
    assert quiet(result.firing, t), episodes(result.firing)
    assert result.score.max() < 0.5


def test_quiet_on_a_flat_ratio_with_volume() -> None:
    t, v, vol = flat_ratio(10, seed=5)
    result = evaluate(default_spec("ratio"), t, v, vol)
    assert quiet(result.firing, t)


def test_one_second_sampling() -> None:
    rng = np.random.default_rng(6)
    t = times(2.6, 1.0)
    v = 20 + 3 * np.sin(2 * np.pi * t / DAY) + rng.normal(0, 1, len(t))
    result = evaluate(AUTO, t, v)
    assert quiet(result.firing, t)
    i = at(t, 2.3)
    v = v.copy()
    v[i : i + 120] = 0.0  # two minutes of zeros
    result = evaluate(AUTO, t, v)
    assert fires_within(result.firing, t, i, 10)
    assert quiet(result.firing[: i - 1], t[: i - 1])


# --- faults: caught ------------------------------------------------------------------------------


def test_drop_to_zero_of_a_busy_series_is_caught_at_once_and_explained() -> None:
    t, v, _ = seasonal_counts(22, 60.0, peak=40.0, seed=1)
    i = at(t, 20, 14.0)
    v = v.copy()
    v[i : i + 30] = 0.0
    result = evaluate(AUTO, t, v)
    assert fires_within(result.firing, t, i, 120)
    assert len(episodes(result.firing)) == 1  # one alert, not one per minute
    # the stepping detector says why, in one line (5-minute steps, to keep the test fast)
    t5, v5, _ = seasonal_counts(22, 300.0, peak=40.0, seed=1)
    j = at(t5, 20, 14.0)
    v5[j : j + 6] = 0.0
    verdicts = run(build_detector(AUTO), observations(t5[: j + 2], v5[: j + 2]))
    hot = verdicts[-1]
    assert hot.firing and hot.value == 0.0
    assert hot.expected is not None and hot.expected > 100
    assert "Sun 14:00 over 2 weeks" in hot.reason or "0 for 2 samples" in hot.reason


@pytest.mark.parametrize("night", [False, True])
def test_drop_to_zero_of_a_count_even_at_night(night: bool) -> None:
    t, v, lam = seasonal_counts(22, 60.0, peak=40.0, seed=7)
    i = at(t, 20, 3.0 if night else 16.0)
    v = v.copy()
    v[i : i + 60] = 0.0
    result = evaluate(AUTO, t, v)
    assert fires_within(result.firing, t, i, 60 * 60)


def test_spike_in_failed_payments() -> None:
    t, v, lam = seasonal_counts(22, 60.0, peak=2.0, seed=8)
    i = at(t, 20, 11.0)
    v = v.copy()
    v[i] = 25.0  # a payment method breaks: 25 failures in a minute where ~2 are normal
    result = evaluate(default_spec("count"), t, v)
    assert result.firing[i]
    assert quiet(result.firing[:i], t[:i])


def test_broken_payment_method_in_a_failure_ratio() -> None:
    t, v, vol = flat_ratio(10, seed=9)
    i = at(t, 9, 10.0)
    v = v.copy()
    v[i : i + 10] = 0.5
    result = evaluate(default_spec("ratio"), t, v, vol)
    assert result.firing[i]
    assert quiet(result.firing[:i], t[:i])


def test_level_shift_of_a_level() -> None:
    t, v = noisy_level(22, 60.0, seed=10)
    i = at(t, 20, 10.0)
    v = v.copy()
    v[i : i + 180] *= 0.6
    result = evaluate(AUTO, t, v)
    assert fires_within(result.firing, t, i, 600)
    assert quiet(result.firing[:i], t[:i])


def test_stuck_queue() -> None:
    rng = np.random.default_rng(11)
    t = times(15, 60.0)
    age = rng.exponential(10 * shape(t, 0.5, 0.2)) + rng.uniform(0, 5, len(t))
    i = at(t, 14, 9.0)
    age[i : i + 60] = age[i] + 60.0 * np.arange(60)  # nothing is consumed
    result = evaluate(default_spec("queue"), t, age)
    assert fires_within(result.firing, t, i, 10 * 60)
    assert quiet(result.firing[:i], t[:i])


def test_hourly_drop() -> None:
    t, v, _ = seasonal_counts(70, 3600.0, peak=30.0, seed=12)
    i = at(t, 66, 12.0)
    v = v.copy()
    v[i : i + 3] = 0.0
    result = evaluate(AUTO, t, v)
    assert result.firing[i]


# --- warm-up, gaps, absence --------------------------------------------------------------------


def test_warm_up_is_quiet_and_says_so() -> None:
    t, v, _ = seasonal_counts(3, 60.0, seed=13)
    v = v.copy()
    v[600] = 500.0  # a wild value in the first hours: no guessing
    verdicts = run(build_detector(AUTO), observations(t[:1500], v[:1500]))
    assert not any(x.firing for x in verdicts)
    assert all(x.score == 0.0 for x in verdicts[:1400])
    assert "warming up" in verdicts[600].reason


def test_irregular_timestamps_and_gaps() -> None:
    rng = np.random.default_rng(14)
    t = times(12, 90.0, jitter=0.9, seed=14)
    keep = rng.random(len(t)) > 0.1
    t = t[keep]
    v = 50 + 10 * np.sin(2 * np.pi * t / DAY) + rng.normal(0, 1.5, len(t))
    v[rng.random(len(t)) < 0.05] = np.nan
    gap = (t > t[0] + 8 * DAY) & (t < t[0] + 8 * DAY + 3 * 3600)
    t, v = t[~gap], v[~gap]  # three hours nothing arrived at all
    result = evaluate(AUTO, t, v)
    assert quiet(result.firing, t)


def test_no_data_for_too_long_fires() -> None:
    t, v, _ = seasonal_counts(10, 60.0, seed=15)
    v = v.copy()
    i = at(t, 9, 12.0)
    v[i : i + 40] = np.nan  # the source returns nothing
    result = evaluate(AUTO, t, v)
    assert result.no_data[i] and not result.firing[i]
    assert result.firing[i + 15 : i + 40].all()
    assert result.firing[i + 40 :].sum() < 20  # back to normal when data returns


@pytest.mark.parametrize("kind", ["auto", "seasonal", "level_shift"])
def test_explicit_seasonality(kind: str) -> None:
    t, v, _ = seasonal_counts(12, 300.0, seed=16)
    spec = DetectorSpec(kind=kind, params={"seasonality": "daily"})
    det = build_detector(spec)
    run(det, observations(t, v))
    assert det.describe()["learned"]["seasonality"] == "daily"
