"""Stepping and batch give the same verdicts: the batch path is what backtests and tuning
use, the stepping path is what pages people."""

from __future__ import annotations

import numpy as np
import pytest

from sentinel.detectors import DetectorSpec, Observation, Verdict, build_detector, evaluate, run
from sentinel.detectors.base import Persisted, Persistence, persist_batch
from tests.detectors.synth import DAY, observations, seasonal_counts, times


def as_arrays(verdicts: list[Verdict]) -> dict[str, np.ndarray]:
    def opt(x):
        return np.nan if x is None else x

    return {
        "anomalous": np.array([v.anomalous for v in verdicts]),
        "firing": np.array([v.firing for v in verdicts]),
        "no_data": np.array([v.no_data for v in verdicts]),
        "score": np.array([v.score for v in verdicts]),
        "expected": np.array([opt(v.expected) for v in verdicts], dtype=float),
        "lower": np.array([opt(v.lower) for v in verdicts], dtype=float),
        "upper": np.array([opt(v.upper) for v in verdicts], dtype=float),
    }


def assert_same(spec: DetectorSpec, t, v, vol=None) -> dict[str, np.ndarray]:
    stepped = as_arrays(run(build_detector(spec), observations(t, v, vol)))
    batch = evaluate(spec, t, v, vol)
    for name in ("anomalous", "firing", "no_data"):
        got = getattr(batch, name)
        bad = np.flatnonzero(got != stepped[name])
        assert len(bad) == 0, f"{spec.kind} {name} differs at rows {bad[:10]}"
    for name in ("score", "expected", "lower", "upper"):
        np.testing.assert_allclose(
            getattr(batch, name), stepped[name], rtol=1e-9, atol=1e-12, err_msg=f"{name}"
        )
    return stepped


def counts_with_faults():
    """30 days of 10-minute counts, weekly seasonal, gaps, a drop to zero and a spike."""
    t, v, _ = seasonal_counts(30, interval=600.0, peak=50.0, seed=5)
    rng = np.random.default_rng(5)
    v[rng.random(len(v)) < 0.02] = np.nan
    v[int(len(v) * 0.7) : int(len(v) * 0.7) + 10] = 0.0
    v[int(len(v) * 0.85)] *= 6
    keep = rng.random(len(t)) > 0.01  # some steps never arrive at all
    return t[keep], v[keep]


def ratios_with_volume():
    """9 days of 1-minute failure ratios with their volumes, some tiny."""
    rng = np.random.default_rng(6)
    t = times(9, 60.0)
    vol = rng.poisson(40, len(t)).astype(float)
    vol[rng.random(len(t)) < 0.05] = 2.0
    v = rng.binomial(vol.astype(int), 0.05) / np.maximum(vol, 1)
    v[-200:-150] = 0.6
    return t, v, vol


def irregular_level():
    """12 days of a jittered 3-minute gauge with missing values and a level shift."""
    rng = np.random.default_rng(7)
    t = times(12, 180.0, jitter=0.8, seed=7)
    v = 300 + 40 * np.sin(2 * np.pi * t / DAY) + rng.normal(0, 6, len(t))
    v[rng.random(len(t)) < 0.03] = np.nan
    v[-300:-200] *= 1.3
    return t, v


ENGINE = [
    DetectorSpec(kind="auto", keep_firing_for_seconds=900),
    DetectorSpec(kind="auto", params={"direction": "up", "k": 4}, for_samples=2, of_samples=3),
    DetectorSpec(kind="seasonal", params={"direction": "down", "seasonality": "daily"}),
    DetectorSpec(kind="level_shift", params={"weeks": 2}, for_seconds=600),
]
SIMPLE = [
    DetectorSpec(kind="static", params={"threshold": 60}, for_samples=2),
    DetectorSpec(kind="static", params={"threshold": 5, "direction": "below"}),
    DetectorSpec(kind="ratio", params={"threshold": 0.3, "window_seconds": 1800}),
    DetectorSpec(kind="count", keep_firing_for_seconds=1200),
    DetectorSpec(kind="absence", params={"after_seconds": 900}),
    DetectorSpec(kind="burn_rate", params={"slo": 0.99}),
    DetectorSpec(kind="time_to_breach", params={"limit": 80, "fit_samples": 5}),
]


@pytest.mark.parametrize("spec", ENGINE + SIMPLE, ids=lambda s: s.describe()[:40])
def test_counts(spec: DetectorSpec) -> None:
    t, v = counts_with_faults()
    stepped = assert_same(spec, t, v)
    if spec == ENGINE[0]:  # the comparison covers alerts, not only quiet steps
        assert stepped["firing"].sum() > 0 and not stepped["firing"].all()


@pytest.mark.parametrize("spec", ENGINE[:2] + SIMPLE[2:4] + SIMPLE[5:6], ids=lambda s: s.kind)
def test_ratios_with_volume(spec: DetectorSpec) -> None:
    t, v, vol = ratios_with_volume()
    assert_same(spec, t, v, vol)


@pytest.mark.parametrize("spec", ENGINE, ids=lambda s: s.describe()[:40])
def test_irregular_level(spec: DetectorSpec) -> None:
    t, v = irregular_level()
    stepped = assert_same(spec, t, v)
    if spec.kind == "auto" and spec.params["direction"] == "both":
        assert stepped["firing"][-300:-200].any()  # and it sees the shift


# --- persistence and hysteresis ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "pattern", "firing"),
    [
        (Persistence(), "..x.xx...", "..x.xx..."),
        (Persistence(for_samples=2), "..x.xx.xxx", ".....x..xx"),
        (Persistence(for_samples=2, of_samples=3), "x.x..x.x.x", "..x....x.x"),
        (Persistence(for_seconds=120), "xxx.xxxx", "..x...xx"),
        # kept until 120 s after the condition first cleared (Prometheus keep_firing_for)
        (Persistence(keep_firing_for_seconds=120), "x..x...x", "xxxxxx.x"),
        (Persistence(for_samples=2, keep_firing_for_seconds=60), "xx.x..xx", ".xx....x"),
    ],
)
def test_persistence_table(rule: Persistence, pattern: str, firing: str) -> None:
    """Steps one minute apart; x = anomalous."""
    t = np.arange(len(pattern)) * 60.0
    anomalous = np.array([c == "x" for c in pattern])
    expected = np.array([c == "x" for c in firing])
    np.testing.assert_array_equal(persist_batch(rule, t, anomalous), expected)
    np.testing.assert_array_equal(stepped_persistence(rule, t, anomalous), expected)


class _Replay:
    """A detector that replays given verdicts, to test the wrapper alone."""

    name = "replay"

    def __init__(self, flags: np.ndarray) -> None:
        self.flags = iter(flags.tolist())

    def step(self, obs: Observation) -> Verdict:
        a = next(self.flags)
        return Verdict(obs.t, obs.value, float(a), a, a, False, None, None, None, "r")

    def describe(self) -> dict:
        return {"kind": self.name}


def stepped_persistence(rule: Persistence, t: np.ndarray, anomalous: np.ndarray) -> np.ndarray:
    det = Persisted(_Replay(anomalous), rule)
    return np.array([det.step(Observation(float(x), 1.0)).firing for x in t])


@pytest.mark.parametrize("seed", range(6))
def test_persistence_random_equivalence(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 3000
    t = np.cumsum(rng.choice([0.0, 10.0, 60.0, 300.0], n, p=[0.05, 0.5, 0.4, 0.05]))
    anomalous = rng.random(n) < rng.uniform(0.05, 0.5)
    for rule in (
        Persistence(int(rng.integers(1, 4)), None, float(rng.choice([0, 60, 600])), 0.0),
        Persistence(2, 5, 0.0, float(rng.choice([60, 900]))),
        Persistence(1, None, 120.0, 300.0),
    ):
        np.testing.assert_array_equal(
            persist_batch(rule, t, anomalous), stepped_persistence(rule, t, anomalous)
        )
