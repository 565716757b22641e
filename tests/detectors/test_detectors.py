"""Tables of cases per detector: what fires, what stays quiet, and what the alert says."""

from __future__ import annotations

import numpy as np
import pytest

from sentinel.detectors import DetectorSpec, Observation, build_detector, evaluate, run
from tests.detectors.synth import DAY, T0, observations, seasonal_counts, shape, times


def step_all(spec: DetectorSpec, values, t=None, volume=None):
    t = np.arange(len(values)) * 60.0 + T0 if t is None else t
    return run(build_detector(spec), observations(t, np.array(values, dtype=float), volume))


def flags(verdicts, attr: str = "anomalous") -> list[bool]:
    return [getattr(v, attr) for v in verdicts]


# --- static and ratio -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "values", "expected"),
    [
        ({"threshold": 10}, [5, 10, 11, 9.99], [False, True, True, False]),
        ({"threshold": 10, "direction": "below"}, [15, 10, 9, 10.01], [False, True, True, False]),
        ({"threshold": 0}, [0, -1, 0.5], [True, False, True]),
    ],
)
def test_static(params: dict, values: list[float], expected: list[bool]) -> None:
    verdicts = step_all(DetectorSpec(kind="static", params=params), values)
    assert flags(verdicts) == expected
    assert all(v.firing == v.anomalous for v in verdicts)
    hot = [v for v in verdicts if v.anomalous]
    assert all(params.get("direction", "above") in v.reason for v in hot)
    assert all((v.score >= 0.5) == v.anomalous for v in verdicts)


def test_static_no_data_is_no_verdict() -> None:
    (v,) = run(build_detector(DetectorSpec(kind="static", params={"threshold": 1})),
               [Observation(T0, None)])  # fmt: skip
    assert v.no_data and not v.anomalous and v.score == 0.0 and v.value is None


@pytest.mark.parametrize(
    ("value", "volume", "anomalous", "judged"),
    [
        (0.5, 100, True, True),
        (0.5, 5, False, False),  # a 50% failure ratio out of 5 attempts: no verdict
        (0.0, 5, False, False),  # and not a zero either
        (0.01, 100, False, True),
        (0.5, None, True, True),  # no volume known: judged as is
    ],
)
def test_ratio_min_volume_guard(value, volume, anomalous: bool, judged: bool) -> None:
    spec = DetectorSpec(kind="ratio", params={"threshold": 0.1, "min_volume": 20})
    (v,) = run(build_detector(spec), [Observation(T0, value, volume)])
    assert v.anomalous is anomalous
    assert not v.no_data
    assert ("no verdict" in v.reason) is (not judged)
    if not judged:
        assert v.upper is None and v.score == 0.0


def test_ratio_pools_low_volume_steps_over_a_window() -> None:
    # a payment method with 4 attempts a minute: each minute alone is under the guard,
    # ten minutes pooled are 40 attempts with 50% failing
    spec = DetectorSpec(
        kind="ratio", params={"threshold": 0.2, "min_volume": 20, "window_seconds": 600}
    )
    values = [0.0] * 10 + [0.5] * 10
    verdicts = step_all(spec, values, volume=np.full(20, 4.0))
    assert not any(flags(verdicts)[:10])
    assert "no verdict" in verdicts[3].reason  # 16 attempts so far
    assert verdicts[-1].anomalous and "over 10 min" in verdicts[-1].reason


# --- counts -----------------------------------------------------------------------------------


def hourly_history(rate: float, hours: int, seed: int = 0, disp: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lam = np.full(hours * 60, rate)
    if disp:
        lam = lam * rng.gamma(1 / disp, disp, len(lam))
    return rng.poisson(lam).astype(float)


@pytest.mark.parametrize(
    ("rate", "last", "anomalous"),
    [
        (0.0, 3, False),  # zero baseline: under the minimum count
        (0.0, 5, True),  # zero baseline: at the minimum count
        (2.0, 6, False),  # P(X >= 6 | 2) = 1.7% is not rare enough
        (2.0, 14, True),
        (40.0, 52, False),
        (40.0, 80, True),
    ],
)
def test_count_upper_tail(rate: float, last: float, anomalous: bool) -> None:
    history = hourly_history(rate, 8)
    verdicts = step_all(DetectorSpec(kind="count"), [*history, last])
    assert verdicts[-1].anomalous is anomalous
    assert "baseline" in verdicts[-1].reason
    assert verdicts[-1].upper is not None and verdicts[-1].expected is not None


def test_count_negative_binomial_when_overdispersed() -> None:
    history = hourly_history(5.0, 24, disp=1.0)
    poisson = step_all(DetectorSpec(kind="count", params={"dispersion": "poisson"}), [*history, 20])
    nb = step_all(DetectorSpec(kind="count"), [*history, 20])
    assert poisson[-1].anomalous and not nb[-1].anomalous
    assert "negative binomial" in nb[-1].reason


def test_count_warms_up_quietly() -> None:
    verdicts = step_all(DetectorSpec(kind="count"), [0.0] * 60 + [50.0])
    assert not verdicts[-1].anomalous and "learning the baseline" in verdicts[-1].reason


# --- absence ----------------------------------------------------------------------------------


def test_absence_fires_after_the_gap() -> None:
    values = [1.0, None, None, None, None, 2.0, None]
    verdicts = step_all(DetectorSpec(kind="absence", params={"after_seconds": 180}), values)
    assert flags(verdicts) == [False, False, False, True, True, False, False]
    assert verdicts[3].no_data and "no data for 3 min" in verdicts[3].reason


# --- burn rate --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "fires"),
    [
        ([(360, 0.0005)], False),  # within the SLO
        ([(300, 0.0), (60, 0.02)], True),  # 20x for an hour: 1h and 5m windows both burn
        ([(300, 0.0), (5, 1.0)], True),  # 5 minutes of total failure: 83x over the hour
        ([(300, 0.0), (5, 1.0), (30, 0.0)], False),  # ... and over: the 5m window recovered
        ([(60, 0.0), (300, 0.01)], True),  # 10x for hours: the 6h/30m pair at 6x
        ([(60, 0.0), (120, 0.008)], False),  # 8x for two hours: below 14.4, 6h mean below 6
    ],
)
def test_burn_rate_pairs(pattern: list[tuple[int, float]], fires: bool) -> None:
    values = [x for minutes, ratio in pattern for x in [ratio] * minutes]
    spec = DetectorSpec(kind="burn_rate", params={"slo": 0.999})
    verdicts = step_all(spec, values, volume=np.full(len(values), 100.0))
    assert verdicts[-1].anomalous is fires
    assert "SLO 99.9%" in verdicts[-1].reason


# --- time to breach ---------------------------------------------------------------------------


def test_time_to_breach_catches_a_stuck_queue_before_the_limit() -> None:
    rng = np.random.default_rng(0)
    normal = list(rng.uniform(0, 30, 60))
    stuck = [30.0 + 60.0 * i for i in range(15)]  # the oldest job ages a minute a minute
    spec = DetectorSpec(kind="time_to_breach", params={"limit": 900, "horizon_seconds": 300})
    verdicts = step_all(spec, normal + stuck)
    assert not any(flags(verdicts)[:60])
    first = flags(verdicts).index(True)
    assert verdicts[first].value is not None and 500 <= verdicts[first].value < 900
    assert "reaches 900 in" in verdicts[first].reason
    assert verdicts[-1].anomalous and verdicts[-1].upper == 900


# --- robust seasonal band ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("daily", "weekly", "days", "season"),
    [
        (0.6, 0.4, 22, "weekly"),
        (0.6, 0.0, 16, "daily"),
        (0.0, 0.0, 10, "flat"),
        (0.6, 0.4, 3, "daily (provisional)"),  # too short to tell a week apart
    ],
)
def test_seasonality_is_detected_from_the_series(daily, weekly, days, season) -> None:
    rng = np.random.default_rng(1)
    t = times(days, 300.0)
    v = 200 * shape(t, daily, weekly) * (1 + rng.normal(0, 0.03, len(t)))
    det = build_detector(DetectorSpec(kind="seasonal"))
    run(det, observations(t, v))
    assert det.describe()["learned"]["seasonality"] == season


def test_seasonal_band_explains_itself() -> None:
    t, v, _ = seasonal_counts(22, interval=300.0, peak=60.0, seed=3)
    v = v.copy()
    i = int(np.searchsorted(t, t[0] + 21 * DAY + 14 * 3600))  # a Monday afternoon
    v[i] = 3 * v[i] + 200
    verdicts = run(build_detector(DetectorSpec(kind="seasonal")), observations(t, v))
    hot = verdicts[i]
    assert hot.anomalous and hot.score > 0.9
    assert hot.lower is not None and hot.upper is not None and hot.upper < hot.value
    assert "above" in hot.reason and "Mon 14:00 over 3 weeks" in hot.reason
    quiet = verdicts[i - 10]
    assert not quiet.anomalous and "within" in quiet.reason


def test_level_shift_fires_on_a_sustained_shift_not_on_a_blip() -> None:
    rng = np.random.default_rng(2)
    t = times(12, 60.0)
    v = 100 + rng.normal(0, 5, len(t))
    spike = len(t) - 2000
    v[spike] = 180  # one sample
    v[-300:] += 12  # 2.4 spreads, for five hours
    result = evaluate(DetectorSpec(kind="level_shift", params={"seasonality": "none"}), t, v)
    assert not result.anomalous[spike - 5 : spike + 100].any()
    assert result.anomalous[-200:].mean() > 0.8
    assert not result.anomalous[:-300].any()
